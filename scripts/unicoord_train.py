"""Rule unicoord_train: fit a UniCoord analysis model on the train cells (variant `split`), or on the train
cells without the held-out category, supervised by the lineage stage (variant `restore`)."""
from pathlib import Path

from livaebench.runtime import step

with step(snakemake.log[0], threads=snakemake.threads) as log:
    import anndata as ad

    from livaebench.analyses.unicoord.common import add_stage, read_split, train_variant
    from livaebench.runtime import job_device

    w, p = snakemake.wildcards, snakemake.params
    adata = ad.read_h5ad(snakemake.input.data)
    keep = ~read_split(snakemake.input.split, adata)
    if w.variant == "restore":
        key = p.restoration["key"] or adata.uns["livaebench"]["label_key"]
        add_stage(adata, key, p.restoration["stages"], w.dataset)
        keep &= (adata.obs[key].astype(str) != p.restoration["heldout"]).to_numpy()
        log.info(f"{w.dataset}: restoration model without '{p.restoration['heldout']}' ({key}), "
                 f"supervised by lineage_stage")
    device = job_device(snakemake.resources.get("gpu", 0), p.gpu_fallback, f"{w.dataset}/unicoord/{w.variant}", log)
    train_variant(adata[keep].copy(), dataset=w.dataset, seed=int(p.seed), outdir=Path(snakemake.output[0]).parent,
                  overrides=p.overrides, threads=snakemake.threads, device=device, log=log)
