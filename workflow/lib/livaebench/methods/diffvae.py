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
from .registry import Check, FitContext, Resources, register

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


register("diffvae", FAMILY, run_diffvae, DIFFVAE_DEFAULTS, uses_gpu=True, modalities=("rna",),
         description="DiffVAE: MMD-VAE on min-max scaled log expression (Bernoulli decoder), latent 50",
         pinned=("latent_dim",), artifacts=("model",), resources=DIFFVAE_RESOURCES, checks=DIFFVAE_CHECKS)
register("graph_diffvae", FAMILY, run_graph_diffvae, GRAPH_DIFFVAE_DEFAULTS, uses_gpu=True, modalities=("rna",),
         description="Graph-DiffVAE: GCN graph VAE on the Pearson correlation cell graph, full batch, latent 50",
         pinned=("latent_dim",), artifacts=("model",), resources=GRAPH_DIFFVAE_RESOURCES,
         checks=GRAPH_DIFFVAE_CHECKS)
