# The metric panel (docs/methods.md §3) for every embedding, then one table of everything; how every
# neural training ended (convergence.tsv, the under-trained runs in the report).
from livaebench.convergence import FlaggedRunsCaption


rule evaluate:
    input:
        "results/embeddings/{dataset}/{method}/seed{seed}.h5ad",
    output:
        "results/metrics/{dataset}/{method}/seed{seed}.tsv",
    params:
        options=config["metrics"],
        convergence=config["convergence"],
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
        table=report(
            "results/metrics/all.tsv",
            caption="../report/metrics_table.rst",
            category="Metrics",
        ),
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


rule convergence:
    input:
        # the latent files carry their run's convergence records (read without loading the latents)
        [f"{model_dir(*run)}/latent.npz" for run in all_runs()],
    output:
        report(
            "results/metrics/convergence.tsv",
            caption="../report/convergence.rst",
            category="Convergence",
        ),
    params:
        runs=all_runs(),
        max_rel_improvement=config["convergence"]["max_rel_improvement"],
        # the caption's list of flagged runs, read from the table when the report is made
        flagged=FlaggedRunsCaption("results/metrics/convergence.tsv"),
    log:
        "logs/convergence.log",
    benchmark:
        "results/benchmarks/convergence.tsv"
    conda:
        CONDA_ENV
    script:
        "../../scripts/convergence_table.py"


rule rule_benchmarks:
    input:
        # every benchmarked job is upstream of these; naming its ~3 files per run as inputs here would
        # double the file lookups of planning a large study
        "results/metrics/all.tsv",
        "results/metrics/convergence.tsv",
        "results/stats/fairness.tsv",
        comparison_targets(),
        figure_targets(),
        summary_targets(),
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

