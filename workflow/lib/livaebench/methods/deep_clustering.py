"""Deep RNA baselines without a maintained package (docs/methods.md §7): scDeepCluster and scDHMap.

Both are reimplemented from their papers as ``EngineModel`` subclasses (``livaebench.models.scdeepcluster``,
``livaebench.models.scdhmap``; their docstrings list the simplifications) and trained in two phases by
the engine adapter; each writes the ``model`` artifact. Family ``deep_rna``, RNA only (both model raw
counts with a ZINB likelihood).

* ``scdeepcluster`` — ZINB denoising autoencoder (``pretrain_epochs``, early stopping), then the Student-t
  clustering KL (``epochs``, run in full: ``patience`` applies to pretraining only); ``X_latent`` is the
  ``latent_dim``-dimensional autoencoder code. ``n_clusters`` = 0 takes the number of label categories
  of the dataset (``uns['livaebench']['label_key']``) when it has labels, else 8.
* ``scdhmap`` — hyperbolic (Lorentz) wrapped-normal VAE with a t-SNE-style loss; ``X_latent`` is 2-D,
  in the Poincaré disc. Its ``latent_dim`` is pinned at 2: the workflow-wide setting does not apply.
  ``pretrain_epochs`` then ``epochs``, both with the engine's early stopping.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .engine import ENGINE_CHECKS, ENGINE_DEFAULTS, fit_engine_model
from .registry import Check, FitContext, Resources, register

DEFAULT_N_CLUSTERS = 8

SCDEEPCLUSTER_DEFAULTS = {
    **ENGINE_DEFAULTS, "epochs": 50, "batch_size": 256, "lr": 1e-3,
    "latent_dim": 10, "pretrain_epochs": 100, "noise_sd": 2.5, "gamma": 1.0, "n_clusters": 0,
}
SCDHMAP_DEFAULTS = {
    **ENGINE_DEFAULTS, "epochs": 200, "batch_size": 512, "lr": 1e-3, "weight_decay": 1e-3,
    "latent_dim": 2, "pretrain_epochs": 100, "tsne_weight": 1000.0, "kl_weight": 10.0,
    "pretrain_kl_weight": 1.0, "perplexity": 30.0, "n_pcs": 50,
}
CHECKS = {
    **ENGINE_CHECKS, "pretrain_epochs": Check(minimum=0), "noise_sd": Check(minimum=0), "gamma": Check(minimum=0),
    "n_clusters": Check(minimum=0), "tsne_weight": Check(minimum=0), "kl_weight": Check(minimum=0),
    "pretrain_kl_weight": Check(minimum=0), "perplexity": Check(minimum=1), "n_pcs": Check(minimum=1),
}
# Dense input, counts and their float64 copies (Pearson residuals, PCA): ~5 copies of cells x features.
RESOURCES = Resources(mem_mb_base=1500, bytes_per_value=24, runtime_min_base=10, runtime_min_per_kcell=2.0)


def default_n_clusters(adata) -> int:
    """The number of label categories when the dataset has labels, else ``DEFAULT_N_CLUSTERS``."""
    key = adata.uns.get("livaebench", {}).get("label_key") or ""
    if key and key in adata.obs:
        n = int(adata.obs[key].dropna().astype(str).nunique())
        if n >= 2:
            return n
    return DEFAULT_N_CLUSTERS


def build_scdeepcluster(ctx: FitContext):
    from ..models.scdeepcluster import SCDeepCluster, SCDeepClusterConfig, build_tensors

    p = ctx.params
    n_clusters = p["n_clusters"] or default_n_clusters(ctx.adata)
    if not 2 <= n_clusters <= ctx.adata.n_obs:
        raise InputError(f"dataset '{ctx.dataset}', method '{ctx.method}'",
                         f"n_clusters = {n_clusters} for {ctx.adata.n_obs} cells",
                         "set n_clusters between 2 and the number of cells (0: from the labels)")
    data = build_tensors(ctx.adata, ctx.dataset)
    ctx.log.info("%s/%s: %d clusters", ctx.dataset, ctx.method, n_clusters)
    config = SCDeepClusterConfig(n_input=data["x"].shape[1], latent_dim=p["latent_dim"], noise_sd=p["noise_sd"],
                                 gamma=p["gamma"], n_clusters=n_clusters, pretrain_epochs=p["pretrain_epochs"],
                                 batch_size=p["batch_size"], seed=ctx.seed)
    return SCDeepCluster(config), data


def build_scdhmap(ctx: FitContext):
    from ..models.scdhmap import SCDHMap, SCDHMapConfig, build_tensors

    p = ctx.params
    n_val = int(round(p["val_frac"] * ctx.adata.n_obs)) if p["val_frac"] > 0 else 0
    batch = min(p["batch_size"], ctx.adata.n_obs - n_val)
    if p["perplexity"] >= batch:
        raise InputError(f"dataset '{ctx.dataset}', method '{ctx.method}'",
                         f"perplexity {p['perplexity']:g} needs minibatches of more cells (batch size {batch})",
                         "lower perplexity or raise batch_size")
    data = build_tensors(ctx.adata, ctx.dataset, p["n_pcs"], ctx.seed)
    config = SCDHMapConfig(n_input=data["x"].shape[1], latent_dim=p["latent_dim"], tsne_weight=p["tsne_weight"],
                           kl_weight=p["kl_weight"], pretrain_kl_weight=p["pretrain_kl_weight"],
                           perplexity=p["perplexity"], pretrain_epochs=p["pretrain_epochs"])
    return SCDHMap(config), data


def run_scdeepcluster(ctx: FitContext) -> dict[str, np.ndarray]:
    return fit_engine_model(ctx, build_scdeepcluster)


def run_scdhmap(ctx: FitContext) -> dict[str, np.ndarray]:
    return fit_engine_model(ctx, build_scdhmap)


register("scdeepcluster", "deep_rna", run_scdeepcluster, SCDEEPCLUSTER_DEFAULTS, uses_gpu=True, modalities=("rna",),
         description="scDeepCluster: ZINB denoising autoencoder + Student-t clustering KL (pretrain, cluster)",
         artifacts=("model",), resources=RESOURCES, checks=CHECKS)
register("scdhmap", "deep_rna", run_scdhmap, SCDHMAP_DEFAULTS, uses_gpu=True, modalities=("rna",),
         description="scDHMap: wrapped-normal VAE on the Lorentz model, ZINB + hyperbolic t-SNE loss, "
                     "2-D Poincaré output",
         pinned=("latent_dim",), artifacts=("model",), resources=RESOURCES,
         checks={**CHECKS, "latent_dim": Check(minimum=1)})
