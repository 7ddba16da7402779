"""Rule assemble_counts: registry row + local file or GEO download -> validated raw-count AnnData."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    from livaebench.data.assemble import assemble_counts
    from livaebench.data.io import write_h5ad_atomic

    adata = assemble_counts(snakemake.params.row, snakemake.input[0], seed=snakemake.params.seed, log=log,
                            geo=snakemake.config.get("geo", {}))
    write_h5ad_atomic(adata, snakemake.output[0])
