"""Rule graph_diffvae_links: predicted links, node embedding, link fractions between cell types."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    from livaebench.analyses import diffvae as dv
    from livaebench.models.diffvae import load_model, top_links

    w, p, out = snakemake.wildcards, snakemake.params, snakemake.output
    prep = ad.read_h5ad(snakemake.input.data, backed="r")
    model = load_model(snakemake.input.model, prep, w.dataset)
    mu, z_star = model.embeddings()
    predicted = top_links(z_star, p.k)
    given = model.input_adjacency()
    sp.save_npz(out.predicted, predicted)
    sp.save_npz(out.input_links, given)
    np.savez(out.embedding, mu=mu, z_star=z_star, obs_names=np.asarray(prep.obs_names, dtype=str))
    label_key = prep.uns["livaebench"].get("label_key") or ""
    labels = prep.obs[label_key].astype(str).to_numpy() if label_key in prep.obs else np.full(prep.n_obs, "?")
    fractions = {name: dv.link_fractions(a, labels) for name, a in (("input", given), ("predicted", predicted))}
    long = pd.concat([f.stack().rename("fraction").reset_index().rename(columns={"level_1": "to"}).assign(links=name)
                      for name, f in fractions.items()], ignore_index=True)
    long[["links", "from", "to", "fraction"]].to_csv(out.fractions, sep="\t", index=False, float_format="%.4g")
    stats = {name: dv.same_type_enrichment(a, labels) for name, a in (("input", given), ("predicted", predicted))}
    pd.DataFrame(stats).T.rename_axis("links").to_csv(out.summary, sep="\t", float_format="%.4g")
    log.info(f"{w.dataset}/graph_diffvae: " + "; ".join(
        f"{n}: {s['n_links']} links, same type {s['same_type']:.3f} (chance {s['chance']:.3f})" for n, s in stats.items()))
    dv.plot_link_fractions(fractions["input"], fractions["predicted"], stats, out_png=out.png,
                           title=f"{w.dataset}: Graph-DiffVAE, links between cell types (input graph vs the "
                                 f"{p.k} most probable partners of each cell)")
