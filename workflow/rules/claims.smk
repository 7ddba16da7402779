# The paper's headline claims, checked against this run's statistics and ranked summary (docs/methods.md §4.7).
# Part of `rule all` only with config `claims: true` (a study with enough datasets for the tests to mean something).


rule claims:
    """The paper's headline claims checked against this run's statistics and summary (results/claims/)."""
    input:
        stats=comparison_targets(),
        scores=expand("results/summary/{modality}_scores.tsv", modality=summary_modalities()),
    output:
        tsv=report(
            "results/claims/claims.tsv",
            caption="../report/claims.rst",
            category="Claims",
        ),
        md="results/claims/claims.md",
    log:
        "logs/claims.log",
    benchmark:
        # not in results/benchmarks/rules.tsv: the claims are optional and read only finished tables
        "results/benchmarks/claims.tsv"
    conda:
        LIGHT_ENV
    params:
        # the Bonferroni correction of each family fixes the smallest p-value its Wilcoxon path can reach
        specs={name: {"correction": COMPARISONS[name]["correction"]} for name in active_comparisons()},
    script:
        "../../scripts/claims.py"
