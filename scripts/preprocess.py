"""Rule preprocess: QC, feature selection and normalisation (docs/methods.md §1)."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    from livaebench.data.io import read_h5ad_checked, write_h5ad_atomic
    from livaebench.data.preprocess import preprocess

    row, options = snakemake.params.row, dict(snakemake.params.options)
    modality = row["modality"]
    n_features = {"rna": options.pop("n_features_rna"), "atac": options.pop("n_features_atac")}[modality]
    # For peaks, "detected features per cell" is far lower than for genes: ATAC has its own threshold.
    min_peaks = options.pop("min_peaks")
    if modality == "atac":
        options["min_genes"] = min_peaks
    adata = read_h5ad_checked(snakemake.input[0], dataset=row["dataset"])
    prep = preprocess(adata, dataset=row["dataset"], modality=modality, label_key=row["label_key"],
                      batch_key=row["batch_key"], n_features=n_features, log=log, **options)
    write_h5ad_atomic(prep, snakemake.output[0])
