# Paired statistics per comparison family (docs/methods.md §4), and each method's budget against its original's.


rule compare:
    input:
        "results/metrics/all.tsv",
    output:
        report(
            "results/stats/{comparison}.tsv",
            caption="../report/stats_table.rst",
            category="Comparisons",
            subcategory="{comparison}",
        ),
    params:
        spec=lambda w: comparison_spec(w.comparison),
    log:
        "logs/compare/{comparison}.log",
    benchmark:
        "results/benchmarks/compare/{comparison}.tsv",
    conda:
        CONDA_ENV
    script:
        "../../scripts/compare.py"


rule fairness:
    input:
        "results/metrics/convergence.tsv",
    output:
        report(
            "results/stats/fairness.tsv",
            caption="../report/fairness.rst",
            category="Fairness",
        ),
    params:
        overrides=lambda w: fairness_overrides(),
        latent_dim=config["latent_dim"],
        # a changed declaration in the registry remakes the table
        provenance=lambda w: {m: repr((M.defaults, M.origin, M.deviations)) for m, M in METHODS.items()},
    log:
        "logs/fairness.log",
    benchmark:
        "results/benchmarks/fairness.tsv"
    conda:
        CONDA_ENV
    script:
        "../../scripts/fairness.py"
