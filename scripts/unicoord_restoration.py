"""Rule unicoord_restoration: restore a category the model never saw by setting the lineage-stage coordinate
of held-out cells of the other categories to its stage (a seeded draw of the modified posterior); compare with
its real mean profile."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    import anndata as ad

    from livaebench.analyses.unicoord.common import (STAGE_KEY, Reference, add_stage, category_mask, category_means,
                                                     read_split)
    from livaebench.analyses.unicoord.restoration import neighbour_stage_mean, plot_restoration, restoration_table
    from livaebench.models.unicoord import model_input

    w, s, seed = snakemake.wildcards, snakemake.params.settings, int(snakemake.params.seed)
    what = f"dataset '{w.dataset}', analysis unicoord (restoration)"
    adata = ad.read_h5ad(snakemake.input.data)
    test = read_split(snakemake.input.split, adata)
    key, heldout = s["key"] or adata.uns["livaebench"]["label_key"], s["heldout"]
    add_stage(adata, key, s["stages"], w.dataset)
    held = category_mask(adata, key, heldout, what, "analyses.unicoord.restoration.heldout")
    ref = Reference(snakemake.input.model)
    x = model_input(adata, what)
    sources = test & ~held
    restored = ref.reconfigure(x[sources], continuous={STAGE_KEY: float(s["stages"][heldout])}, seed=seed)
    labels = adata.obs[key].astype(str).to_numpy()
    stage = adata.obs[STAGE_KEY].to_numpy()
    neighbours = neighbour_stage_mean(x[~held], stage[~held], float(s["stages"][heldout]))
    table = restoration_table(restored, x[held].mean(axis=0), category_means(x[~held], labels[~held]), heldout,
                              neighbours)
    table.to_csv(snakemake.output.table, sep="\t", index=False, float_format="%.5g")
    base = table[table["baseline"]].iloc[0]
    log.info(f"{w.dataset}: restored {heldout} from {int(sources.sum())} held-out cells of other categories: "
             f"r = {table['pearson'].iloc[0]:.4f} vs nearest observed category {base['profile']} r = "
             f"{base['pearson']:.4f}")
    plot_restoration(table, out_png=snakemake.output.png,
                     title=f"{w.dataset}: restoring '{heldout}' (never seen in training) via {STAGE_KEY} = "
                           f"{s['stages'][heldout]:g}")
