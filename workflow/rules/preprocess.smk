# QC, feature selection and normalisation (docs/methods.md §1): RNA and ATAC.


rule preprocess:
    """QC, feature selection and normalisation of one dataset's counts (preprocessed.h5ad)."""
    input:
        rules.assemble_counts.output,
    output:
        "results/data/{dataset}/preprocessed.h5ad",
    log:
        "logs/preprocess/{dataset}.log",
    benchmark:
        "results/benchmarks/preprocess/{dataset}.tsv"
    conda:
        LIGHT_ENV
    params:
        row=preprocess_row,
        options=config["preprocess"],
    script:
        "../../scripts/preprocess.py"
