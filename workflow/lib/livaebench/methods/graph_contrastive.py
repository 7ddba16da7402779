"""Contrastive and graph baselines without a maintained package: CLEAR, scGNN, scGCC (docs/methods.md §7).

Each is implemented from its paper and its authors' code in ``livaebench.models`` (``clear``, ``scgnn``,
``scgcc``; the module docstrings describe the method and what differs) and trained on the benchmark
engine through ``methods.engine.fit_engine_model``. All three are RNA methods of the family
``graph_contrastive``, embed into ``latent_dim`` dimensions and write the ``model`` artifact.

The registry defaults are the authors' settings (``Origin.defaults``); every remaining difference is a
declared ``Deviation``. No validation split (``val_frac = 0``): the authors train CLEAR and scGCC for a
fixed number of epochs (a contrastive loss against a moving queue is no stopping signal) and scGNN on
every cell; scGNN's iterations end by its own graph-convergence rule. Budgets the shipped two-core run
cannot afford are lowered in the config files, not here.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .engine import ENGINE_CHECKS, ENGINE_DEFAULTS, fit_engine_model
from .registry import Check, Deviation, FitContext, Origin, Resources, register

FAMILY = "graph_contrastive"
_TRAIN = {**ENGINE_DEFAULTS, "val_frac": 0.0, "grad_clip": 0.0}  # none of the three clips gradients
_PROB = Check(minimum=0.0, maximum=1.0)
_POSITIVE = Check(minimum=1)

# The authors' settings (CLEAR.py; scGCC.py + layer.py; scGNN.py / main_benchmark.py argparse defaults)
CLEAR_DEFAULTS = {**_TRAIN, "epochs": 100, "batch_size": 512, "lr": 5e-3, "weight_decay": 1e-6, "optimizer": "sgd",
                  "sgd_momentum": 0.9, "latent_dim": 10, "hidden": 1024, "queue_size": 1024, "momentum": 0.99,
                  "temperature": 0.2, "aug_prob": 0.5}
SCGNN_DEFAULTS = {**_TRAIN, "epochs": 500, "batch_size": 12800, "lr": 1e-3, "latent_dim": 10, "hidden": 512,
                  "feature_dim": 128, "graph_hidden": 32, "k": 10, "n_iterations": 10, "em_epochs": 200,
                  "graph_mix": 0.5, "graph_epochs": 200, "graph_lr": 0.01, "graph_reg": 0.0, "converge_ratio": 0.01}
SCGCC_DEFAULTS = {**_TRAIN, "epochs": 100, "batch_size": 512, "lr": 1.0, "weight_decay": 1e-4, "optimizer": "sgd",
                  "sgd_momentum": 0.9, "lr_schedule": "cosine", "latent_dim": 10, "n_pcs": 50, "k": 10, "hidden": 128,
                  "heads": 20, "dropout": 0.4, "queue_size": 1024, "momentum": 0.99, "temperature": 0.2,
                  "aug_prob": 0.5}

_MOCO_CHECKS = {"queue_size": _POSITIVE, "momentum": _PROB, "temperature": Check(minimum=1e-6), "hidden": _POSITIVE,
                "aug_prob": _PROB, "sgd_momentum": Check(minimum=0.0, maximum=0.999)}
CLEAR_CHECKS = {**ENGINE_CHECKS, **_MOCO_CHECKS}
SCGNN_CHECKS = {**ENGINE_CHECKS, "hidden": _POSITIVE, "feature_dim": _POSITIVE, "graph_hidden": _POSITIVE,
                "k": _POSITIVE, "n_iterations": _POSITIVE, "em_epochs": _POSITIVE, "graph_mix": _PROB,
                "graph_epochs": _POSITIVE, "graph_lr": Check(minimum=0), "graph_reg": Check(minimum=0.0),
                "converge_ratio": Check(minimum=0.0)}
SCGCC_CHECKS = {**ENGINE_CHECKS, **_MOCO_CHECKS, "n_pcs": _POSITIVE, "k": _POSITIVE, "heads": _POSITIVE,
                "dropout": Check(minimum=0.0, maximum=0.95), "lr_schedule": Check(choices=("constant", "cosine"))}

# Memory: dense float32 copies of the input (the model's, the engine's device copy, minibatch and augmented
# views; float64 for the PCA of scGCC's graph). CPU time on 1 thread, pancreas (3,696 cells x 1,515 genes), at the
# authors' budgets: CLEAR ~0.14 s per 512-cell step (~2 min); scGCC ~0.33 s per step (~4.5 min); scGNN ~0.45 s per
# full-batch autoencoder epoch, x 2,500 epochs (~20 min).
CLEAR_RESOURCES = Resources(mem_mb_base=1500, bytes_per_value=12, runtime_min_base=10, runtime_min_per_kcell=1.0)
SCGNN_RESOURCES = Resources(mem_mb_base=1500, bytes_per_value=16, runtime_min_base=10, runtime_min_per_kcell=8.0)
SCGCC_RESOURCES = Resources(mem_mb_base=2000, bytes_per_value=24, runtime_min_base=10, runtime_min_per_kcell=4.0)

# ---------------------------------------------------------------------------- provenance
_LATENT = "every method of the benchmark embeds into the shared latent_dim"
CLEAR_ORIGIN = Origin(
    "CLEAR (Han et al. 2022, Brief. Bioinform. 23:bbac377) and the authors' code (CLEAR.py, pcl/)",
    "https://github.com/ml4bio/CLEAR",
    {"epochs": 100, "batch_size": 512, "lr": 5e-3, "weight_decay": 1e-6, "optimizer": "sgd", "sgd_momentum": 0.9,
     "grad_clip": 0.0, "val_frac": 0.0, "latent_dim": 128, "hidden": 1024, "queue_size": 1024, "momentum": 0.999,
     "temperature": 0.2, "aug_prob": 0.5},
    budget="100 epochs of 512-cell minibatches, SGD lr 5e-3 (momentum 0.9, weight decay 1e-6), no early stopping")
_VECTORIZED = Deviation(
    "augmentation sampling", "each gene hit independently at the authors' rate; swaps on one random gene pairing "
    "per minibatch; the crossover changes only the augmented cell",
    "an exact number of genes per cell; swap pairs drawn per cell; the crossover also writes into the partner's "
    "row of the donor copy (accumulating over training)",
    "one vectorized draw per minibatch instead of a Python loop per cell; the same expected rates", "none")
CLEAR_DEVIATIONS = (
    Deviation("latent_dim", "latent_dim (10)", "128", _LATENT, "either"),
    Deviation("momentum", "0.99", "0.999",
              "~8 steps per epoch on 3,696 cells: after 100 epochs a key encoder at 0.999 still holds ~45 % of its "
              "random initialization, and the key encoder gives the embedding", "for"),
    Deviation("encoder output", "linear output layer", "ReLU on the output layer",
              "a ReLU confines the L2-normalized embedding to one orthant of a 10-dimensional space", "for"),
    _VECTORIZED,
    Deviation("donor cells", "crossover partner and replacement donors from the (random) minibatch",
              "from the whole dataset", "the minibatch is a uniform sample of the cells; no copy of the data "
              "per view", "none"),
)
SCGNN_ORIGIN = Origin(
    "scGNN (Wang et al. 2021, Nat. Commun. 12:1882) and the authors' code (scGNN.py, main_benchmark.py)",
    "https://github.com/juexinwang/scGNN",
    {"epochs": 500, "batch_size": 12800, "lr": 1e-3, "optimizer": "adam", "grad_clip": 0.0, "weight_decay": 0.0,
     "val_frac": 0.0, "latent_dim": 16, "hidden": 512, "feature_dim": 128, "graph_hidden": 32, "k": 10,
     "n_iterations": 10, "em_epochs": 200, "graph_mix": 0.5, "graph_epochs": 200, "graph_lr": 0.01,
     "graph_reg": 0.0, "converge_ratio": 0.01},
    budget="feature AE 500 full-batch epochs (Adam lr 1e-3); then <= 10 iterations of 200 AE epochs and a "
           "200-epoch graph AE (lr 0.01), until the cell types (or the graph) stop changing")
SCGNN_DEVIATIONS = (
    Deviation("latent_dim", "latent_dim (10)", "16 (the graph autoencoder's second layer)", _LATENT, "either"),
    Deviation("stop rule", "graph change < 0.01 · mean |L0| (the authors' 'graph' criterion)",
              "cell-type criterion: ARI > 0.99 between two successive Louvain/k-means clusterings",
              "the cell-type rule needs a clustering step inside training; the benchmark clusters every embedding "
              "by its own pipeline", "either"),
    Deviation("omitted modules", "no LTMG regularizer, cluster autoencoders, imputation autoencoder or L1 weight "
              "penalty", "LTMG-regularized feature AE (alpha 0.9), per-cluster autoencoders each iteration, "
              "graph/cell-type-regularized imputation AE, L1 1.0",
              "they serve imputation and clustering outputs; LTMG needs an R package outside the environment",
              "either"),
    Deviation("retraining input", "the original log-normalized expression",
              "the paper: the cluster autoencoders' reconstruction (the authors' code, as it runs, also retrains on "
              "the original input)", "the cluster autoencoders are not run", "either"),
    Deviation("graph autoencoder", "plain GAE trained on the mixed graph A_t = 0.5 A_0 + 0.5 kNN_t, edges "
              "reconstructed by negative sampling, cells' kNN graph symmetrized",
              "variational GAE on kNN_t alone (the mixture only in the stop test), dense n x n reconstruction "
              "with 15 % of edges held out", "O(edges) memory; the paper describes the mixed graph", "either"),
)
SCGCC_ORIGIN = Origin(
    "scGCC (graph contrastive clustering with neighbourhood augmentations for scRNA-seq) and the authors' code "
    "(scGCC.py, layer.py, loader.py)", "https://github.com/tswstart/scGCC",
    {"epochs": 100, "batch_size": 512, "lr": 1.0, "weight_decay": 1e-4, "optimizer": "sgd", "sgd_momentum": 0.9,
     "lr_schedule": "cosine", "grad_clip": 0.0, "val_frac": 0.0, "latent_dim": 256, "n_pcs": 50, "k": 10,
     "hidden": 128, "heads": 20, "dropout": 0.4, "queue_size": 1024, "momentum": 0.99, "temperature": 0.2,
     "aug_prob": 0.5},
    budget="100 epochs of 512-cell subgraphs, SGD lr 1 with cosine decay (momentum 0.9, weight decay 1e-4); "
           "embedding of the evaluation (every 10 epochs) with the best ARI against the labels")
SCGCC_DEVIATIONS = (
    Deviation("latent_dim", "latent_dim (10)", "256", _LATENT, "either"),
    Deviation("encoder output", "no ReLU after the second GAT layer",
              "ReLU after the second GAT layer",
              "a ReLU confines the L2-normalized embedding to one orthant of a 10-dimensional space", "for"),
    Deviation("epoch selection", "the embedding after the last epoch",
              "the embedding of the evaluation epoch with the best ARI against the true labels",
              "selecting on the labels the benchmark scores would leak them into the embedding", "against"),
    Deviation("clustering module", "not run", "UMAP + HDBSCAN (or k-means) on the embedding",
              "it clusters the finished embedding and has no trained part; the benchmark clusters every "
              "embedding by its own pipeline", "none"),
    _VECTORIZED,
)


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
                         ("latent_dim", "hidden", "queue_size", "momentum", "temperature", "aug_prob",
                          "sgd_momentum")})
    return CLEAR(config), {"x": torch.from_numpy(x)}


def build_scgnn(ctx: FitContext):
    import torch

    from ..models.scgnn import ScGNN, ScGNNConfig

    p = ctx.params
    _check_k(ctx)
    x = _dense(ctx, "lognorm")
    config = ScGNNConfig(n_input=x.shape[1], **{k: p[k] for k in
                         ("latent_dim", "hidden", "feature_dim", "graph_hidden", "k", "n_iterations", "em_epochs",
                          "graph_mix", "graph_epochs", "graph_lr", "graph_reg", "converge_ratio")})
    n = x.shape[0]
    return ScGNN(config, n_cells=n), {"x": torch.from_numpy(x), "idx": torch.arange(n)}


def build_scgcc(ctx: FitContext):
    import torch

    from ..models.scgcc import ScGCC, ScGCCConfig

    p = ctx.params
    _check_k(ctx)
    x = _dense(ctx)
    config = ScGCCConfig(n_input=x.shape[1], **{k: p[k] for k in
                         ("latent_dim", "hidden", "heads", "dropout", "queue_size", "momentum", "temperature",
                          "aug_prob", "sgd_momentum", "lr_schedule")})
    model = ScGCC.from_input(config, x, n_pcs=p["n_pcs"], k=p["k"], seed=ctx.seed)
    ctx.log.info("%s/%s: kNN graph on %d principal components, %d edges", ctx.dataset, ctx.method,
                 min(p["n_pcs"], *x.shape), model.edge_index.shape[1])
    # the input is engine data too: it is then part of the checkpoint's identity
    return model, {"x": model.features, "idx": torch.arange(x.shape[0])}


def _runner(build):
    def run(ctx: FitContext) -> dict[str, np.ndarray]:
        return fit_engine_model(ctx, build)
    return run


def run_scgnn(ctx: FitContext) -> dict[str, np.ndarray]:
    """Engine training, then the convergence record of the iterations (one entry per iteration)."""
    built = []

    def build(ctx: FitContext):
        model, data = build_scgnn(ctx)
        built.append(model)
        return model, data

    latents = fit_engine_model(ctx, build)
    ctx.add_convergence("iterations", built[0].iteration_record())
    return latents


register("clear", FAMILY, _runner(build_clear), CLEAR_DEFAULTS, uses_gpu=True, modalities=("rna",),
         description="CLEAR: MoCo contrastive MLP on gene-level augmentations (masking, noise, swaps, crossover)",
         artifacts=("model",), resources=CLEAR_RESOURCES, checks=CLEAR_CHECKS, origin=CLEAR_ORIGIN,
         deviations=CLEAR_DEVIATIONS)
register("scgnn", FAMILY, run_scgnn, SCGNN_DEFAULTS, uses_gpu=True, modalities=("rna",),
         description="scGNN: feature autoencoder and pruned kNN graph with a GCN graph autoencoder, iterated "
                     "until the graph converges",
         artifacts=("model",), resources=SCGNN_RESOURCES, checks=SCGNN_CHECKS, origin=SCGNN_ORIGIN,
         deviations=SCGNN_DEVIATIONS)
register("scgcc", FAMILY, _runner(build_scgcc), SCGCC_DEFAULTS, uses_gpu=True, modalities=("rna",),
         description="scGCC: GAT encoder on minibatch subgraphs of a kNN cell graph, MoCo contrast with "
                     "neighbourhood augmentations",
         artifacts=("model",), resources=SCGCC_RESOURCES, checks=SCGCC_CHECKS, origin=SCGCC_ORIGIN,
         deviations=SCGCC_DEVIATIONS)
