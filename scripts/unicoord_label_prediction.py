"""Rule unicoord_label_prediction: UniCoord's label predictions on the held-out cells beside a k-NN classifier."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    import anndata as ad
    import pandas as pd

    from livaebench.analyses.unicoord.common import Reference, label_key_of, read_split, truth_labels
    from livaebench.analyses.unicoord.label_prediction import knn_predict, per_class_accuracy, plot_per_class_accuracy
    from livaebench.models.unicoord import model_input

    w, s = snakemake.wildcards, snakemake.params.settings
    adata = ad.read_h5ad(snakemake.input.data)
    test = read_split(snakemake.input.split, adata)
    ref = Reference(snakemake.input.model)
    key = label_key_of(adata, ref.layout)
    x = model_input(adata, f"dataset '{w.dataset}'")
    truth = truth_labels(adata.obs[key], ref.discrete[key])
    predicted = ref.predict(x[test])
    knn = knn_predict(x[~test], truth[~test], x[test], k=s["knn_k"], n_pcs=s["n_pcs"], seed=snakemake.params.seed)
    table = per_class_accuracy(truth[test], {"UniCoord": predicted[key].to_numpy(), "kNN (PCA)": knn})
    table.insert(0, "key", key)
    table.to_csv(snakemake.output.table, sep="\t", index=False, float_format="%.4g")
    pd.concat([pd.DataFrame({"cell": adata.obs_names[test], "true": truth[test], "kNN (PCA)": knn}),
               predicted.add_prefix("UniCoord_")], axis=1).to_csv(snakemake.output.predictions, sep="\t", index=False,
                                                                   float_format="%.4g")
    overall = table.set_index("class").loc["overall"]
    log.info(f"{w.dataset}: accuracy on {int(test.sum())} held-out cells: UniCoord {overall['UniCoord']:.3f}, "
             f"kNN {overall['kNN (PCA)']:.3f}")
    plot_per_class_accuracy(table.drop(columns="key"), out_png=snakemake.output.png,
                            title=f"{w.dataset}: '{key}' of held-out cells (UniCoord trained without them)")
