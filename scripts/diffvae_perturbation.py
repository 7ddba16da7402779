"""Rule diffvae_perturbation: shift source cells along the target's marker dimensions, decode, classify."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    import anndata as ad
    import numpy as np
    import pandas as pd

    from livaebench.analyses import diffvae as dv
    from livaebench.embedding import load_latents
    from livaebench.errors import InputError
    from livaebench.models.diffvae import load_model, scaled_input

    w, p, out = snakemake.wildcards, snakemake.params, snakemake.output
    cfg = p.perturbation
    prep = ad.read_h5ad(snakemake.input.data)
    emb = ad.read_h5ad(snakemake.input.embedding)
    z = load_latents(snakemake.input.latent)["X_latent"]
    model = load_model(snakemake.input.model, prep, w.dataset)
    cells = pd.read_csv(snakemake.input.clusters, sep="\t")
    markers = pd.read_csv(snakemake.input.markers, sep="\t")
    labels = cells["label"].astype(str).to_numpy()
    source, target = cfg["source"], cfg["target"]
    dv.check_category(labels, source, dataset=w.dataset, setting="analyses.diffvae.perturbation.source")
    dv.check_category(labels, target, dataset=w.dataset, setting="analyses.diffvae.perturbation.target")
    types = cfg.get("classifier_types") or sorted(set(labels))  # default: every cell type, the source too
    for t in types:
        dv.check_category(labels, t, dataset=w.dataset, setting="analyses.diffvae.perturbation.classifier_types")
    if target not in types:
        raise InputError(f"dataset '{w.dataset}'", f"the target '{target}' is not among classifier_types",
                         "add it to analyses.diffvae.perturbation.classifier_types")
    # the target's marker dimensions: those of the K-means cluster that holds most of the target's cells
    target_cluster = int(cells.loc[labels == target, "cluster"].value_counts().idxmax())
    dims = markers.loc[markers["group"] == target_cluster].sort_values("rank")["dimension"].head(p.n_dims)
    dims = [int(d.removeprefix("dim")) for d in dims]
    source_mask, target_mask = labels == source, cells["cluster"].to_numpy() == target_cluster
    step_ = dv.plan_shift(z, source_mask, target_mask, dims)
    x, _, _ = scaled_input(prep, w.dataset)
    train = np.isin(labels, types)
    clf = dv.train_classifier(x[train], labels[train], p.seed, cfg.get("max_iter", 200))
    log.info(f"{w.dataset}/diffvae: target cluster {target_cluster}, dimensions {dims}; classifier on "
             f"{int(train.sum())} cells of {', '.join(types)} (training accuracy {clf.score(x[train], labels[train]):.3f})")
    summary, predicted, decoded = dv.perturb(model.decode, clf.predict, z[source_mask], step_, cfg["lambdas"], target)
    summary.insert(0, "target", target)
    summary.insert(0, "source", source)
    summary["dimensions"] = ",".join(map(str, dims))
    summary.to_csv(out.conversions, sep="\t", index=False, float_format="%.4g")
    lam = max(predicted)
    converted = (predicted[lam] == target) & (predicted[0.0] != target)
    genes = dv.moved_genes(decoded[0.0], decoded[lam], converted, prep.var_names, cfg.get("n_genes", 30))
    genes.insert(0, "lambda", lam)
    genes.to_csv(out.genes, sep="\t", index=False, float_format="%.4g")
    log.info(f"{w.dataset}/diffvae: {source} -> {target}: " + ", ".join(
        f"λ={r['lambda']:g}: {r['n_target']}/{r['n_source']}" for _, r in summary.iterrows()))
    dv.plot_perturbation(emb.obsm["X_tsne"], labels, source_mask, predicted, summary, genes, target=target,
                         out_png=out.png, title=f"{w.dataset}: DiffVAE perturbation of {source} cells towards {target} "
                                            f"(dimensions {', '.join(map(str, dims))})")
