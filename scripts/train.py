"""Rule train: fit one registered method on one preprocessed dataset; save its latent(s) and artifacts."""
from pathlib import Path

from livaebench.runtime import step

with step(snakemake.log[0], threads=snakemake.threads) as log:
    import anndata as ad

    from livaebench.embedding import save_latents
    from livaebench.failures import record_failure
    from livaebench.methods import fit_method, get_method

    w, p = snakemake.wildcards, snakemake.params
    adata = ad.read_h5ad(snakemake.input[0])
    get_method(w.method).check_modality(adata.uns["livaebench"]["modality"], w.dataset)  # a config error: stop
    try:
        latents = fit_method(w.method, adata, dataset=w.dataset, seed=int(w.seed),
                             outdir=Path(snakemake.output.latent).parent, threads=snakemake.threads,
                             overrides=p.overrides, global_params={"latent_dim": p.latent_dim}, log=log)
    except Exception as err:
        if p.on_failure == "stop":
            raise
        artifacts = [path for key, path in snakemake.output.items() if key != "latent"]
        record_failure(snakemake.output.latent, artifacts, err, what=f"{w.dataset}/{w.method}/seed{w.seed}", log=log)
    else:
        save_latents(snakemake.output.latent, latents)
