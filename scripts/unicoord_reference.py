"""Rule unicoord_reference: a trained UniCoord model as a pretrained reference for a new dataset (genes matched
by name, missing ones zero-filled): its labels predicted, compared with the dataset's own labels."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    import anndata as ad
    import numpy as np

    from livaebench.analyses.unicoord.common import Reference, label_key_of, query_matrix, read_split, truth_labels
    from livaebench.analyses.unicoord.reference import confusion, plot_confusion, simulate_query

    w, s, seed = snakemake.wildcards, snakemake.params.settings, snakemake.params.seed
    ref = Reference(snakemake.input.model)
    adata = ad.read_h5ad(snakemake.input.data, backed=None)
    key = label_key_of(adata, ref.layout)
    if s["query"]:
        query = ad.read_h5ad(snakemake.input.query)
        label = s["query_label_key"]
        source = s["query"]
    else:  # the held-out cells as a separate dataset with another gene panel (see the rule's caption)
        query = simulate_query(adata, read_split(snakemake.input.split, adata), drop_genes=s["drop_genes"], seed=seed)
        label = key
        source = f"held-out {w.dataset} cells, {s['drop_genes']:.0%} of the genes removed"
    query.write_h5ad(snakemake.output.query)
    what = f"query '{source}'"
    predicted = ref.predict(query_matrix(query, ref.var_names, what, log))
    predicted.insert(0, "cell", query.obs_names)
    truth = truth_labels(query.obs[label], ref.discrete[key]) if label and label in query.obs else None
    if truth is not None:
        predicted.insert(1, "true", truth)
    predicted.to_csv(snakemake.output.predictions, sep="\t", index=False, float_format="%.4g")
    if truth is None:
        table = predicted[key].value_counts(normalize=True).rename("share").to_frame().T
        title = f"{w.dataset} reference → {source}: predicted '{key}' (the query has no labels)"
    else:
        table = confusion(truth, predicted[key])
        accuracy = float(np.mean(truth == predicted[key].to_numpy()))
        title = f"{w.dataset} reference → {source}\n'{key}' accuracy {accuracy:.3f} on {query.n_obs} cells"
        log.info(f"{w.dataset}: reference mapping of {query.n_obs} query cells: accuracy {accuracy:.3f}")
    table.to_csv(snakemake.output.table, sep="\t", float_format="%.4g")
    plot_confusion(table, out_png=snakemake.output.png, title=title)
