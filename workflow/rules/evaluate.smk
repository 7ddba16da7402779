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
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{method}/seed{seed}.tsv",
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
    benchmark:
        "results/benchmarks/gather_metrics.tsv",
    conda:
        CONDA_ENV
    script:
        "../../scripts/gather_metrics.py"


rule rule_benchmarks:
    input:
        # every benchmarked job is upstream of these; naming its ~3 files per run as inputs here would
        # double the file lookups of planning a large study
        "results/metrics/all.tsv",
        comparison_targets(),
        figure_targets(),
        lambda w: ANALYSIS_TARGETS,  # filled by the analysis rule files, included after this one
    output:
        report(
            "results/benchmarks/rules.tsv",
            caption="../report/benchmarks.rst",
            category="Run time and memory",
        ),
    params:
        files=lambda w: benchmark_targets(),
    log:
        "logs/rule_benchmarks.log",
    conda:
        CONDA_ENV
    script:
        "../../scripts/rule_benchmarks.py"

