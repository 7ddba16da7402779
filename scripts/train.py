"""Rule train: fit one registered method on one preprocessed dataset; save its latent(s), its convergence
records (carried on to the embedding and the metric tables) and artifacts."""
import json
from pathlib import Path

from livaebench.runtime import step

with step(snakemake.log[0], threads=snakemake.threads) as log:
    import anndata as ad

    from livaebench.embedding import save_latents
    from livaebench.failures import record_failure
    from livaebench.methods import fit_method, get_method
    from livaebench.methods.registry import CONVERGENCE_FILE
    from livaebench.runtime import job_device

    w, p = snakemake.wildcards, snakemake.params
    what = f"{w.dataset}/{w.method}/seed{w.seed}"
    adata = ad.read_h5ad(snakemake.input[0])
    # configuration and infrastructure errors stop the job; the method's own failures are recorded
    get_method(w.method).check_modality(adata.uns["livaebench"]["modality"], w.dataset)
    device = job_device(snakemake.resources.get("gpu", 0), p.gpu_fallback, what, log)
    outdir = Path(snakemake.output.latent).parent
    try:
        latents = fit_method(w.method, adata, dataset=w.dataset, seed=int(w.seed),
                             outdir=outdir, threads=snakemake.threads,
                             overrides=p.overrides, global_params={"latent_dim": p.latent_dim}, device=device,
                             log=log)
    except Exception as err:
        if p.on_failure == "stop":
            raise
        artifacts = [path for key, path in snakemake.output.items() if key != "latent"]
        record_failure(snakemake.output.latent, artifacts, err, what=what, log=log)
    else:
        # fit_method has just written the records of this run's trainings ([] for a non-iterative method)
        convergence = json.loads((outdir / CONVERGENCE_FILE).read_text())
        save_latents(snakemake.output.latent, latents, convergence=convergence)
