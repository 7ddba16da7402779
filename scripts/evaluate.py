"""Rule evaluate: the metric panel of one embedding, long format."""
from livaebench.runtime import enable_numba_cache, step

with step(snakemake.log[0], threads=snakemake.threads) as log:
    enable_numba_cache()  # Leiden builds its kNN graph with numba-compiled code
    import anndata as ad

    from livaebench.metrics.panel import evaluate_embedding
    from livaebench.failures import failure_reason
    from livaebench.results import failed_metric_table, metric_table, write_tsv_atomic

    w, options = snakemake.wildcards, snakemake.params.options
    emb = ad.read_h5ad(snakemake.input[0])
    info = emb.uns["livaebench"]
    reason = failure_reason(info)
    if reason is None:
        panel = evaluate_embedding(emb, label_key=info["label_key"], batch_key=info["batch_key"], seed=int(w.seed),
                                   max_cells=options["max_cells"], n_clusters=options["n_clusters"],
                                   ilisi_subsample_sizes=tuple(options["ilisi_subsample_sizes"]), log=log)
        table = metric_table(panel, dataset=w.dataset, method=w.method, seed=int(w.seed))
    else:
        log.warning(f"{w.dataset}/{w.method}/seed{w.seed}: the method failed ({reason}); one status=failed row")
        table = failed_metric_table(reason, dataset=w.dataset, method=w.method, seed=int(w.seed))
    write_tsv_atomic(table, snakemake.output[0])
