"""Rule fetch_geo: download the supplementary files that hold a GEO series' counts (pattern auto: the layout
recognised from the listing; else the regex's files), partial files resumed from the cache."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    from livaebench.data.geo import fetch_geo, fetch_options

    dataset = snakemake.wildcards.dataset
    options = fetch_options(snakemake.config.get("geo", {}), dataset=dataset)
    options["base_url"] = snakemake.params.base_url
    fetch_geo(snakemake.params.accession, snakemake.output[0], dataset=dataset, pattern=snakemake.params.pattern,
              samples=snakemake.params.samples, **options)
