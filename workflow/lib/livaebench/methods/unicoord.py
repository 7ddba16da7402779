"""UniCoord (docs/methods.md §6.1): a joint VAE with supervised and free, continuous and discrete coordinates.

The model is ``livaebench.models.unicoord.UniCoord`` (its docstring names the deviations from the
authors' code), trained by the engine adapter. Which ``obs`` columns supervise which coordinates is a
per-dataset setting (config ``dataset_method_params: {dataset: {unicoord: {discrete_keys: [...],
continuous_keys: [...], parent_keys: {child: parent}}}}``); without any, every coordinate is free.
``latent_dim`` is the number of free continuous coordinates: the paper's 50 by default and in the UniCoord
analyses (their models ignore the workflow-wide ``latent_dim``); as a benchmarked method it follows the
workflow-wide ``latent_dim`` like every method (a declared deviation). ``X_latent`` = μ of every
continuous coordinate followed by the softmax probabilities of every discrete variable. The ``model``
artifact holds everything needed to rebuild the model and decode: the latent layout (category names per
discrete key, z-score mean/sd per continuous key, parent maps), the loss settings and ``var_names``.
The registry's ``Origin`` holds the settings of the paper and of the authors' package (``unicoord``, the
scanpy interface: 100 epochs per 20,000-cell chunk, Adam lr 5e-4, batch 128, capacities [0, 5 nats,
25,000 steps, γ 30] for both channels, supervision weights 100, diffusion 1e-3 with kernel width 5, no
diffusion coordinates, categories under 200 cells pooled).
"""
from __future__ import annotations

import numpy as np

from .engine import ENGINE_CHECKS, ENGINE_DEFAULTS, fit_engine_model
from .registry import Check, Deviation, FitContext, Origin, Resources, register

DEFAULTS = {
    **ENGINE_DEFAULTS, "epochs": 100, "batch_size": 128, "lr": 5e-4, "grad_clip": 0.0,
    "val_frac": 0.0, "patience": 0,  # the paper trains a fixed number of epochs; C(t) makes val losses incomparable
    "latent_dim": 50, "n_diffusion": 0, "free_discrete": [],
    "discrete_keys": [], "continuous_keys": [], "parent_keys": None, "min_obs": 10,
    "temperature": 0.67, "gamma": 30.0, "capacity": 5.0, "capacity_steps": 25000,
    "regression_weight": 100.0, "classification_weight": 100.0, "diffusion_weight": 1e-3,
    "hierarchical_weight": 100.0, "bandwidth": 5.0,
}
CHECKS = {
    **ENGINE_CHECKS, "latent_dim": Check(minimum=0), "n_diffusion": Check(minimum=0), "min_obs": Check(minimum=1),
    "temperature": Check(minimum=1e-6), "gamma": Check(minimum=0), "capacity": Check(minimum=0),
    "capacity_steps": Check(minimum=0), "regression_weight": Check(minimum=0), "classification_weight": Check(minimum=0),
    "diffusion_weight": Check(minimum=0), "hierarchical_weight": Check(minimum=0), "bandwidth": Check(minimum=1e-6),
}
HYPER_KEYS = ("temperature", "gamma", "capacity", "capacity_steps", "regression_weight", "classification_weight",
              "diffusion_weight", "hierarchical_weight", "bandwidth")
# dense lognorm input + its float32 tensor copy and the minibatch activations
RESOURCES = Resources(mem_mb_base=1500, bytes_per_value=16, runtime_min_base=10, runtime_min_per_kcell=1.5)


def _check_keys(ctx: FitContext) -> None:
    from ..errors import InputError

    p, where = ctx.params, f"dataset '{ctx.dataset}', method '{ctx.method}'"
    parents = p["parent_keys"] or {}
    if not isinstance(parents, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in parents.items()):
        raise InputError(where, f"parent_keys is {parents!r}", "write it as {child_column: parent_column}")
    for name in ("discrete_keys", "continuous_keys"):
        if not all(isinstance(k, str) for k in p[name]):
            raise InputError(where, f"{name} is {p[name]!r}", f"write {name} as a list of obs column names")
    if not all(isinstance(k, int) and k >= 2 for k in p["free_discrete"]):
        raise InputError(where, f"free_discrete is {p['free_discrete']!r}",
                         "give a list of category counts (integers >= 2), one per free discrete variable")


