# Named targets: the parts of the default run a user asks for by name, e.g. `snakemake --cores 2 summary`
# (README.md, "Asking for a part of the run"). Each lists files of `rule all` and plans only the jobs upstream
# of them. The results site is the job rule `site` (site.smk): it has no wildcards, so its name is a target too.


rule metrics:
    """The metric table of every run (all.tsv), the failed runs and how every neural training ended."""
    input:
        "results/metrics/all.tsv",
        "results/metrics/failures.tsv",
        "results/metrics/convergence.tsv",


rule stats:
    """The paired statistics of every active comparison family and the fairness table."""
    input:
        comparison_targets(),
        "results/stats/fairness.tsv",


rule figures:
    """Every figure: comparisons' boxplots and Δ, sweeps' sensitivity, UMAP grids, the iLISI plot (PNG + PDF)."""
    input:
        figure_targets(),


rule summary:
    """The ranked summary of each modality: its table, per-dataset scores, figure and critical-difference diagram."""
    input:
        summary_targets(),


# one target per dataset: `snakemake --cores 2 embeddings_pancreas`
for _dataset in DATASETS.index:

    rule:
        """Every configured method's embedding of one dataset (each seed) and the dataset's UMAP grid."""
        name:
            f"embeddings_{_dataset}"
        input:
            [embedding_path(_dataset, m, s) for m in methods_for(_dataset) for s in config["seeds"]],
            f"results/figures/umap/{_dataset}.png",
