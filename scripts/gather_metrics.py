"""Rule gather_metrics: every embedding's metrics in results/metrics/all.tsv."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    from livaebench.results import gather_metric_tables, write_tsv_atomic

    table = gather_metric_tables(snakemake.input)
    write_tsv_atomic(table, snakemake.output[0])
    log.info(f"{len(table)} metric values from {len(snakemake.input)} embeddings")
