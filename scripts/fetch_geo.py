"""Rule fetch_geo: download a GEO series' selected supplementary files."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    from livaebench.data.geo import fetch_geo

    geo = snakemake.params.geo
    fetch_geo(snakemake.params.accession, snakemake.output[0], dataset=snakemake.wildcards.dataset,
              pattern=snakemake.params.pattern, base_url=geo["base_url"], retries=geo["retries"],
              timeout=geo["timeout"])
