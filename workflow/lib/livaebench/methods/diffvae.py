"""DiffVAE and Graph-DiffVAE (family ``diffvae``; docs/methods.md §6.2-6.3), on the training engine.

The models are in ``livaebench.models.diffvae`` (its docstring lists the choices). Both read the
log-normalized expression (``layers['lognorm']``), min-max scaled per gene, and write the ``model``
artifact that the DiffVAE analyses load (workflow/rules/analyses_diffvae.smk).

* ``diffvae`` — MMD-VAE, minibatches of 128, Adam 1e-3, 100 epochs (the engine's validation split and
  early stopping apply); ``X_latent`` is μ. Its ``latent_dim`` is pinned at the paper's 50: the
  workflow-wide setting does not apply (``method_params`` can still change it).
* ``graph_diffvae`` — graph VAE on the correlation cell graph, full batch (one step per epoch), Adam
  1e-4, 200 epochs, no validation split (every cell is a node of the graph); ``X_latent`` is the
  encoder's node embedding μ (50, pinned likewise).
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .engine import ENGINE_CHECKS, ENGINE_DEFAULTS, fit_engine_model
from .registry import Check, Deviation, FitContext, Origin, Resources, register

FAMILY = "diffvae"
DIFFVAE_DEFAULTS = {**ENGINE_DEFAULTS, "epochs": 100, "batch_size": 128, "lr": 1e-3, "latent_dim": 50,
                    "mmd_weight": 1.0}
GRAPH_DIFFVAE_DEFAULTS = {**ENGINE_DEFAULTS, "epochs": 200, "lr": 1e-4, "val_frac": 0.0, "latent_dim": 50,
                          "hidden": 512, "n_neighbors": 1, "neg_samples": 20}
DIFFVAE_CHECKS = {**ENGINE_CHECKS, "mmd_weight": Check(minimum=0)}
GRAPH_DIFFVAE_CHECKS = {**ENGINE_CHECKS, "hidden": Check(minimum=1), "n_neighbors": Check(minimum=1),
                        "neg_samples": Check(minimum=1), "val_frac": Check(minimum=0, maximum=0)}
# Measured on pancreas (3696 cells x 1515 genes, 1-2 threads): DiffVAE ~1 min, Graph-DiffVAE ~2 min (its
# full-batch GCN touches every cell at every step). Memory: dense float32 copies of the input.
DIFFVAE_RESOURCES = Resources(mem_mb_base=1500, bytes_per_value=16, runtime_min_base=10, runtime_min_per_kcell=1.0)
GRAPH_DIFFVAE_RESOURCES = Resources(mem_mb_base=1500, bytes_per_value=32, runtime_min_base=10,
                                    runtime_min_per_kcell=2.0)


def build_diffvae(ctx: FitContext):
    import torch

    from ..models.diffvae import DiffVAE, DiffVAEConfig, scaled_input

    x, lo, rng = scaled_input(ctx.adata, ctx.dataset)
    model = DiffVAE(DiffVAEConfig(n_input=x.shape[1], latent_dim=ctx.params["latent_dim"],
                                  mmd_weight=ctx.params["mmd_weight"]), lo, rng)
    return model, {"x": torch.from_numpy(x)}


def build_graph_diffvae(ctx: FitContext):
    import torch

    from ..models.diffvae import GraphDiffVAE, GraphDiffVAEConfig, correlation_graph, scaled_input

    p = ctx.params
    n = ctx.adata.n_obs
    if not 1 <= p["n_neighbors"] < n:
        raise InputError(f"dataset '{ctx.dataset}', method '{ctx.method}'",
                         f"n_neighbors = {p['n_neighbors']} for {n} cells", "use 1 <= n_neighbors < number of cells")
    x, _, _ = scaled_input(ctx.adata, ctx.dataset)
    adjacency = correlation_graph(x, p["n_neighbors"])
    ctx.log.info("%s/%s: correlation graph with %d links (%d neighbour(s) per cell)", ctx.dataset, ctx.method,
                 adjacency.nnz // 2, p["n_neighbors"])
    config = GraphDiffVAEConfig(n_input=x.shape[1], n_cells=n, latent_dim=p["latent_dim"], hidden=p["hidden"],
                                n_neighbors=p["n_neighbors"], neg_samples=p["neg_samples"])
    model = GraphDiffVAE(config, torch.from_numpy(x), adjacency)
    return model, {"idx": torch.arange(n)}


def run_diffvae(ctx: FitContext) -> dict[str, np.ndarray]:
    return fit_engine_model(ctx, build_diffvae)


def run_graph_diffvae(ctx: FitContext) -> dict[str, np.ndarray]:
    # one optimisation step per epoch over the whole graph
    ctx.params = {**ctx.params, "batch_size": ctx.adata.n_obs}
    return fit_engine_model(ctx, build_graph_diffvae)


# DiffVAE paper (Bica, Andrés-Terré, Cvejic, Liò; Genome Biology 2020) and the authors' Keras code.
DIFFVAE_SOURCE = "DiffVAE / Graph-DiffVAE (Bica et al., 2020)"
DIFFVAE_URL = "https://github.com/ioanabica/DiffVAE"
_NO_CLIP = Deviation("grad_clip", "1.0 (global norm)", "none (0)",
                     "the shared engine's safeguard against a diverging step; inactive on almost every step", "none")
_HEADS = Deviation("architecture", "linear mu / log sigma^2 heads, BatchNorm in the encoder only",
                   "ReLU on the heads in the paper's text", "a ReLU on log sigma^2 forbids variances below 1, and "
                   "decoder BatchNorm would make W1W2W3 no longer the decoder's linear part", "either")
DIFFVAE_ORIGIN = Origin(DIFFVAE_SOURCE, DIFFVAE_URL,
                        {"epochs": 100, "batch_size": 128, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0,
                         "grad_clip": 0.0, "val_frac": 0.0, "patience": 0, "latent_dim": 50, "mmd_weight": 1.0},
                        budget="Adam lr 1e-3, batch 128, 100 epochs on all cells")
DIFFVAE_DEVIATIONS = (
    _NO_CLIP, _HEADS,
    Deviation("val_frac", "0.15", "0 (all cells train)",
              "the engine's early stopping needs held-out cells; the 100-epoch budget stays the limit", "either"),
    Deviation("patience", "25 (restores the best validation epoch)", "none: 100 epochs",
              "stops once the validation loss no longer improves (near epoch 40 on pancreas)", "either"),
)
GRAPH_DIFFVAE_ORIGIN = Origin(DIFFVAE_SOURCE, DIFFVAE_URL,
                              {"epochs": 200, "lr": 1e-4, "optimizer": "adam", "weight_decay": 0.0, "grad_clip": 0.0,
                               "val_frac": 0.0, "latent_dim": 50, "hidden": 512, "n_neighbors": 1},
                              budget="Adam lr 1e-4, 200 full-graph epochs")
GRAPH_DIFFVAE_DEVIATIONS = (
    _NO_CLIP,
    Deviation("graph loss", f"non-links estimated from neg_samples ({GRAPH_DIFFVAE_DEFAULTS['neg_samples']}) x n "
              "random pairs per step", "the dense n x n weighted reconstruction",
              "the dense adjacency needs n^2 memory (80 GB at 100k cells); the estimate has the same expectation",
              "either"),
)

register("diffvae", FAMILY, run_diffvae, DIFFVAE_DEFAULTS, uses_gpu=True, modalities=("rna",),
         description="DiffVAE: MMD-VAE on min-max scaled log expression (Bernoulli decoder), latent 50",
         pinned=("latent_dim",), artifacts=("model",), resources=DIFFVAE_RESOURCES, checks=DIFFVAE_CHECKS,
         origin=DIFFVAE_ORIGIN, deviations=DIFFVAE_DEVIATIONS)
register("graph_diffvae", FAMILY, run_graph_diffvae, GRAPH_DIFFVAE_DEFAULTS, uses_gpu=True, modalities=("rna",),
         description="Graph-DiffVAE: GCN graph VAE on the Pearson correlation cell graph, full batch, latent 50",
         pinned=("latent_dim",), artifacts=("model",), resources=GRAPH_DIFFVAE_RESOURCES,
         checks=GRAPH_DIFFVAE_CHECKS, origin=GRAPH_DIFFVAE_ORIGIN, deviations=GRAPH_DIFFVAE_DEVIATIONS)
