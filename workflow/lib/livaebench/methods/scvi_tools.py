"""The scvi-tools baselines (docs/methods.md §7): scVI (RNA), PeakVI and PoissonVI (ATAC).

Each fits the package's own model on the raw counts of the selected features
(``layers['counts']``) and returns the posterior mean of z (``get_latent_representation()``):

* ``scvi``      — ``scvi.model.SCVI``: NB likelihood by default (the package's default is ZINB), one
  hidden layer of 128 units, n_latent = ``latent_dim``. When the dataset names a batch column
  (``uns['livaebench']['batch_key']``) it is passed as scVI's batch covariate, so the multi-batch
  comparison sees scVI's own batch correction (``use_batch: false`` turns that off).
* ``peakvi``    — ``scvi.model.PEAKVI`` on binarized counts (accessible or not), n_latent = ``latent_dim``,
  hidden width the package's rule (sqrt of the number of peaks) unless ``hidden`` > 0.
* ``poissonvi`` — ``scvi.external.POISSONVI`` on fragment counts, same conventions. PoissonVI models
  fragments; counts of Tn5 insertions ("reads": two per fragment inside a peak) have more 2s than 1s.
  ``count_unit: auto`` applies scvi-tools' own test for that (more 2s than 1s, here over every value
  rather than a sample of 100 cells) and then converts as its ``reads_to_fragments`` does
  (ceil(x / 2)); ``reads`` / ``fragments`` force either reading. The shipped bone-marrow counts pass
  the test as reads (20,448 twos against 15,402 ones in the selected peaks) and are converted.
  PoissonVI needs at least 100 cells (the package's check samples 100).

Training follows each package's defaults: scVI at most 400 epochs (its own rule up to 20,000 cells),
Adam lr 1e-3; PeakVI and PoissonVI at most 500 epochs, lr 1e-4, weight decay 1e-3, KL warm-up over 50
epochs; early stopping on the validation ELBO (10 % of the cells) with the package's patience (45 / 50).
On small data the ATAC defaults train little (600 bone-marrow cells: ~4 steps per epoch at lr 1e-4):
``lr: 1.0e-3`` in method_params is the knob there.

What this simplifies from the packages' tutorials: no further feature filtering (the project's
preprocessing selected the features) and no covariates other than the batch.

Training runs on the CPU unless CUDA is available (``ctx.device`` decides), with the project's seeded
runtime (torch threads = ``ctx.threads``, deterministic kernels) plus ``scvi.settings.seed``, no data
loader workers. The ``model`` artifact is the module's torch state dict with a plain configuration,
loadable with ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import InputError
from .registry import Check, FitContext, Resources, register

# Imports (torch, lightning, scvi-tools) cost ~0.7 GB before any work (docs/MEASUREMENTS); the data
# are a sparse copy of the counts, densified per minibatch only (0.93 GB peak for scVI on the pancreas
# data). Runtime: scVI ran 100 epochs of 3,326 training cells in 144 s on one thread of a loaded
# machine, so 400 epochs without early stopping take ~2.6 min per 1,000 cells there.
RESOURCES = Resources(mem_mb_base=2000, bytes_per_value=8, runtime_min_base=10, runtime_min_per_kcell=3.5)
MIN_CELLS = 20

_TRAIN_DEFAULTS: dict[str, Any] = {
    "latent_dim": 10, "epochs": 400, "batch_size": 128, "early_stopping": True, "val_frac": 0.1,
    "use_batch": True,
}
CHECKS = {
    "latent_dim": Check(minimum=1), "epochs": Check(minimum=1), "batch_size": Check(minimum=2),
    "lr": Check(minimum=0), "weight_decay": Check(minimum=0), "patience": Check(minimum=1),
    "val_frac": Check(minimum=0, maximum=0.5), "hidden": Check(minimum=0), "layers": Check(minimum=1),
    "dropout": Check(minimum=0, maximum=0.9), "likelihood": Check(choices=("nb", "zinb", "poisson")),
    "kl_warmup_epochs": Check(minimum=0), "count_unit": Check(choices=("auto", "fragments", "reads")),
}
# Lightning's advice that does not apply here (small data: few batches per epoch; no workers on purpose).
_QUIET = (".*does not have many workers.*", ".*smaller than the logging interval.*", ".*LeafSpec.*",
          ".*The `srun` command is available.*")


def _where(ctx: FitContext) -> str:
    return f"dataset '{ctx.dataset}', method '{ctx.method}'"


def count_matrix(ctx: FitContext, *, integer: bool = True):
    """The raw counts of the selected features as CSR float32, after the checks every count model needs."""
    import scipy.sparse as sp

    if "counts" not in ctx.adata.layers:
        raise InputError(_where(ctx), "the preprocessed data has no layers['counts'] (raw counts)",
                         "preprocess the raw counts with the project's preprocess step")
    counts = sp.csr_matrix(ctx.adata.layers["counts"], dtype=np.float32)
    values = counts.data
    if values.size and (values.min() < 0 or not np.isfinite(values).all()):
        raise InputError(_where(ctx), "layers['counts'] has negative or non-finite values",
                         "give raw counts (non-negative integers) as the dataset's counts")
    if integer and values.size and np.any(values != np.round(values)):
        raise InputError(_where(ctx), "layers['counts'] is not integer (normalized values instead of raw counts?)",
                         "give raw counts as the dataset's counts")
    empty = int((np.diff(counts.indptr) == 0).sum())
    if empty:
        raise InputError(_where(ctx), f"{empty} cells have no counts in the selected features",
                         "drop empty cells (the project's preprocessing does)")
    return counts


def check_size(ctx: FitContext, latent_dim: int, min_cells: int = MIN_CELLS) -> None:
    """Enough cells (at least ``min_cells`` and twice the latent size) and features for the model."""
    n_cells, n_features = ctx.adata.n_obs, ctx.adata.n_vars
    needed = max(min_cells, 2 * latent_dim)
    if n_cells < needed:
        raise InputError(_where(ctx), f"{n_cells} cells are too few for method '{ctx.method}' with a "
                         f"{latent_dim}-dimensional latent (needs at least {needed})",
                         "use more cells or a smaller latent_dim")
    if n_features <= latent_dim:
        raise InputError(_where(ctx), f"{n_features} features are too few for a {latent_dim}-dimensional latent",
                         "select more features or lower latent_dim")


def batch_column(ctx: FitContext) -> str | None:
    """The dataset's batch column when it has one and the method uses it, else None."""
    key = (ctx.adata.uns.get("livaebench", {}) or {}).get("batch_key") or ""
    if not key or not ctx.params.get("use_batch", True):
        return None
    if key not in ctx.adata.obs:
        raise InputError(_where(ctx), f"batch_key '{key}' is not a column of the cells' table",
                         "correct batch_key in the dataset registry or preprocess again")
    return key


