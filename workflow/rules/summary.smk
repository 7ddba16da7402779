# The ranked summary per modality (docs/methods.md §8): every metric scaled between the controls, category and
# overall scores, ranks per dataset and their mean; its results table and its critical-difference diagram.


rule summary_table:
    """The ranked summary of one modality and its per-dataset scores (results/summary/{modality}.tsv)."""
    input:
        "results/metrics/all.tsv",
    output:
        board=report(
            "results/summary/{modality}.tsv",
            caption="../report/summary.rst",
            category="Summary",
            subcategory="{modality}",
        ),
        scores="results/summary/{modality}_scores.tsv",
    log:
        "logs/summary/{modality}.log",
    benchmark:
        "results/benchmarks/summary_table/{modality}.tsv"
    wildcard_constraints:
        modality="rna|atac",
    conda:
        LIGHT_ENV
    params:
        datasets=lambda w: modality_datasets(w.modality),
        families=lambda w: summary_families(w.modality),
        weights=config["summary"]["weights"],
    script:
        "../../scripts/summary.py"


rule summary_figure:
    """The ranked summary of one modality as a results-table figure (PNG + PDF)."""
    input:
        board="results/summary/{modality}.tsv",
        scores="results/summary/{modality}_scores.tsv",
    output:
        png=report(
            "results/summary/{modality}.png",
            caption="../report/summary_figure.rst",
            category="Summary",
            subcategory="{modality}",
        ),
        pdf="results/summary/{modality}.pdf",
    log:
        "logs/summary/{modality}_figure.log",
    benchmark:
        "results/benchmarks/summary_figure/{modality}.tsv"
    wildcard_constraints:
        modality="rna|atac",
    conda:
        LIGHT_ENV
    script:
        "../../scripts/summary_figure.py"


rule cd_diagram:
    """The critical-difference diagram of one modality's ranks (PNG + PDF)."""
    input:
        "results/summary/{modality}_scores.tsv",
    output:
        png=report(
            "results/summary/{modality}_cd.png",
            caption="../report/cd_diagram.rst",
            category="Summary",
            subcategory="{modality}",
        ),
        pdf="results/summary/{modality}_cd.pdf",
    log:
        "logs/summary/{modality}_cd.log",
    benchmark:
        "results/benchmarks/cd_diagram/{modality}.tsv"
    wildcard_constraints:
        modality="rna|atac",
    conda:
        LIGHT_ENV
    params:
        alpha=config["summary"]["alpha"],
    script:
        "../../scripts/cd_diagram.py"
