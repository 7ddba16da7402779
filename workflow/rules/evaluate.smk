# The metric panel (docs/methods.md §3) for every embedding, then one table of everything; how every
# neural training ended (convergence.tsv, the under-trained runs in the report).
from livaebench.convergence import FlaggedRunsCaption


rule evaluate:
    """The metric panel of one embedding (one run's metric table)."""
    input:
        "results/embeddings/{dataset}/{method}/seed{seed}.h5ad",
    output:
        "results/metrics/{dataset}/{method}/seed{seed}.tsv",
    log:
        "logs/evaluate/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{method}/seed{seed}.tsv"
    conda:
        LIGHT_ENV
    threads: config["threads"]["evaluate"]
    params:
        options=config["metrics"],
        convergence=config["convergence"],
    script:
        "../../scripts/evaluate.py"


rule gather_metrics:
    """One table of every run's metrics (all.tsv) and the list of failed runs (failures.tsv)."""
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
        "results/benchmarks/gather_metrics.tsv"
    conda:
        LIGHT_ENV
    script:
        "../../scripts/gather_metrics.py"


rule convergence:
    """How every neural training phase ended: epochs run, stop reason, under-trained flag (convergence.tsv)."""
    input:
        # the latent files carry their run's convergence records (read without loading the latents)
        [f"{model_dir(*run)}/latent.npz" for run in all_runs()],
    output:
        report(
            "results/metrics/convergence.tsv",
            caption="../report/convergence.rst",
            category="Convergence",
        ),
    log:
        "logs/convergence.log",
    benchmark:
        "results/benchmarks/convergence.tsv"
    conda:
        LIGHT_ENV
    params:
        runs=all_runs(),
        max_rel_improvement=config["convergence"]["max_rel_improvement"],
        # the caption's list of flagged runs, read from the table when the report is made
        flagged=FlaggedRunsCaption("results/metrics/convergence.tsv"),
    script:
        "../../scripts/convergence_table.py"


rule rule_benchmarks:
    """Wall time and peak memory per rule from every job's benchmark file (rules.tsv)."""
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
    log:
        "logs/rule_benchmarks.log",
    conda:
        LIGHT_ENV
    params:
        files=lambda w: benchmark_targets(),
    script:
        "../../scripts/rule_benchmarks.py"
