# Paired statistics per comparison family (docs/methods.md §4).


rule compare:
    input:
        "results/metrics/all.tsv",
    output:
        "results/stats/{comparison}.tsv",
    params:
        spec=lambda w: comparison_spec(w.comparison),
    log:
        "logs/compare/{comparison}.log",
    benchmark:
        "results/benchmarks/compare/{comparison}.tsv",
    conda:
        CONDA_ENV
    script:
        "../../scripts/compare.py"
