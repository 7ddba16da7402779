"""Rule gather_metrics: every embedding's metrics in results/metrics/all.tsv."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    from livaebench.convergence import flagged_runs
    from livaebench.results import failures, gather_metric_tables, write_tsv_atomic

    table = gather_metric_tables(snakemake.input)
    failed = failures(table)
    write_tsv_atomic(table, snakemake.output.table)
    write_tsv_atomic(failed, snakemake.output.failures)
    log.info(f"{len(table)} metric rows from {len(snakemake.input)} embeddings; {len(failed)} failed run(s)")
    for run in failed.itertuples():
        log.warning(f"failed: {run.dataset}/{run.method}/seed{run.seed}: {run.reason}")
    under = flagged_runs(table)  # also in results/metrics/convergence.tsv, per phase
    for run in under.itertuples():
        log.warning(f"under-trained: {run.dataset}/{run.method}/seed{run.seed} ({run.phases})")
