"""Rule embed: UMAP and t-SNE of a latent, saved with the latent and the cell annotations."""
from livaebench.runtime import enable_numba_cache, step

with step(snakemake.log[0], threads=snakemake.threads) as log:
    enable_numba_cache()
    import anndata as ad

    from livaebench.data.io import write_h5ad_atomic
    from livaebench.embedding import embedding_adata, load_convergence, load_latents, umap_tsne
    from livaebench.failures import failure_reason

    w, options = snakemake.wildcards, snakemake.params.options
    latents = load_latents(snakemake.input.latent)
    convergence = load_convergence(snakemake.input.latent)  # None for a failure record
    prep = ad.read_h5ad(snakemake.input.data, backed="r")
    reason = failure_reason(latents)
    if reason is None:
        views = umap_tsne(latents["X_latent"], seed=int(w.seed), n_neighbors=options["n_neighbors"],
                          perplexity=options["tsne_perplexity"], threads=snakemake.threads)
        log.info(f"{w.dataset}/{w.method}/seed{w.seed}: latent {latents['X_latent'].shape}, UMAP and t-SNE written")
    else:  # the method failed: the embedding file carries the failure on, without views
        latents, views = {}, {}
        log.warning(f"{w.dataset}/{w.method}/seed{w.seed}: the method failed ({reason}); no embedding")
    emb = embedding_adata(prep, latents, views, method=w.method, seed=int(w.seed), failure=reason,
                          convergence=convergence)
    write_h5ad_atomic(emb, snakemake.output[0])
