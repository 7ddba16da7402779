"""Rule diffvae_celltypes: K-means of μ, extreme cells per dimension, marker dimensions, high-weight genes."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    import anndata as ad
    import pandas as pd

    from livaebench.analyses import diffvae as dv
    from livaebench.embedding import load_latents
    from livaebench.methods.deep_clustering import default_n_clusters
    from livaebench.models.diffvae import decoder_weight_product, load_model

    w, p, out = snakemake.wildcards, snakemake.params, snakemake.output
    prep = ad.read_h5ad(snakemake.input.data, backed="r")
    emb = ad.read_h5ad(snakemake.input.embedding)
    z = load_latents(snakemake.input.latent)["X_latent"]
    model = load_model(snakemake.input.model, prep, w.dataset)
    label_key = prep.uns["livaebench"].get("label_key") or ""
    labels = prep.obs[label_key].astype(str).to_numpy() if label_key in prep.obs else ["?"] * prep.n_obs
    n_clusters = p.n_clusters or default_n_clusters(prep)
    clusters = dv.kmeans_clusters(z, n_clusters, p.seed)
    pd.DataFrame({"cell": prep.obs_names, "cluster": clusters, "label": labels}).to_csv(out.clusters, sep="\t",
                                                                                         index=False)
    shares = dv.dimension_shares(z, clusters)
    shares.to_csv(out.shares, sep="\t", float_format="%.4g")
    genes = dv.high_weight_genes(decoder_weight_product(model), prep.var_names, p.n_genes)
    genes.to_csv(out.genes, sep="\t", index=False, float_format="%.5g")
    markers = dv.marker_dimensions(shares, p.n_dims)
    # each marker dimension's high-weight genes beside it (the paper's Table 1)
    top = genes.groupby("dimension")["gene"].apply(lambda g: ";".join(g.head(5)))
    markers["high_weight_genes"] = markers["dimension"].map(top)
    majority = pd.crosstab(clusters, labels).idxmax(axis=1)
    markers["majority_label"] = markers["group"].astype(int).map(majority)
    markers.to_csv(out.markers, sep="\t", index=False, float_format="%.4g")
    log.info(f"{w.dataset}/diffvae: {n_clusters} K-means clusters of μ ({z.shape[1]} dims); cluster -> majority "
             "label: " + ", ".join(f"{c}:{l}" for c, l in majority.items()))
    dv.plot_celltypes(emb.obsm["X_tsne"], clusters, labels, shares, out_png=out.png,
                      title=f"{w.dataset}: DiffVAE latent μ, K-means clusters and the extreme cells of each dimension")
