# QC, feature selection and normalisation (docs/methods.md §1): RNA and ATAC.


rule preprocess:
    input:
        rules.assemble_counts.output,
    output:
        "results/data/{dataset}/preprocessed.h5ad",
    params:
        row=preprocess_row,
        options=config["preprocess"],
    log:
        "logs/preprocess/{dataset}.log",
    benchmark:
        "results/benchmarks/preprocess/{dataset}.tsv",
    conda:
        CONDA_ENV
    script:
        "../../scripts/preprocess.py"
