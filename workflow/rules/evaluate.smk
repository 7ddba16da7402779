# The metric panel (docs/methods.md §3) for every embedding, then one table of everything.


rule evaluate:
    input:
        "results/embeddings/{dataset}/{method}/seed{seed}.h5ad",
    output:
        "results/metrics/{dataset}/{method}/seed{seed}.tsv",
    params:
        options=config["metrics"],
    threads: config["threads"]["evaluate"]
    log:
        "logs/evaluate/{dataset}/{method}/seed{seed}.log",
    conda:
        CONDA_ENV
    script:
        "../../scripts/evaluate.py"


rule gather_metrics:
    input:
        metric_targets(),
    output:
        table="results/metrics/all.tsv",
        failures=report(
            "results/metrics/failures.tsv",
            caption="../report/failures.rst",
            category="Failures",
        ),
    log:
        "logs/gather_metrics.log",
    conda:
        CONDA_ENV
    script:
        "../../scripts/gather_metrics.py"
