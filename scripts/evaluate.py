"""Rule evaluate: the metric panel of one embedding, long format."""
from livaebench.runtime import enable_numba_cache, step

with step(snakemake.log[0], threads=snakemake.threads) as log:
    enable_numba_cache()  # Leiden builds its kNN graph with numba-compiled code
    import anndata as ad

    from livaebench.metrics.panel import evaluate_embedding
    from livaebench.results import metric_table, write_tsv_atomic

    w, options = snakemake.wildcards, snakemake.params.options
    emb = ad.read_h5ad(snakemake.input[0])
    info = emb.uns["livaebench"]
    panel = evaluate_embedding(emb, label_key=info["label_key"], batch_key=info["batch_key"], seed=int(w.seed),
                               max_cells=options["max_cells"], n_clusters=options["n_clusters"],
                               ilisi_subsample_sizes=tuple(options["ilisi_subsample_sizes"]), log=log)
    write_tsv_atomic(metric_table(panel, dataset=w.dataset, method=w.method, seed=int(w.seed)), snakemake.output[0])
