"""Contrastive and graph baselines without a maintained package: CLEAR, scGNN, scGCC (docs/methods.md §7).

Each is implemented from its paper's description in ``livaebench.models`` (``clear``, ``scgnn``,
``scgcc``; the module docstrings list what was simplified) and trained on the benchmark engine through
``methods.engine.fit_engine_model``. All three are RNA methods of the family ``graph_contrastive``,
embed into ``latent_dim`` dimensions and write the ``model`` artifact.

Training defaults: a fixed number of epochs without a validation split (``val_frac = 0``): a
contrastive loss against a moving queue is no stable early-stopping criterion, and graph models see
every cell in the graph anyway. scGNN's graph phases train full-batch (one step per epoch).
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .engine import ENGINE_CHECKS, ENGINE_DEFAULTS, fit_engine_model
from .registry import Check, FitContext, Resources, register

FAMILY = "graph_contrastive"
_TRAIN = {**ENGINE_DEFAULTS, "lr": 1e-3, "val_frac": 0.0}
_PROB = Check(minimum=0.0, maximum=1.0)
_POSITIVE = Check(minimum=1)

CLEAR_DEFAULTS = {**_TRAIN, "epochs": 60, "batch_size": 256, "latent_dim": 10, "hidden": 1024,
                  "queue_size": 1024, "momentum": 0.99, "temperature": 0.2}
SCGNN_DEFAULTS = {**_TRAIN, "epochs": 60, "batch_size": 128, "latent_dim": 10, "hidden": 512, "feature_dim": 128,
                  "graph_hidden": 32, "k": 10, "n_iterations": 3, "graph_mix": 0.5, "graph_epochs": 200,
                  "graph_lr": 0.01}
SCGCC_DEFAULTS = {**_TRAIN, "epochs": 60, "batch_size": 512, "latent_dim": 10, "n_pcs": 50, "k": 5, "hidden": 32,
                  "heads": 4, "queue_size": 1024, "momentum": 0.99, "temperature": 0.2, "feature_mask": 0.2,
                  "feature_noise": 0.1, "exchange_prob": 0.5, "exchange_rate": 0.3, "edge_drop": 0.2}

_MOCO_CHECKS = {"queue_size": _POSITIVE, "momentum": _PROB, "temperature": Check(minimum=1e-6), "hidden": _POSITIVE}
CLEAR_CHECKS = {**ENGINE_CHECKS, **_MOCO_CHECKS}
SCGNN_CHECKS = {**ENGINE_CHECKS, "hidden": _POSITIVE, "feature_dim": _POSITIVE, "graph_hidden": _POSITIVE,
                "k": _POSITIVE, "n_iterations": _POSITIVE, "graph_mix": _PROB, "graph_epochs": _POSITIVE,
                "graph_lr": Check(minimum=0)}
SCGCC_CHECKS = {**ENGINE_CHECKS, **_MOCO_CHECKS, "n_pcs": _POSITIVE, "k": _POSITIVE, "heads": _POSITIVE,
                "feature_mask": Check(minimum=0.0, maximum=0.99), "feature_noise": Check(minimum=0.0),
                "exchange_prob": _PROB, "exchange_rate": _PROB, "edge_drop": Check(minimum=0.0, maximum=0.99)}

# Memory: a dense float32 copy of the input (plus float64 for scGCC's PCA) and the engine's minibatch copies.
# Runtime (1 thread, pancreas 3696 cells x 1515 genes): ~1-2.5 min each. scGCC encodes the whole graph at
# every step, so its epoch grows with n²/batch_size: more minutes per 1,000 cells.
CLEAR_RESOURCES = Resources(mem_mb_base=1500, bytes_per_value=12, runtime_min_base=10, runtime_min_per_kcell=1.0)
SCGNN_RESOURCES = Resources(mem_mb_base=1500, bytes_per_value=12, runtime_min_base=10, runtime_min_per_kcell=1.0)
SCGCC_RESOURCES = Resources(mem_mb_base=1500, bytes_per_value=24, runtime_min_base=10, runtime_min_per_kcell=2.0)


def _dense(ctx: FitContext, layer: str | None = None) -> np.ndarray:
    """The model input (or a layer) as a dense finite float32 array; a one-line error otherwise."""
    import scipy.sparse as sp

    what = f"dataset '{ctx.dataset}', method '{ctx.method}'"
    if layer is not None and layer not in ctx.adata.layers:
        raise InputError(what, f"the AnnData has no layers['{layer}']",
                         "use the output of the preprocessing step (results/data/{dataset}/preprocessed.h5ad)")
    m = ctx.adata.X if layer is None else ctx.adata.layers[layer]
    x = np.ascontiguousarray(m.toarray() if sp.issparse(m) else np.asarray(m), dtype=np.float32)
    name = ".X" if layer is None else f"layers['{layer}']"
    if not np.isfinite(x).all():
        raise InputError(what, f"{name} has {int((~np.isfinite(x)).sum())} NaN/inf values",
                         "re-run preprocessing; the normalized input must be finite")
    return x


def _check_k(ctx: FitContext) -> None:
    k, n = ctx.params["k"], ctx.adata.n_obs
    if k >= n:
        raise InputError(f"dataset '{ctx.dataset}', method '{ctx.method}'",
                         f"a kNN graph with k = {k} needs more than {k} cells (the data has {n})",
                         f"set method_params.{ctx.method}.k below {n}")


# ---------------------------------------------------------------------------- builders
def build_clear(ctx: FitContext):
    import torch

    from ..models.clear import CLEAR, CLEARConfig

    p = ctx.params
    x = _dense(ctx)
    config = CLEARConfig(n_input=x.shape[1], **{k: p[k] for k in
                         ("latent_dim", "hidden", "queue_size", "momentum", "temperature")})
    return CLEAR(config), {"x": torch.from_numpy(x)}


def build_scgnn(ctx: FitContext):
    import torch

    from ..models.scgnn import ScGNN, ScGNNConfig

    p = ctx.params
    _check_k(ctx)
    x = _dense(ctx, "lognorm")
    config = ScGNNConfig(n_input=x.shape[1], **{k: p[k] for k in
                         ("latent_dim", "hidden", "feature_dim", "graph_hidden", "k", "n_iterations",
                          "graph_mix", "graph_epochs", "graph_lr")})
    n = x.shape[0]
    return ScGNN(config, n_cells=n), {"x": torch.from_numpy(x), "idx": torch.arange(n)}


def build_scgcc(ctx: FitContext):
    import torch

    from ..models.scgcc import ScGCC, ScGCCConfig

    p = ctx.params
    _check_k(ctx)
    x = _dense(ctx)
    config = ScGCCConfig(n_input=0, **{k: p[k] for k in
                         ("latent_dim", "hidden", "heads", "queue_size", "momentum", "temperature", "feature_mask",
                          "feature_noise", "exchange_prob", "exchange_rate", "edge_drop")})
    model = ScGCC.from_input(config, x, n_pcs=p["n_pcs"], k=p["k"], seed=ctx.seed)
    ctx.log.info("%s/%s: %d principal components, kNN graph with %d edges", ctx.dataset, ctx.method,
                 model.features.shape[1], model.edge_index.shape[1])
    return model, {"idx": torch.arange(x.shape[0])}


def _runner(build):
    def run(ctx: FitContext) -> dict[str, np.ndarray]:
        return fit_engine_model(ctx, build)
    return run


register("clear", FAMILY, _runner(build_clear), CLEAR_DEFAULTS, uses_gpu=True, modalities=("rna",),
         description="CLEAR: MoCo contrastive MLP on gene-level augmentations (masking, noise, swaps, crossover)",
         artifacts=("model",), resources=CLEAR_RESOURCES, checks=CLEAR_CHECKS)
register("scgnn", FAMILY, _runner(build_scgnn), SCGNN_DEFAULTS, uses_gpu=True, modalities=("rna",),
         description="scGNN: feature autoencoder, kNN graph, GCN graph autoencoder; graph and GAE iterated",
         artifacts=("model",), resources=SCGNN_RESOURCES, checks=SCGNN_CHECKS)
register("scgcc", FAMILY, _runner(build_scgcc), SCGCC_DEFAULTS, uses_gpu=True, modalities=("rna",),
         description="scGCC: GAT encoder on a kNN cell graph, MoCo contrast between augmented graph views",
         artifacts=("model",), resources=SCGCC_RESOURCES, checks=SCGCC_CHECKS)