def _scvi_adata(ctx: FitContext, X, batch_key: str | None):
    import anndata as ad
    import pandas as pd

    obs = pd.DataFrame(index=ctx.adata.obs_names.astype(str))
    if batch_key is not None:
        obs["batch"] = pd.Categorical(ctx.adata.obs[batch_key].astype(str).to_numpy())
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=ctx.adata.var_names.astype(str)))


def fit_scvi_model(ctx: FitContext, model_name: str) -> dict[str, np.ndarray]:
    """Fit one scvi-tools model (``scvi``, ``peakvi`` or ``poissonvi``) on ``ctx``; write the model artifact."""
    import torch

    from ..training import resolve_device, torch_runtime

    p = ctx.params
    latent_dim = int(p["latent_dim"])
    check_size(ctx, latent_dim, 100 if model_name == "poissonvi" else MIN_CELLS)
    if p["early_stopping"] and p["val_frac"] <= 0:
        raise InputError(_where(ctx), "early_stopping needs a validation split but val_frac is 0",
                         "set val_frac > 0 or early_stopping: false")
    counts = count_matrix(ctx, integer=model_name != "peakvi")
    if model_name == "peakvi":
        counts.data = np.ones_like(counts.data)  # accessible or not
    unit = None
    if model_name == "poissonvi":
        unit = p["count_unit"]
        if unit == "auto":
            unit = "reads" if np.count_nonzero(counts.data == 2) > np.count_nonzero(counts.data == 1) else "fragments"
            ctx.log.info("%s/%s: the counts look like %s (%d ones, %d twos)%s", ctx.dataset, ctx.method, unit,
                         np.count_nonzero(counts.data == 1), np.count_nonzero(counts.data == 2),
                         ": converted to fragments, ceil(x / 2)" if unit == "reads" else "")
        if unit == "reads":
            counts.data = np.ceil(counts.data / 2)
    batch_key = batch_column(ctx)

    with torch_runtime(ctx.threads, ctx.seed), warnings.catch_warnings():
        for message in _QUIET:
            warnings.filterwarnings("ignore", message=message)
        import scvi

        scvi.settings.seed = ctx.seed
        scvi.settings.dl_num_workers = 0
        device = resolve_device(ctx.device)
        adata = _scvi_adata(ctx, counts, batch_key)
        kwargs = {"batch_key": "batch"} if batch_key is not None else {}
        hidden = int(p.get("hidden", 0)) or None
        if model_name == "scvi":
            scvi.model.SCVI.setup_anndata(adata, **kwargs)
            model = scvi.model.SCVI(adata, n_hidden=hidden or 128, n_latent=latent_dim, n_layers=int(p["layers"]),
                                    dropout_rate=float(p["dropout"]), gene_likelihood=p["likelihood"])
            plan = {"lr": float(p["lr"]), "weight_decay": float(p["weight_decay"])}
            train_kwargs = {"plan_kwargs": plan}
        else:
            cls = scvi.model.PEAKVI if model_name == "peakvi" else scvi.external.POISSONVI
            cls.setup_anndata(adata, **kwargs)
            model = cls(adata, n_hidden=hidden, n_latent=latent_dim, dropout_rate=float(p["dropout"]))
            train_kwargs = {"lr": float(p["lr"]), "weight_decay": float(p["weight_decay"]),
                            "n_epochs_kl_warmup": int(p["kl_warmup_epochs"])}
        ctx.log.info("%s/%s: %s on %s, %d cells x %d features, batch %s", ctx.dataset, ctx.method,
                     type(model).__name__, device, adata.n_obs, adata.n_vars, batch_key or "none")
        train_size = 1.0 - float(p["val_frac"])
        model.train(max_epochs=int(p["epochs"]), accelerator="gpu" if device.type == "cuda" else "cpu", devices=1,
                    train_size=train_size, validation_size=float(p["val_frac"]) or None,
                    batch_size=int(p["batch_size"]), early_stopping=bool(p["early_stopping"]),
                    early_stopping_patience=int(p["patience"]), enable_progress_bar=False,
                    default_root_dir=str(ctx.outdir), **train_kwargs)
        latent = model.get_latent_representation()
        history = {key: float(frame.iloc[-1, 0]) for key, frame in model.history.items()
                   if key in ("elbo_train", "elbo_validation", "reconstruction_loss_train")}
        epochs_run = int(len(model.history["elbo_train"])) if "elbo_train" in model.history else int(p["epochs"])
        ctx.log.info("%s/%s: trained %d epochs, %s", ctx.dataset, ctx.method, epochs_run, history)
        module = model.module
        config = {"model": type(model).__name__, "scvi_tools": str(scvi.__version__),
                  "n_latent": latent_dim, "n_hidden": int(module.n_hidden),
                  "batch_key": batch_key or "", "epochs_run": epochs_run, "history": history,
                  "params": {k: v for k, v in p.items() if isinstance(v, (bool, int, float, str))}}
        if unit is not None:
            config["count_unit"] = unit
        if batch_key is not None:
            config["batches"] = list(map(str, adata.obs["batch"].cat.categories))
        torch.save({"state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
                    "config": config, "var_names": list(map(str, ctx.adata.var_names))},
                   ctx.artifact_path("model"))
    return {"X_latent": np.asarray(latent, dtype=np.float32)}


