# The cost of this config's run before it is submitted (docs/forecast.md): predicted CPU-hours, GPU-hours,
# peak memory per job class and the wall time on a cluster of the given size, from the cost model calibrated
# on a measured run (resources/cost_model.tsv) and the dataset sizes known before running (local files'
# shapes, the GEO listings' bytes in results/geo_files/, else the registry). Asked for by name, never part
# of `all`:
#   snakemake --configfile config/paper.yaml --cores 1 forecast --config forecast='{cores: 64, gpus: 4}'
# A listing made later (`geo_files`) is a new input, so the forecast is redone with it.


localrules:
    forecast,


rule forecast:
    """The predicted cost of this config's run: CPU-hours, GPU-hours, peak memory, wall time (results/forecast.*)."""
    input:
        model=config["forecast"]["cost_model"],
        # the listings that exist (none is made for this rule: listing needs the network)
        listings=lambda w: [p for p in forecast_listings().values() if os.path.exists(p)],
    output:
        table="results/forecast.tsv",
        text="results/forecast.md",
    log:
        "logs/forecast.log",
    conda:
        LIGHT_ENV
    params:
        targets=lambda w: benchmark_targets(),
        rows=lambda w: {d: {k: str(v) for k, v in DATASETS.loc[d].to_dict().items()} for d in DATASETS.index},
        listings=lambda w: forecast_listings(),
        settings=config["forecast"],
        configfiles=", ".join(os.path.relpath(f) for f in workflow.overwrite_configfiles) or "config/config.yaml",
    script:
        "../../scripts/forecast.py"
