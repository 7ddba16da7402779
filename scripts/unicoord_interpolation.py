"""Rule unicoord_interpolation: held-out cells decoded with a continuous coordinate set to their own value plus
a seeded uniform jitter (the paper's interpolation), from the modified posterior; the decoded trajectory (mean
profile in bins along the set value) and a heatmap of its most-changing genes."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    import anndata as ad
    import numpy as np

    from livaebench.analyses.unicoord.common import Reference, category_mask, label_key_of, read_split
    from livaebench.analyses.unicoord.interpolation import (interpolate, jittered_values, plot_trajectory_heatmap,
                                                            top_varying_genes)
    from livaebench.errors import InputError
    from livaebench.models.unicoord import model_input

    w, s, seed = snakemake.wildcards, snakemake.params.settings, int(snakemake.params.seed)
    what = f"dataset '{w.dataset}', analysis unicoord (interpolation)"
    adata = ad.read_h5ad(snakemake.input.data)
    test = read_split(snakemake.input.split, adata)
    ref = Reference(snakemake.input.model)
    if not ref.continuous:
        raise InputError(what, "the model has no supervised continuous coordinate",
                         "set dataset_method_params.<dataset>.unicoord.continuous_keys to numeric obs columns")
    key = s["key"] or next(iter(ref.continuous))
    if key not in ref.continuous:
        raise InputError(what, f"'{key}' is not a supervised continuous coordinate (known: {', '.join(ref.continuous)})",
                         "set analyses.unicoord.interpolation.key to one of them")
    cells = test.copy()
    label = label_key_of(adata, ref.layout) if ref.discrete else adata.uns["livaebench"]["label_key"]
    if s["source"]:
        cells &= category_mask(adata, label, s["source"], what, "analyses.unicoord.interpolation.source")
    observed = adata.obs[key].to_numpy(dtype=float)
    lo, hi = np.nanquantile(observed, s["quantiles"])
    cells &= np.isfinite(observed)
    values = jittered_values(observed[cells], s["jitter"], seed)
    inside = (values >= lo) & (values <= hi)  # the trajectory stays within the observed range
    if inside.sum() < 2:
        raise InputError(what, f"fewer than 2 held-out cells have {key} within the quantiles {s['quantiles']}",
                         "widen analyses.unicoord.interpolation.quantiles or choose another source")
    x = model_input(adata, what)[np.flatnonzero(cells)[inside]]
    trajectory = interpolate(ref, x, key, values[inside], adata.var_names, steps=s["steps"], seed=seed)
    trajectory.to_csv(snakemake.output.table, sep="\t", float_format="%.5g")
    genes = top_varying_genes(trajectory, s["n_genes"])
    log.info(f"{w.dataset}: {int(inside.sum())} held-out cells decoded at their {key} ± {s['jitter']:g} "
             f"(seed {seed}), {len(trajectory)} bins; most changing genes: {', '.join(genes[:10])}")
    who = f"held-out {s['source']} cells" if s["source"] else "held-out cells"
    plot_trajectory_heatmap(trajectory, genes, out_png=snakemake.output.png, xlabel=f"{key} (set coordinate)",
                            title=f"{w.dataset}: {who} ({int(inside.sum())}) decoded along {key} (± {s['jitter']:g})")
