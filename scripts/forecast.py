"""Rule forecast: predicted CPU-hours, GPU-hours, peak memory per job class and wall time of this config's run
on a cluster of `forecast.cores` cores and `forecast.gpus` GPUs (docs/forecast.md)."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    from livaebench.forecast import cluster_from_config, forecast_run, forecast_table, load_cost_model, markdown
    from livaebench.results import write_tsv_atomic

    params = snakemake.params
    cluster = cluster_from_config(params.settings)
    model = load_cost_model(snakemake.input.model)
    listings = {d: path for d, path in params.listings.items() if path in set(snakemake.input.listings)}
    result = forecast_run(snakemake.config, params.rows, params.targets, model, cluster, listings)
    table = forecast_table(result, cluster)
    write_tsv_atomic(table, snakemake.output.table)
    text = markdown(result["summary"], result["wall_s"], cluster, result["sizes"], params.configfiles,
                    result["sources"])
    with open(snakemake.output.text, "w") as handle:
        handle.write(text)
    sizes = result["sizes"]
    guessed = sizes[~sizes["how"].str.startswith(("shape of", "GEO listing"))]
    if len(guessed):
        log.warning("%d of %d datasets have no size known before running; estimated from the registry (%s): %s",
                    len(guessed), len(sizes), "; ".join(sorted(set(guessed["how"]))), ", ".join(guessed["dataset"]))
    log.info("forecast on %d cores, %d GPUs:\n%s", cluster.cores, cluster.gpus, table.to_string(index=False))
    log.info("wrote %s and %s", snakemake.output.table, snakemake.output.text)
