"""Rule rule_benchmarks: wall time and peak memory per rule, from every job's benchmark file."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    from livaebench.results import summarize_benchmarks, write_tsv_atomic

    table = summarize_benchmarks(snakemake.params.files)
    write_tsv_atomic(table, snakemake.output[0])
    log.info("per-rule wall time and peak memory:\n%s", table.to_string(index=False))
