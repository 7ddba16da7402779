# Figures of the benchmark, PNG + PDF, each with a caption in the Snakemake report.


rule plot_comparison:
    """The boxplots and the Δ figure of one comparison family (PNG + PDF)."""
    input:
        metrics="results/metrics/all.tsv",
        stats="results/stats/{comparison}.tsv",
    output:
        boxplots=report(
            "results/figures/{comparison}/boxplots.png",
            caption="../report/boxplots.rst",
            category="Comparisons",
            subcategory="{comparison}",
        ),
        boxplots_pdf="results/figures/{comparison}/boxplots.pdf",
        delta=report(
            "results/figures/{comparison}/delta.png",
            caption="../report/delta.rst",
            category="Comparisons",
            subcategory="{comparison}",
        ),
        delta_pdf="results/figures/{comparison}/delta.pdf",
    log:
        "logs/figures/{comparison}.log",
    benchmark:
        "results/benchmarks/plot_comparison/{comparison}.tsv"
    conda:
        LIGHT_ENV
    params:
        spec=lambda w: comparison_spec(w.comparison),
    script:
        "../../scripts/plot_comparison.py"


rule plot_sensitivity:
    """The sensitivity plot of one parameter-sweep family (PNG + PDF)."""
    input:
        "results/metrics/all.tsv",
    output:
        png=report(
            "results/figures/{comparison}/sensitivity.png",
            caption="../report/sensitivity.rst",
            category="Sensitivity",
        ),
        pdf="results/figures/{comparison}/sensitivity.pdf",
    log:
        "logs/figures/{comparison}_sensitivity.log",
    benchmark:
        "results/benchmarks/plot_sensitivity/{comparison}.tsv"
    conda:
        LIGHT_ENV
    params:
        spec=lambda w: comparison_spec(w.comparison),
    script:
        "../../scripts/plot_sensitivity.py"


rule plot_umap_grid:
    """The UMAP grid of one dataset, one panel per method (PNG + PDF)."""
    input:
        lambda w: [embedding_path(w.dataset, m, config["seeds"][0]) for m in methods_for(w.dataset)],
    output:
        png=report(
            "results/figures/umap/{dataset}.png",
            caption="../report/umap_grid.rst",
            category="Embeddings",
        ),
        pdf="results/figures/umap/{dataset}.pdf",
    log:
        "logs/figures/umap_{dataset}.log",
    benchmark:
        "results/benchmarks/plot_umap_grid/{dataset}.tsv"
    conda:
        LIGHT_ENV
    params:
        methods=lambda w: methods_for(w.dataset),
        row=dataset_row,
    script:
        "../../scripts/plot_umap_grid.py"


rule plot_ilisi:
    """iLISI against the subsample size on the datasets with batches (PNG + PDF)."""
    input:
        "results/metrics/all.tsv",
    output:
        png=report(
            "results/figures/ilisi_subsample.png",
            caption="../report/ilisi.rst",
            category="Batch integration",
        ),
        pdf="results/figures/ilisi_subsample.pdf",
    log:
        "logs/figures/ilisi.log",
    benchmark:
        "results/benchmarks/plot_ilisi.tsv"
    conda:
        LIGHT_ENV
    params:
        methods=[m for m in METHODS if m not in CONTROLS],  # controls are in the summary, not compared here
        datasets=batch_datasets(),
        # the multi-batch family's reference (Fig. 11) is drawn in the reference colour
        reference=ilisi_reference(),
    script:
        "../../scripts/plot_ilisi.py"
