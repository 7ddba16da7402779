# Paired statistics per comparison family (docs/methods.md §4), and each method's budget against its original's.


rule compare:
    """The paired statistics of one comparison family (results/stats/{comparison}.tsv)."""
    input:
        "results/metrics/all.tsv",
    output:
        report(
            "results/stats/{comparison}.tsv",
            caption="../report/stats_table.rst",
            category="Comparisons",
            subcategory="{comparison}",
        ),
    log:
        "logs/compare/{comparison}.log",
    benchmark:
        "results/benchmarks/compare/{comparison}.tsv"
    conda:
        LIGHT_ENV
    params:
        spec=lambda w: comparison_spec(w.comparison),
    script:
        "../../scripts/compare.py"


rule fairness:
    """Each method's settings and budget in this run beside its original's (fairness.tsv)."""
    input:
        "results/metrics/convergence.tsv",
    output:
        report(
            "results/stats/fairness.tsv",
            caption="../report/fairness.rst",
            category="Fairness",
        ),
    log:
        "logs/fairness.log",
    benchmark:
        "results/benchmarks/fairness.tsv"
    conda:
        LIGHT_ENV
    params:
        overrides=lambda w: fairness_overrides(),
        latent_dim=config["latent_dim"],
        # a changed declaration in the registry remakes the table
        provenance=lambda w: {m: repr((M.defaults, M.origin, M.deviations)) for m, M in METHODS.items()},
    script:
        "../../scripts/fairness.py"
