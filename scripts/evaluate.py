"""Rule evaluate: the metric panel of one embedding, long format, with how the run's training ended."""
from livaebench.runtime import enable_numba_cache, step

with step(snakemake.log[0], threads=snakemake.threads) as log:
    enable_numba_cache()  # Leiden builds its kNN graph with numba-compiled code
    import anndata as ad

    from livaebench.convergence import run_summary
    from livaebench.embedding import parse_convergence
    from livaebench.failures import failure_reason
    from livaebench.labels import labels_description
    from livaebench.metrics.panel import evaluate_embedding
    from livaebench.results import failed_metric_table, metric_table, write_tsv_atomic

    w, options = snakemake.wildcards, snakemake.params.options
    emb = ad.read_h5ad(snakemake.input[0])
    info = emb.uns["livaebench"]
    reason = failure_reason(info)
    if reason is None:
        panel = evaluate_embedding(emb, label_key=info["label_key"], batch_key=info["batch_key"], seed=int(w.seed),
                                   max_cells=options["max_cells"], n_clusters=options["n_clusters"],
                                   ilisi_subsample_sizes=tuple(options["ilisi_subsample_sizes"]), log=log)
        summary = run_summary(parse_convergence(info.get("convergence")),
                              snakemake.params.convergence["max_rel_improvement"])
        # labels: marks the label-based rows, "pseudo-labels (KMeans, k=..)" where the dataset has no annotation
        table = metric_table(panel, dataset=w.dataset, method=w.method, seed=int(w.seed), convergence=summary,
                             labels=labels_description(info))
        if summary["under_trained"] == "true":
            log.warning(f"{w.dataset}/{w.method}/seed{w.seed}: under-trained (stopped at its epoch limit while "
                        f"still improving: {summary['stop_reason']})")
    else:
        log.warning(f"{w.dataset}/{w.method}/seed{w.seed}: the method failed ({reason}); one status=failed row")
        table = failed_metric_table(reason, dataset=w.dataset, method=w.method, seed=int(w.seed))
    write_tsv_atomic(table, snakemake.output[0])
