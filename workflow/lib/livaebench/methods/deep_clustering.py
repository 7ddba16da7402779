"""Deep RNA baselines without a package (docs/methods.md §7): scDeepCluster and scDHMap.

Both are reimplemented from their papers as ``EngineModel`` subclasses (``livaebench.models.scdeepcluster``,
``livaebench.models.scdhmap``) and trained in two phases by the engine adapter; each writes the ``model``
artifact. Family ``deep_rna``, RNA only (both model raw counts with a ZINB likelihood). The registry
defaults are the authors' released settings; ``Origin``/``Deviation`` below name the authors' code and
every remaining difference (docs/baselines.md is generated from them).

* ``scdeepcluster`` — ZINB denoising autoencoder (``pretrain_epochs`` with ``pretrain_optimizer`` at
  ``pretrain_lr``, no early stopping unless ``patience`` and ``val_frac`` ask for it), then the Student-t
  clustering KL (``optimizer`` at ``lr``, at most ``epochs``) until fewer than ``tol`` of the cells change
  cluster in an epoch (the model's stop rule); ``X_latent`` is the ``latent_dim``-dimensional autoencoder
  code. ``n_clusters`` = 0 takes the number of label categories of the dataset
  (``uns['livaebench']['label_key']``) when it has labels, else 8.
* ``scdhmap`` — hyperbolic (Lorentz) wrapped-normal VAE with a t-SNE-style loss; ``X_latent`` has
  ``latent_dim`` columns, in the Poincaré ball. ``pretrain_epochs`` in full, then at most ``epochs`` with
  early stopping (``patience``) on the training t-SNE term.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .engine import ENGINE_CHECKS, ENGINE_DEFAULTS, fit_engine_model
from .registry import Check, Deviation, FitContext, Origin, Resources, register

DEFAULT_N_CLUSTERS = 8

# The authors' released settings (run scripts' defaults); no validation split, no gradient clipping.
SCDEEPCLUSTER_DEFAULTS = {
    **ENGINE_DEFAULTS, "epochs": 2000, "batch_size": 256, "lr": 1.0, "optimizer": "adadelta", "val_frac": 0.0,
    "patience": 0, "grad_clip": 0.0, "latent_dim": 32, "pretrain_epochs": 300, "pretrain_lr": 1e-3,
    "pretrain_optimizer": "amsgrad", "noise_sd": 2.5, "gamma": 1.0, "n_clusters": 0, "tol": 1e-3,
}
SCDHMAP_DEFAULTS = {
    **ENGINE_DEFAULTS, "epochs": 5000, "batch_size": 512, "lr": 1e-3, "weight_decay": 1e-3, "optimizer": "amsgrad",
    "val_frac": 0.0, "patience": 150, "grad_clip": 0.0, "latent_dim": 2, "pretrain_epochs": 400,
    "tsne_weight": 1000.0, "kl_weight": 10.0, "pretrain_kl_weight": 1.0, "perplexity": 30.0, "n_pcs": 50,
}
CHECKS = {
    **ENGINE_CHECKS, "pretrain_epochs": Check(minimum=0), "noise_sd": Check(minimum=0), "gamma": Check(minimum=0),
    "n_clusters": Check(minimum=0), "tsne_weight": Check(minimum=0), "kl_weight": Check(minimum=0),
    "pretrain_kl_weight": Check(minimum=0), "perplexity": Check(minimum=1), "n_pcs": Check(minimum=1),
    "pretrain_lr": Check(minimum=0), "pretrain_optimizer": ENGINE_CHECKS["optimizer"],
    "tol": Check(minimum=0, maximum=1),
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
                                 pretrain_lr=p["pretrain_lr"], pretrain_optimizer=p["pretrain_optimizer"],
                                 batch_size=p["batch_size"], tol=p["tol"], seed=ctx.seed)
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


# ---------------------------------------------------------------------------- provenance
_FLOAT32 = ("float32 (the engine's precision for every model)", "float64",
            "the shared engine and its speed; the losses are written to be stable in float32", "none")


def _input(original: str, note: str = "") -> Deviation:
    return Deviation("input", "the benchmark's shared preprocessing: preprocess.n_features_rna (5,000) seurat_v3 "
                     "HVGs, z-scored log1p(CP10k) as input, their raw counts as the ZINB target" + note,
                     f"{original}, z-scored log1p of size-factor-normalized counts",
                     "every method of the benchmark reads the same features", "either")


SCDEEPCLUSTER_ORIGIN = Origin(
    "scDeepCluster (Tian et al., Nature Machine Intelligence 2019), the authors' PyTorch release",
    "https://github.com/ttgump/scDeepCluster_pytorch",
    {"epochs": 2000, "batch_size": 256, "lr": 1.0, "optimizer": "adadelta", "weight_decay": 0.0,
     "val_frac": 0.0, "patience": 0, "grad_clip": 0.0, "latent_dim": 32, "pretrain_epochs": 300,
     "pretrain_lr": 1e-3, "pretrain_optimizer": "amsgrad", "noise_sd": 2.5, "gamma": 1.0, "n_clusters": 0,
     "tol": 1e-3},
    budget="pretrain 300 epochs (AMSGrad lr 1e-3); cluster <= 2,000 epochs (Adadelta lr 1), until < 0.1 % of "
           "cells change cluster in an epoch; batch 256")
SCDEEPCLUSTER_DEVIATIONS = (
    Deviation("latent dimension in the benchmark", "the workflow-wide latent_dim (10 in the shipped configs)",
              "32", "the benchmark compares every method at one latent size", "either"),
    Deviation("number of clusters (n_clusters = 0)", "the number of label categories (8 without labels); "
              "centres by k-means with 20 starts", "estimated by Louvain clustering (k = 20, resolution 0.8) of "
              "the pretrained latent, centres = the Louvain cluster means",
              "one rule for every dataset; the authors' own evaluations give the true number of clusters", "for"),
    Deviation("Adadelta rho", "0.9 (torch's default)", "0.95",
              "the engine's optimizer has no rho setting", "either"),
    Deviation("clustering minibatches", "reshuffled every epoch", "the cells in a fixed order",
              "the engine's seeded batch order, the same for every method", "none"),
    Deviation("precision", *_FLOAT32),
    _input("all genes"),
)

SCDHMAP_ORIGIN = Origin(
    "scDHMap (Tian et al., Genome Research 2023), the authors' release", "https://github.com/ttgump/scDHMap",
    {"epochs": 5000, "batch_size": 512, "lr": 1e-3, "weight_decay": 1e-3, "optimizer": "amsgrad", "val_frac": 0.0,
     "patience": 150, "grad_clip": 0.0, "latent_dim": 2, "pretrain_epochs": 400, "tsne_weight": 1000.0,
     "kl_weight": 10.0, "pretrain_kl_weight": 1.0, "perplexity": 30.0, "n_pcs": 50},
    budget="pretrain 400 epochs; train <= 5,000 epochs, patience 150 on the training t-SNE loss; AMSGrad lr 1e-3, "
           "weight decay 1e-3, batch 512")
SCDHMAP_DEVIATIONS = (
    Deviation("latent dimension in the benchmark", "the workflow-wide latent_dim (10 in the shipped configs), "
              "Poincaré-ball coordinates", "2 (a Poincaré disc for visualisation)",
              "the benchmark compares every method at one latent size; at d = 2 the intrinsic metrics from the "
              "third eigenvalue on are undefined", "either"),
    Deviation("perplexity calibration", "perplexity 30 with entropies in nats on both sides",
              "30 nominal; the code compares an entropy in nats with log2(30), an effective perplexity of about 135",
              "the paper's stated value; the code's wider neighbourhoods are a units slip", "either"),
    Deviation("t-SNE term", "KL(P_i || Q_i) per row", "the cross-entropy of P_i and Q_i",
              "they differ by the entropy of P, which does not depend on the model: the same gradients", "none"),
    Deviation("best epoch", "the best training t-SNE epoch's parameters also when the epoch limit ends training",
              "restored at an early stop only", "the engine's rule for every method; it matters only for a "
              "budget too short for patience to end training", "either"),
    Deviation("numerical clamps", "tangent norms <= 15, sigma in [1e-5, 10]", "tangent norms <= 32, "
              "sigma in [1e-6, 15]", "cosh(32) loses the hyperboloid constraint in float32; no cell of the shipped "
              "data comes near either bound (pancreas, d = 10: norms <= 5.4, sigma in [0.38, 0.73])", "none"),
    Deviation("precision", *_FLOAT32),
    _input("1,000 genes (the authors' geneSelection)",
           "; the t-SNE weight 1000 was chosen to balance a ZINB sum over 1,000 genes"),
)

register("scdeepcluster", "deep_rna", run_scdeepcluster, SCDEEPCLUSTER_DEFAULTS, uses_gpu=True, modalities=("rna",),
         description="scDeepCluster: ZINB denoising autoencoder + Student-t clustering KL (pretrain, cluster)",
         artifacts=("model",), resources=RESOURCES, checks=CHECKS, origin=SCDEEPCLUSTER_ORIGIN,
         deviations=SCDEEPCLUSTER_DEVIATIONS)
register("scdhmap", "deep_rna", run_scdhmap, SCDHMAP_DEFAULTS, uses_gpu=True, modalities=("rna",),
         description="scDHMap: wrapped-normal VAE on the Lorentz model, ZINB + hyperbolic t-SNE loss, "
                     "Poincaré-ball output",
         artifacts=("model",), resources=RESOURCES, checks=CHECKS, origin=SCDHMAP_ORIGIN,
         deviations=SCDHMAP_DEVIATIONS)