def build(ctx: FitContext):
    import torch

    from ..models.unicoord import UniCoord, build_layout, model_input

    _check_keys(ctx)
    p = ctx.params
    x = model_input(ctx.adata, f"dataset '{ctx.dataset}', method '{ctx.method}'")
    layout, arrays = build_layout(ctx.adata, dataset=ctx.dataset, discrete_keys=p["discrete_keys"],
                                  continuous_keys=p["continuous_keys"], parent_keys=p["parent_keys"],
                                  min_obs=p["min_obs"], n_diffusion=p["n_diffusion"], n_free=p["latent_dim"],
                                  free_discrete=p["free_discrete"], log=ctx.log)
    ctx.log.info("%s/%s: supervised continuous %s, discrete %s, parents %s", ctx.dataset, ctx.method,
                 [c["key"] for c in layout["continuous"]], [(d["key"], len(d["categories"])) for d in layout["discrete"]],
                 [(q["child"], q["parent"]) for q in layout["parents"]])
    model = UniCoord(x.shape[1], layout, {k: p[k] for k in HYPER_KEYS})
    data = {"x": torch.from_numpy(x), **{k: torch.from_numpy(v) for k, v in arrays.items()}}
    return model, data


def analysis_model_overrides(overrides: dict, epochs: int | None, variant: str) -> dict:
    """Settings of an analysis model (workflow/rules/analyses_unicoord.smk): the method's settings on the
    dataset; ``restore`` is supervised by the lineage stage only (the paper restores a held-out time point
    from a timestamp coordinate)."""
    overrides = dict(overrides)
    if epochs:
        overrides["epochs"] = int(epochs)
    if variant == "restore":
        overrides.update(discrete_keys=[], continuous_keys=["lineage_stage"], parent_keys=None)
    return overrides


def run(ctx: FitContext) -> dict[str, np.ndarray]:
    return fit_engine_model(ctx, build)


# The original: the paper's text where it is specific, else the authors' package (its scanpy interface).
ORIGINAL = {"epochs": 100, "batch_size": 128, "lr": 5e-4, "weight_decay": 0.0, "grad_clip": 0.0, "val_frac": 0.0,
            "patience": 0, "optimizer": "adam", "latent_dim": 50, "n_diffusion": 0, "free_discrete": [],
            "min_obs": 200, "temperature": 0.67, "gamma": 30.0, "capacity": 5.0, "capacity_steps": 25000,
            "regression_weight": 100.0, "classification_weight": 100.0, "diffusion_weight": 1e-3, "bandwidth": 5.0}
DEVIATIONS = (
    Deviation("latent_dim in the benchmark", "the workflow's shared latent_dim (10 in the shipped configs) free "
              "continuous coordinates; the UniCoord analyses keep 50", "50",
              "every method's embedding is scored at the same latent size", "either"),
    Deviation("min_obs", "10", "200", "the shipped datasets are small: at 200, pancreas' Epsilon (142 cells) and "
              "Delta (70) cell types would be pooled as 'rare'", "either"),
    Deviation("input features", "the benchmark's selected features (at most 5,000 highly variable genes; all "
              "2,000 on pancreas); size factors: each cell's total over all genes minus its counts of the highly "
              "expressed genes among the selected ones", "all genes; normalize_total(target_sum=1e4, "
              "exclude_highly_expressed=True) and log1p over all of them",
              "every method reads the same features; the size factors equal the paper's when every highly "
              "expressed gene is selected (on pancreas all genes are)", "either"),
    Deviation("inference mode", "eval(): dropout off for embeddings, predictions and generated cells",
              "dropout left on at inference (the authors' package)", "a seeded run gives one embedding", "for"),
    Deviation("classification loss", "cross-entropy on the logits", "softmax applied twice (the authors' package)",
              "the double softmax flattens the gradient; the paper states a cross-entropy", "either"),
    Deviation("supervised continuous targets", "the z-scored obs value", "the obs value (the authors' package)",
              "the N(0, 1) prior and the weight 100 assume unit scale; obs columns have any scale", "either"),
    Deviation("chunks", "epochs over all training cells", "100 epochs per 20,000-cell chunk",
              "the same number of optimisation steps; only the order of the minibatches differs", "none"),
    Deviation("hierarchical term", "cross-entropy, weight 100", "the paper: a cross-entropy, weight not given; the "
              "package: mean squared error, not used by its scanpy interface",
              "the paper's form; the weight of the other supervised terms", "either"),
    Deviation("diffusion neighbours", "the other cells of the minibatch, weights softmax(−d²/5)",
              "the package: Gumbel-softmax draws of neighbours with weights exp(−d/5)",
              "a deterministic soft average; only with n_diffusion > 0 (off by default)", "none"),
)


register("unicoord", "unicoord", run, DEFAULTS, uses_gpu=True, modalities=("rna",), artifacts=("model",),
         resources=RESOURCES, checks=CHECKS,
         description="UniCoord: joint VAE with supervised/free continuous and discrete (Gumbel-softmax) "
                     "coordinates for in silico reconfiguration",
         origin=Origin("UniCoord (Gao, Hua, Wu et al., Commun. Biol. 2024) and the authors' package unicoord 1.0.0",
                       "https://github.com/pluto-the-lost/unicoord", ORIGINAL,
                       budget="100 epochs per 20,000-cell chunk (no early stopping), Adam lr 5e-4, batch 128"),
         deviations=DEVIATIONS)
