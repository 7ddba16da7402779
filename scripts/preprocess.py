"""Rule preprocess: QC, feature selection and normalisation (docs/methods.md §1)."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    from livaebench.config import preprocess_options
    from livaebench.data.io import read_h5ad_checked, write_h5ad_atomic
    from livaebench.data.preprocess import preprocess

    row = snakemake.params.row
    # The config's preprocess values, with the registry row's QC columns (min_genes / min_peaks, min_cells,
    # max_mito_pct) overriding them for this dataset; ATAC's min_peaks is its "minimum detected features".
    options = preprocess_options(row, dict(snakemake.params.options))
    overrides = options.pop("overrides")
    for line in options.pop("skipped"):
        log.info("%s: %s", row["dataset"], line)
    if overrides:
        log.info("%s: registry QC overrides: %s", row["dataset"], ", ".join(f"{k}={v}" for k, v in overrides.items()))
    adata = read_h5ad_checked(snakemake.input[0], dataset=row["dataset"])
    # label_key pseudo:kmeans[:K]: KMeans pseudo-labels, k/seed/n_init resolved by the rule (livaebench.labels)
    prep = preprocess(adata, dataset=row["dataset"], modality=row["modality"], label_key=row["label_key"],
                      batch_key=row["batch_key"], pseudo_labels=row.get("pseudo_labels"), log=log, **options)
    write_h5ad_atomic(prep, snakemake.output[0])
