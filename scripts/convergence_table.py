"""Rule convergence: every training phase of every run in results/metrics/convergence.tsv, flagged runs logged."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    from livaebench.convergence import convergence_table, flagged_runs
    from livaebench.embedding import load_convergence
    from livaebench.results import write_tsv_atomic

    runs = [(d, m, int(s), load_convergence(path)) for (d, m, s), path in zip(snakemake.params.runs, snakemake.input)]
    table = convergence_table(runs, snakemake.params.max_rel_improvement)
    write_tsv_atomic(table, snakemake.output[0])
    flagged = flagged_runs(table)
    log.info(f"{len(table)} training phase(s) of {table[['dataset', 'method', 'seed']].drop_duplicates().shape[0]} "
             f"neural run(s); {len(flagged)} under-trained")
    for run in flagged.itertuples():
        log.warning(f"under-trained: {run.dataset}/{run.method}/seed{run.seed} (phase {run.phases}): stopped at its "
                    "epoch limit while still improving; raise its epochs in method_params")
