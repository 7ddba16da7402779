"""Rule summary_figure: the leaderboard of one modality as a results table figure (PNG + PDF)."""
from livaebench.runtime import step

with step(snakemake.log[0]):
    import pandas as pd

    from livaebench.summary_plots import summary_figure

    board = pd.read_csv(snakemake.input.board, sep="\t", dtype={"method": str, "family": str, "control": str})
    scores = pd.read_csv(snakemake.input.scores, sep="\t", dtype={"method": str, "metric": str, "category": str})
    summary_figure(board, scores, out_png=snakemake.output.png,
                   title=f"{snakemake.wildcards.modality}: metrics scaled between the controls, ranked by mean rank")