register("scvi", "deep_rna", lambda ctx: fit_scvi_model(ctx, "scvi"),
         {**_TRAIN_DEFAULTS, "hidden": 128, "layers": 1, "dropout": 0.1, "likelihood": "nb",
          "lr": 1e-3, "weight_decay": 1e-6, "patience": 45},
         uses_gpu=True, modalities=("rna",), artifacts=("model",), resources=RESOURCES, checks=CHECKS,
         description="scVI (scvi-tools SCVI): NB VAE on raw counts, batch as covariate when the dataset has one")
# PeakVI / PoissonVI: the package's training settings (at most 500 epochs, lr 1e-4, weight decay 1e-3,
# 50 epochs of KL warm-up, patience 50); hidden 0 = the package's sqrt(number of peaks) rule.
_ATAC_DEFAULTS = {**_TRAIN_DEFAULTS, "epochs": 500, "hidden": 0, "dropout": 0.1, "lr": 1e-4, "weight_decay": 1e-3,
                  "patience": 50, "kl_warmup_epochs": 50}
register("peakvi", "atac", lambda ctx: fit_scvi_model(ctx, "peakvi"), dict(_ATAC_DEFAULTS),
         uses_gpu=True, modalities=("atac",), artifacts=("model",), resources=RESOURCES, checks=CHECKS,
         description="PeakVI (scvi-tools PEAKVI): Bernoulli VAE on binarized peak counts")
register("poissonvi", "atac", lambda ctx: fit_scvi_model(ctx, "poissonvi"), {**_ATAC_DEFAULTS, "count_unit": "auto"},
         uses_gpu=True, modalities=("atac",), artifacts=("model",), resources=RESOURCES, checks=CHECKS,
         description="PoissonVI (scvi-tools POISSONVI): Poisson VAE on fragment counts")
