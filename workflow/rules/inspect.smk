# Look before downloading: the supplementary files of a GEO dataset, their sizes and which ones the registry's
# pattern selects, from the SOFT text alone (no supplementary file is downloaded). One row per file in
# results/geo_files/{dataset}.tsv (file, sample, url, bytes, selected yes/no, note); the log shows the table.
# Sizes cost one small request per file (HEAD; a one-byte ranged GET where the server refuses HEAD), because
# GEO's SOFT text does not give them. Run on demand, never part of `all`:
#   snakemake --cores 1 results/geo_files/DATASET.tsv     # one dataset
#   snakemake --cores 1 --keep-going geo_files            # every GEO dataset of the registry
# The listing is redone when the dataset's pattern changes (a params change), so edit, rerun, compare.


localrules:
    list_geo_files,
    geo_files,


rule list_geo_files:
    output:
        "results/geo_files/{dataset}.tsv",
    params:
        source=lambda w: DATASETS.loc[w.dataset, "source"],
        accession=lambda w: DATASETS.loc[w.dataset, "accession"],
        pattern=lambda w: DATASETS.loc[w.dataset, "pattern"] or ".*",
        base_url=config["geo"]["base_url"],
    log:
        "logs/list_geo_files/{dataset}.log",
    benchmark:
        "results/benchmarks/list_geo_files/{dataset}.tsv",
    conda:
        CONDA_ENV
    script:
        "../../scripts/list_geo_files.py"


rule geo_files:
    input:
        [f"results/geo_files/{d}.tsv" for d in DATASETS.index if DATASETS.loc[d, "source"] == "geo"],
