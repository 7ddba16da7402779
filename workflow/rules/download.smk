# Raw counts for every dataset: downloaded from GEO (source: geo) or read from a local file (source: file).
# A failed download leaves its partial files in geo.cache_dir/{dataset} (not in the output, which Snakemake
# deletes), so the rerun resumes them. Transfer settings and caps come from config["geo"] in the script,
# not from params, so tuning them does not trigger a fresh download of finished datasets.


localrules:
    fetch_geo,


rule fetch_geo:
    output:
        directory("results/downloads/{dataset}"),
    params:
        accession=lambda w: DATASETS.loc[w.dataset, "accession"],
        pattern=lambda w: DATASETS.loc[w.dataset, "pattern"] or "auto",
        samples=lambda w: DATASETS.loc[w.dataset, "samples"],
        base_url=config["geo"]["base_url"],
    log:
        "logs/fetch_geo/{dataset}.log",
    benchmark:
        "results/benchmarks/fetch_geo/{dataset}.tsv",
    conda:
        LIGHT_ENV
    script:
        "../../scripts/fetch_geo.py"


rule assemble_counts:
    input:
        counts_source,
    output:
        "results/data/{dataset}/counts.h5ad",
    params:
        row=dataset_row,
        seed=config["seeds"][0],
    log:
        "logs/assemble_counts/{dataset}.log",
    benchmark:
        "results/benchmarks/assemble_counts/{dataset}.tsv",
    conda:
        LIGHT_ENV
    script:
        "../../scripts/assemble_counts.py"
