"""Rule plot_comparison: four-panel metric boxplots and per-dataset delta boxplots of one comparison."""
from livaebench.runtime import step

with step(snakemake.log[0]):
    import pandas as pd

    from livaebench.plotting import delta_boxplots, metric_boxplots
    from livaebench.results import read_metrics

    spec, name = snakemake.params.spec, snakemake.wildcards.comparison
    metrics = read_metrics(snakemake.input.metrics)
    metrics = metrics[metrics["dataset"].isin(spec["datasets"])]
    stats = pd.read_csv(snakemake.input.stats, sep="\t")
    metric_boxplots(metrics, stats, reference=spec["reference"], baselines=spec["baselines"],
                    out_png=snakemake.output.boxplots, title=name)
    delta_boxplots(metrics, reference=spec["reference"], baselines=spec["baselines"],
                   metrics_list=list(dict.fromkeys(stats["metric"])), out_png=snakemake.output.delta, title=name)
