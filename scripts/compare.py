"""Rule compare: paired statistics of one comparison family (docs/methods.md §4)."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    from livaebench.labels import label_summaries
    from livaebench.results import read_metrics, write_tsv_atomic
    from livaebench.stats import DEFAULT_METRICS, compare

    spec, name = snakemake.params.spec, snakemake.wildcards.comparison
    metrics = read_metrics(snakemake.input[0])
    metric_names = spec.get("metrics") or DEFAULT_METRICS  # the paper's panel; extras only when asked for
    table = compare(metrics, comparison=name, reference=spec["reference"], baselines=spec["baselines"],
                    metrics_list=metric_names, datasets=spec["datasets"], test=spec["test"],
                    correction=spec["correction"])
    # what each label-based metric was scored against: "annotated", or "pseudo-labels (KMeans, k=..)" with counts
    table["labels"] = table["metric"].map(label_summaries(metrics, spec["datasets"])).fillna("")
    write_tsv_atomic(table, snakemake.output[0])
    log.info(f"{name}: {spec['reference']} vs {', '.join(spec['baselines'])} on {len(spec['datasets'])} datasets")
    for metric, rows in table[table["replicate"] != "dataset"].groupby("metric", sort=False):
        log.info(f"{name}: {metric} on {rows['n_datasets'].max()} {rows['replicate'].iloc[0]} replicates")
