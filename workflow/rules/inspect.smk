# Look before downloading: the supplementary files of a GEO dataset, their sizes, their kinds and which ones
# fetch_geo would download: the layout recognised from the listing (pattern auto, the default) or the files
# the registry's regex selects, for the registry's samples. Only the SOFT text is downloaded (and, where the
# choice hangs on an archive's content, GEO's filelist.txt or the tar's member headers). One row per file and
# per known archive member in results/geo_files/{dataset}.tsv (file, sample, url, bytes, kind, archive,
# selected yes/no, note); the log shows the table, the layout chosen or the one-line error fetch_geo would
# stop with. Sizes cost one small request per file (HEAD; a one-byte ranged GET where the server refuses
# HEAD), because GEO's SOFT text does not give them. Run on demand, never part of `all`:
#   snakemake --cores 1 results/geo_files/DATASET.tsv     # one dataset
#   snakemake --cores 1 --keep-going geo_files            # every GEO dataset of the registry
# The listing is redone when the dataset's pattern or samples change (a params change), so edit, rerun, compare.


localrules:
    list_geo_files,
    geo_files,


rule list_geo_files:
    """The supplementary files of one GEO dataset and which ones fetch_geo would download (a table)."""
    output:
        "results/geo_files/{dataset}.tsv",
    log:
        "logs/list_geo_files/{dataset}.log",
    benchmark:
        "results/benchmarks/list_geo_files/{dataset}.tsv"
    conda:
        LIGHT_ENV
    params:
        source=lambda w: DATASETS.loc[w.dataset, "source"],
        accession=lambda w: DATASETS.loc[w.dataset, "accession"],
        pattern=lambda w: DATASETS.loc[w.dataset, "pattern"] or "auto",
        samples=lambda w: DATASETS.loc[w.dataset, "samples"],
        base_url=config["geo"]["base_url"],
    script:
        "../../scripts/list_geo_files.py"


rule geo_files:
    """The file listing of every GEO dataset of the registry (results/geo_files/)."""
    input:
        [f"results/geo_files/{d}.tsv" for d in DATASETS.index if DATASETS.loc[d, "source"] == "geo"],
