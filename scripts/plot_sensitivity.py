"""Rule plot_sensitivity: metrics against a swept hyper-parameter."""
from livaebench.runtime import step

with step(snakemake.log[0]):
    from livaebench.labels import pseudo_title_note
    from livaebench.plotting import sensitivity_lines
    from livaebench.results import read_metrics

    spec, name = snakemake.params.spec, snakemake.wildcards.comparison
    metrics = read_metrics(snakemake.input[0])
    metrics = metrics[metrics["dataset"].isin(spec["datasets"])]
    note = pseudo_title_note(metrics, spec["datasets"])  # '' unless some dataset is scored on pseudo-labels
    sweep = {m: v for m, v in spec["sweep"].items() if m in set(metrics["method"])}
    sensitivity_lines(metrics, sweep=sweep, param_name=spec.get("sweep_parameter", "value"),
                      metrics_list=spec.get("metrics") or ["umap_overall", "tsne_overall", "ARI", "overall_intrinsic"],
                      out_png=snakemake.output.png, title=name + (f"\n{note}" if note else ""))
