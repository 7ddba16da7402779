"""Rule interpret_components: latent components against genes, UMAP panels, gene-set enrichment."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    import anndata as ad
    import pandas as pd

    from livaebench.analyses import interpretability as it
    from livaebench.embedding import load_latents
    from livaebench.errors import InputError

    w, p, out = snakemake.wildcards, snakemake.params, snakemake.output
    prep = ad.read_h5ad(snakemake.input.data)
    emb = ad.read_h5ad(snakemake.input.embedding)
    z = load_latents(snakemake.input.latent).get("X_latent")
    what = f"dataset '{w.dataset}', method '{p.method}'"
    if z is None or "X_umap" not in emb.obsm:
        raise InputError(what, "has no latent or no UMAP (the method failed on this dataset?)",
                         "read the method's train log; the analysis needs a finished run")
    if "lognorm" not in prep.layers or z.shape[0] != prep.n_obs:
        raise InputError(what, "the preprocessed data has no layers['lognorm'] or other cells than the latent",
                         "rerun preprocessing and training")
    x = prep.layers["lognorm"]
    genes = list(map(str, prep.var_names))
    r = it.component_gene_correlations(z, x)
    comps = it.component_names(z.shape[1])
    pd.DataFrame(r.T, index=pd.Index(genes, name="gene"), columns=comps).to_csv(out.correlations, sep="\t",
                                                                             float_format="%.5g")
    top_n = min(int(p.top_genes), len(genes))
    summary, top = it.component_table(r, genes, top_n)
    summary.to_csv(out.components, sep="\t", index=False, float_format="%.5g")
    top.to_csv(out.top_genes, sep="\t", index=False, float_format="%.5g")
    gene_sets = it.read_gmt(snakemake.input.gene_sets)
    table = it.enrichment({c: top.loc[top["component"] == c, "gene"].tolist() for c in comps}, gene_sets, genes)
    table.to_csv(out.enrichment, sep="\t", index=False, float_format="%.5g")
    significant = table[table["p_adj"] < p.alpha]
    log.info(f"{w.dataset}/{p.method}: {len(comps)} components; top genes "
             + ", ".join(f"{c}:{g}" for c, g in zip(summary["component"], summary["top_gene"]))
             + f"; {len(significant)} significant (component, gene set) pairs of {len(table)}")
    label_key = prep.uns.get("livaebench", {}).get("label_key") or ""
    labels = prep.obs[label_key].astype(str).to_numpy() if label_key in prep.obs else None
    it.plot_component_umaps(emb.obsm["X_umap"], z, x, summary, genes, out_png=out.umaps, labels=labels,
                            title=f"{w.dataset}: {p.method} components (activation) beside their top gene")
    it.plot_enrichment(table, out_png=out.enrichment_png, alpha=p.alpha,
                       title=f"{w.dataset}: {p.method} components, top {top_n} genes by |r|")
