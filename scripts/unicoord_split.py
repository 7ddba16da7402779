"""Rule unicoord_split: the seeded, label-stratified train/test split every UniCoord analysis model uses."""
from livaebench.runtime import step

with step(snakemake.log[0]) as log:
    import anndata as ad

    from livaebench.analyses.unicoord.common import heldout_split, write_split

    adata = ad.read_h5ad(snakemake.input[0], backed="r")
    label = adata.uns["livaebench"].get("label_key") or ""
    labels = adata.obs[label] if label in adata.obs else ["all"] * adata.n_obs
    test = heldout_split(labels, snakemake.params.test_frac, snakemake.params.seed)
    write_split(snakemake.output[0], adata.obs_names, test)
    log.info(f"{snakemake.wildcards.dataset}: {int(test.sum())} test / {int((~test).sum())} train cells "
             f"(stratified by '{label or 'none'}', seed {snakemake.params.seed})")
