"""Rule claims: the paper's headline claims against this run's statistics and ranked summary (docs/methods.md §4.7)."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    from pathlib import Path

    from livaebench.claims import evaluate_claims, read_scores, read_stats, write_claims

    stats = {Path(p).stem: read_stats(p) for p in snakemake.input.stats}
    scores = {Path(p).name.removesuffix("_scores.tsv"): read_scores(p) for p in snakemake.input.scores}
    table = evaluate_claims(stats, scores, specs=snakemake.params.specs)
    write_claims(table, snakemake.output.tsv, snakemake.output.md)
    counts = table["verdict"].value_counts().to_dict()
    log.info(f"{len(table)} claims from {len(stats)} statistics tables and {len(scores)} summaries: {counts}")
