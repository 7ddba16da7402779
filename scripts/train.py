"""Rule train: fit one registered method on one preprocessed dataset; save its latent(s)."""
from pathlib import Path

from livaebench.runtime import step

with step(snakemake.log[0], threads=snakemake.threads) as log:
    import anndata as ad

    from livaebench.embedding import save_latents
    from livaebench.methods import fit_method

    w = snakemake.wildcards
    latents = fit_method(w.method, ad.read_h5ad(snakemake.input[0]), dataset=w.dataset, seed=int(w.seed),
                         outdir=Path(snakemake.output[0]).parent, threads=snakemake.threads,
                         overrides=snakemake.params.overrides,
                         global_params={"latent_dim": snakemake.params.latent_dim}, log=log)
    save_latents(snakemake.output[0], latents)
