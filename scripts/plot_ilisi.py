"""Rule plot_ilisi: batch mixing (iLISI) against subsample size on the multi-batch datasets (paper Fig. 11B)."""
from livaebench.runtime import step

with step(snakemake.log[0]):
    from livaebench.plotting import ilisi_vs_subsample
    from livaebench.results import read_metrics

    metrics = read_metrics(snakemake.input[0])
    metrics = metrics[metrics["dataset"].isin(snakemake.params.datasets)]
    ilisi_vs_subsample(metrics, methods=snakemake.params.methods, out_png=snakemake.output.png,
                       reference=snakemake.params.reference,
                       title="Batch mixing (iLISI) against subsample size (paper Fig. 11B)")
