"""Rule summary_table: the leaderboard and the per-dataset scores of one modality (docs/methods.md §8)."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    from livaebench.results import read_metrics, write_tsv_atomic
    from livaebench.summary import summarize

    board, scores = summarize(read_metrics(snakemake.input[0]), datasets=snakemake.params.datasets,
                              families=snakemake.params.families, weights=snakemake.params.weights)
    write_tsv_atomic(board, snakemake.output.board)
    write_tsv_atomic(scores, snakemake.output.scores)
    log.info(f"{snakemake.wildcards.modality}: {len(board)} rows ({(board['control'] != 'none').sum()} controls) "
             f"on {len(snakemake.params.datasets)} datasets")
