# Raw counts for every dataset: downloaded from GEO (source: geo) or read from a local file (source: file).
# A failed download leaves its partial files in geo.cache_dir/{dataset} (not in the output, which Snakemake
# deletes), so the rerun resumes them. Transfer settings and caps come from config["geo"] in the script,
# not from params, so tuning them does not trigger a fresh download of finished datasets.


localrules:
    fetch_geo,


rule fetch_geo:
    """The supplementary files of one GEO dataset, downloaded and checked (results/downloads/{dataset})."""
    output:
        directory("results/downloads/{dataset}"),
    log:
        "logs/fetch_geo/{dataset}.log",
    benchmark:
        "results/benchmarks/fetch_geo/{dataset}.tsv"
    conda:
        LIGHT_ENV
    params:
        accession=lambda w: DATASETS.loc[w.dataset, "accession"],
        pattern=lambda w: DATASETS.loc[w.dataset, "pattern"] or "auto",
        samples=lambda w: DATASETS.loc[w.dataset, "samples"],
        base_url=config["geo"]["base_url"],
    script:
        "../../scripts/fetch_geo.py"


rule assemble_counts:
    """One dataset's raw counts with its labels and batches, from GEO files or a local file (counts.h5ad)."""
    input:
        counts_source,
    output:
        "results/data/{dataset}/counts.h5ad",
    log:
        "logs/assemble_counts/{dataset}.log",
    benchmark:
        "results/benchmarks/assemble_counts/{dataset}.tsv"
    conda:
        LIGHT_ENV
    params:
        row=dataset_row,
        seed=config["seeds"][0],
    script:
        "../../scripts/assemble_counts.py"
