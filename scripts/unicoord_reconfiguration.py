"""Rule unicoord_reconfiguration: held-out cells of one category set to every other category (and to chosen
continuous values) and decoded from a seeded draw of the modified posterior; the generated cells, how far they
moved, a UMAP and a marker dot plot."""
from livaebench.runtime import step

with step(snakemake.log[0], threads=snakemake.threads) as log:
    import anndata as ad
    import numpy as np

    from livaebench.analyses.unicoord.common import (Reference, category_mask, category_means, label_key_of, read_split,
                                                     truth_labels)
    from livaebench.analyses.unicoord.reconfiguration import (marker_genes, plot_dotplot,
                                                              plot_reconfiguration_umap, reconfigure_cells,
                                                              reconfiguration_table, umap_coordinates)
    from livaebench.models.unicoord import RARE
    from livaebench.models.unicoord import model_input
    from livaebench.runtime import enable_numba_cache

    enable_numba_cache()
    w, s, seed = snakemake.wildcards, snakemake.params.settings, snakemake.params.seed
    what = f"dataset '{w.dataset}', analysis unicoord (reconfiguration)"
    adata = ad.read_h5ad(snakemake.input.data)
    test = read_split(snakemake.input.split, adata)
    ref = Reference(snakemake.input.model)
    key = s["key"] or label_key_of(adata, ref.layout)
    if key not in ref.discrete:
        raise ValueError(f"{what}: '{key}' is not a supervised discrete coordinate of the model")
    labels = truth_labels(adata.obs[key], ref.discrete[key])
    source = s["source"] or str(adata.obs.loc[test, key].value_counts().idxmax())
    source_cells = np.flatnonzero(test & category_mask(adata, key, source, what, "analyses.unicoord.reconfiguration.source"))
    rng = np.random.default_rng(seed)
    source_cells = np.sort(rng.choice(source_cells, min(s["n_cells"], len(source_cells)), replace=False))
    targets = s["targets"] or [c for c in ref.discrete[key] if c not in (source, RARE)]
    x = model_input(adata, what)
    gen = reconfigure_cells(ref, x[source_cells], adata.obs.iloc[source_cells], key=key, source=source,
                            targets=targets, continuous=s["continuous"], var_names=adata.var_names, seed=seed)
    gen.write_h5ad(snakemake.output.cells)
    means = category_means(x, labels)
    table = reconfiguration_table(gen, ref.reconfigure(x[source_cells], seed=seed), means, source)
    table.to_csv(snakemake.output.table, sep="\t", index=False, float_format="%.4g")
    log.info(f"{w.dataset}: {len(source_cells)} held-out {source} cells reconfigured to {len(targets)} categories; "
             f"category each moved most toward: {table['moves_most_toward'].tolist()}")

    observed = np.flatnonzero(test)
    profiles = np.vstack([x[observed], np.asarray(gen.X)])
    groups = np.concatenate([labels[observed], gen.obs["target"].astype(str).to_numpy()])
    generated = np.r_[np.zeros(len(observed), bool), np.ones(gen.n_obs, bool)]
    xy = umap_coordinates(profiles, seed=seed)
    plot_reconfiguration_umap(xy, groups, generated, out_png=snakemake.output.umap,
                              title=f"{w.dataset}: held-out cells (dots) and {source} cells reconfigured (crosses)")
    genes = marker_genes(x, labels, adata.var_names, s["n_markers"])
    dot_groups = np.concatenate([labels[observed], [f"{source} → {t} (generated)" for t in gen.obs["target"]]])
    rank = {g: i for i, g in enumerate([*ref.discrete[key], *dict.fromkeys(dot_groups[generated])])}
    order = np.argsort([rank.get(g, len(rank)) for g in dot_groups], kind="stable")
    plot_dotplot(profiles[order], dot_groups[order], genes, adata.var_names, out_png=snakemake.output.dotplot,
                 title=f"{w.dataset}: markers of each '{key}' category, observed vs generated")
