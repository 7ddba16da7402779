"""Rule plot_comparison: the paper's panels of metric boxplots and per-dataset delta boxplots of one comparison."""
from livaebench.runtime import step

with step(snakemake.log[0]):
    import pandas as pd

    from livaebench.labels import pseudo_title_note
    from livaebench.panels import family_heading, family_panels
    from livaebench.plotting import delta_boxplots, metric_boxplots
    from livaebench.results import read_metrics

    spec, name = snakemake.params.spec, snakemake.wildcards.comparison
    metrics = read_metrics(snakemake.input.metrics)
    metrics = metrics[metrics["dataset"].isin(spec["datasets"])]
    stats = pd.read_csv(snakemake.input.stats, sep="\t")
    note = pseudo_title_note(metrics, spec["datasets"])  # '' unless some dataset is scored on pseudo-labels
    title = family_heading(name, spec) + (f"\n{note}" if note else "")
    metric_boxplots(metrics, stats, reference=spec["reference"], baselines=spec["baselines"],
                    out_png=snakemake.output.boxplots, title=title, panels=family_panels(spec))
    delta_boxplots(metrics, reference=spec["reference"], baselines=spec["baselines"],
                   metrics_list=list(dict.fromkeys(stats["metric"])), out_png=snakemake.output.delta, title=title)
