# Figures of the benchmark, PNG + PDF, each with a caption in the Snakemake report.


rule plot_comparison:
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
    params:
        spec=lambda w: comparison_spec(w.comparison),
    log:
        "logs/figures/{comparison}.log",
    benchmark:
        "results/benchmarks/plot_comparison/{comparison}.tsv",
    conda:
        CONDA_ENV
    script:
        "../../scripts/plot_comparison.py"


rule plot_sensitivity:
    input:
        "results/metrics/all.tsv",
    output:
        png=report(
            "results/figures/{comparison}/sensitivity.png",
            caption="../report/sensitivity.rst",
            category="Sensitivity",
        ),
        pdf="results/figures/{comparison}/sensitivity.pdf",
    params:
        spec=lambda w: comparison_spec(w.comparison),
    log:
        "logs/figures/{comparison}_sensitivity.log",
    benchmark:
        "results/benchmarks/plot_sensitivity/{comparison}.tsv",
    conda:
        CONDA_ENV
    script:
        "../../scripts/plot_sensitivity.py"


rule plot_umap_grid:
    input:
        lambda w: [embedding_path(w.dataset, m, config["seeds"][0]) for m in methods_for(w.dataset)],
    output:
        png=report(
            "results/figures/umap/{dataset}.png",
            caption="../report/umap_grid.rst",
            category="Embeddings",
        ),
        pdf="results/figures/umap/{dataset}.pdf",
    params:
        methods=lambda w: methods_for(w.dataset),
        row=dataset_row,
    log:
        "logs/figures/umap_{dataset}.log",
    benchmark:
        "results/benchmarks/plot_umap_grid/{dataset}.tsv",
    conda:
        CONDA_ENV
    script:
        "../../scripts/plot_umap_grid.py"


rule plot_ilisi:
    input:
        "results/metrics/all.tsv",
    output:
        png=report(
            "results/figures/ilisi_subsample.png",
            caption="../report/ilisi.rst",
            category="Batch integration",
        ),
        pdf="results/figures/ilisi_subsample.pdf",
    params:
        methods=[m for m in METHODS if m not in CONTROLS],  # controls are in the summary, not compared here
        datasets=batch_datasets(),
        # the multi-batch family's reference (Fig. 11) is drawn in the reference colour
        reference=ilisi_reference(),
    log:
        "logs/figures/ilisi.log",
    benchmark:
        "results/benchmarks/plot_ilisi.tsv",
    conda:
        CONDA_ENV
    script:
        "../../scripts/plot_ilisi.py"
