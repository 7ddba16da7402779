"""Rule site: the static results site results/site/ (livaebench.site) and its zip for the report."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    from pathlib import Path

    from livaebench.site import build_site

    manifest = snakemake.params.manifest
    pages = build_site(Path(snakemake.output.index).parent, datasets=manifest["datasets"],
                       modalities=manifest["modalities"], comparisons=manifest["comparisons"],
                       tables=manifest["tables"], archive=snakemake.output.archive)
    log.info(f"results site: {len(pages)} pages in {Path(snakemake.output.index).parent} "
             f"({', '.join(pages)}); zipped to {snakemake.output.archive}")
