"""The scvi-tools baselines (docs/methods.md §7): scVI (RNA), PeakVI and PoissonVI (ATAC).

Each fits the package's own model on the raw counts of the selected features
(``layers['counts']``) and returns the posterior mean of z (``get_latent_representation()``, the mean
of q(z|x): deterministic, as every probabilistic method's embedding here):

* ``scvi``      — ``scvi.model.SCVI``: the package's defaults (ZINB likelihood, one hidden layer of 128
  units, n_latent 10). When the dataset names a batch column (``uns['livaebench']['batch_key']``) it is
  passed as scVI's batch covariate, so the multi-batch comparison sees scVI's own batch correction
  (``use_batch: false`` turns that off).
* ``peakvi``    — ``scvi.model.PEAKVI`` on binarized counts (accessible or not); hidden width the package's
  rule (sqrt of the number of peaks) unless ``hidden`` > 0.
* ``poissonvi`` — ``scvi.external.POISSONVI`` on fragment counts, same conventions. PoissonVI models
  fragments; counts of Tn5 insertions ("reads": two per fragment inside a peak) have more 2s than 1s.
  ``count_unit: auto`` applies scvi-tools' own test for that (more 2s than 1s, here over every value
  rather than a sample of 100 cells) and then converts as its ``reads_to_fragments`` does
  (ceil(x / 2)); ``reads`` / ``fragments`` force either reading. The shipped bone-marrow counts pass
  the test as reads (20,448 twos against 15,402 ones in the selected peaks) and are converted.
  PoissonVI needs at least 100 cells (the package's check samples 100).

Training uses each package's defaults (scvi-tools version in envs/requirements.lock), which the
registry records as the original (``Origin``): scVI at most min(400, round(400 · 20,000 / cells))
epochs (``epochs: 0`` = that rule), Adam lr 1e-3, weight decay 1e-6, KL warm-up over 400 epochs, 10 %
of the cells held out, no early stopping; PeakVI and PoissonVI at most 500 epochs, AdamW lr 1e-4,
weight decay 1e-3, KL warm-up over 50 epochs, early stopping on the validation reconstruction loss
with patience 50. The one difference is the latent size (the workflow's shared ``latent_dim``, see the
deviations below). The validation ELBO is computed every epoch (the package computes it only for early
stopping) so that the convergence record (``ctx.add_convergence``) has a validation curve.

What this simplifies from the packages' tutorials: no further feature filtering (the project's
preprocessing selected the features) and no covariates other than the batch.

Training runs on the CPU unless CUDA is available (``ctx.device`` decides), with the project's seeded
runtime (torch threads = ``ctx.threads``, deterministic kernels) plus ``scvi.settings.seed``, no data
loader workers. The ``model`` artifact is the module's torch state dict with a plain configuration,
loadable with ``torch.load(..., weights_only=True)``; :func:`load_model` rebuilds the fitted model.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import InputError
from .registry import Check, Deviation, FitContext, Origin, Resources, register

# Imports (torch, lightning, scvi-tools) cost ~0.7 GB before any work (docs/MEASUREMENTS); the data
# are a sparse copy of the counts, densified per minibatch only (0.93 GB peak for scVI on the pancreas
# data). Runtime: scVI ran 100 epochs of 3,326 training cells in 144 s on one thread of a loaded
# machine, so 400 epochs without early stopping take ~2.6 min per 1,000 cells there.
RESOURCES = Resources(mem_mb_base=2000, bytes_per_value=8, runtime_min_base=10, runtime_min_per_kcell=3.5)
MIN_CELLS = 20

_TRAIN_DEFAULTS: dict[str, Any] = {"latent_dim": 10, "batch_size": 128, "val_frac": 0.1, "use_batch": True}
CHECKS = {
    "latent_dim": Check(minimum=1), "epochs": Check(minimum=0), "batch_size": Check(minimum=2),
    "lr": Check(minimum=0), "weight_decay": Check(minimum=0), "patience": Check(minimum=1),
    "val_frac": Check(minimum=0, maximum=0.5), "hidden": Check(minimum=0), "layers": Check(minimum=1),
    "dropout": Check(minimum=0, maximum=0.9), "likelihood": Check(choices=("nb", "zinb", "poisson")),
    "kl_warmup_epochs": Check(minimum=0), "count_unit": Check(choices=("auto", "fragments", "reads")),
}
# Lightning's advice that does not apply here (small data: few batches per epoch; no workers on purpose).
_QUIET = (".*does not have many workers.*", ".*smaller than the logging interval.*", ".*LeafSpec.*",
          ".*The `srun` command is available.*")
# What each package's early stopping watches (scVI's trainer default; PEAKVI.train sets its own).
_MONITOR = {"scvi": "elbo_validation", "peakvi": "reconstruction_loss_validation",
            "poissonvi": "reconstruction_loss_validation"}


def _where(ctx: FitContext) -> str:
    return f"dataset '{ctx.dataset}', method '{ctx.method}'"


def count_matrix(ctx: FitContext, *, integer: bool = True):
    """The raw counts of the selected features as CSR float32, after the checks every count model needs."""
    return _counts(ctx.adata, _where(ctx), integer=integer)


def _counts(adata, where: str, *, integer: bool = True):
    import scipy.sparse as sp

    if "counts" not in adata.layers:
        raise InputError(where, "the preprocessed data has no layers['counts'] (raw counts)",
                         "preprocess the raw counts with the project's preprocess step")
    counts = sp.csr_matrix(adata.layers["counts"], dtype=np.float32)
    values = counts.data
    if values.size and (values.min() < 0 or not np.isfinite(values).all()):
        raise InputError(where, "layers['counts'] has negative or non-finite values",
                         "give raw counts (non-negative integers) as the dataset's counts")
    if integer and values.size and np.any(values != np.round(values)):
        raise InputError(where, "layers['counts'] is not integer (normalized values instead of raw counts?)",
                         "give raw counts as the dataset's counts")
    empty = int((np.diff(counts.indptr) == 0).sum())
    if empty:
        raise InputError(where, f"{empty} cells have no counts in the selected features",
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


def model_counts(adata, where: str, model_name: str, count_unit: str = "auto", log=None):
    """(counts as the model reads them, count unit): binarized for PeakVI; fragments for PoissonVI."""
    counts = _counts(adata, where, integer=model_name != "peakvi")
    if model_name == "peakvi":
        counts.data = np.ones_like(counts.data)  # accessible or not
        return counts, None
    if model_name != "poissonvi":
        return counts, None
    unit = count_unit
    if unit == "auto":
        ones, twos = np.count_nonzero(counts.data == 1), np.count_nonzero(counts.data == 2)
        unit = "reads" if twos > ones else "fragments"
        if log is not None:
            log.info("%s: the counts look like %s (%d ones, %d twos)%s", where, unit, ones, twos,
                     ": converted to fragments, ceil(x / 2)" if unit == "reads" else "")
    if unit == "reads":
        counts.data = np.ceil(counts.data / 2)
    return counts, unit


def _scvi_adata(adata, X, batch_values):
    import anndata as ad
    import pandas as pd

    obs = pd.DataFrame(index=adata.obs_names.astype(str))
    if batch_values is not None:
        obs["batch"] = pd.Categorical(np.asarray(batch_values).astype(str))
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=adata.var_names.astype(str)))


def _make_model(scvi, model_name: str, adata, init: dict[str, Any]):
    """The package's model on a prepared AnnData (``batch`` column set up when present)."""
    kwargs = {"batch_key": "batch"} if "batch" in adata.obs else {}
    cls = {"scvi": scvi.model.SCVI, "peakvi": scvi.model.PEAKVI, "poissonvi": scvi.external.POISSONVI}[model_name]
    cls.setup_anndata(adata, **kwargs)
    return cls(adata, **init)


def _init_kwargs(model_name: str, p: dict[str, Any]) -> dict[str, Any]:
    """The model constructor's arguments from the method's parameters."""
    if model_name == "scvi":
        return {"n_hidden": int(p["hidden"]) or 128, "n_latent": int(p["latent_dim"]), "n_layers": int(p["layers"]),
                "dropout_rate": float(p["dropout"]), "gene_likelihood": p["likelihood"]}
    return {"n_hidden": int(p["hidden"]) or None, "n_latent": int(p["latent_dim"]), "dropout_rate": float(p["dropout"])}


def history_rows(history) -> list[dict[str, float]]:
    """Per-epoch {"loss": training ELBO, "val_loss": validation ELBO} from a trained model's ``history``."""
    train = history.get("elbo_train")
    if train is None:
        return []
    val = history.get("elbo_validation")
    val_by_epoch = {} if val is None else dict(zip(val.index, val.iloc[:, 0].astype(float)))
    return [{"loss": float(v), **({"val_loss": val_by_epoch[e]} if e in val_by_epoch else {})}
            for e, v in zip(train.index, train.iloc[:, 0].astype(float))]


def fit_scvi_model(ctx: FitContext, model_name: str) -> dict[str, np.ndarray]:
    """Fit one scvi-tools model (``scvi``, ``peakvi`` or ``poissonvi``) on ``ctx``; write the model artifact."""
    import torch

    from ..training import convergence_record, resolve_device, torch_runtime

    p = ctx.params
    latent_dim = int(p["latent_dim"])
    check_size(ctx, latent_dim, 100 if model_name == "poissonvi" else MIN_CELLS)
    if p["early_stopping"] and p["val_frac"] <= 0:
        raise InputError(_where(ctx), "early_stopping needs a validation split but val_frac is 0",
                         "set val_frac > 0 or early_stopping: false")
    counts, unit = model_counts(ctx.adata, _where(ctx), model_name, p.get("count_unit", "auto"), ctx.log)
    batch_key = batch_column(ctx)

    with torch_runtime(ctx.threads, ctx.seed), warnings.catch_warnings():
        for message in _QUIET:
            warnings.filterwarnings("ignore", message=message)
        import scvi
        from scvi.model._utils import get_max_epochs_heuristic

        scvi.settings.seed = ctx.seed
        scvi.settings.dl_num_workers = 0
        device = resolve_device(ctx.device)
        adata = _scvi_adata(ctx.adata, counts, None if batch_key is None else ctx.adata.obs[batch_key])
        init = _init_kwargs(model_name, p)
        model = _make_model(scvi, model_name, adata, init)
        if model_name == "scvi":
            train_kwargs = {"plan_kwargs": {"lr": float(p["lr"]), "weight_decay": float(p["weight_decay"]),
                                            "n_epochs_kl_warmup": int(p["kl_warmup_epochs"])}}
        else:
            train_kwargs = {"lr": float(p["lr"]), "weight_decay": float(p["weight_decay"]),
                            "n_epochs_kl_warmup": int(p["kl_warmup_epochs"])}
        # epochs 0: the package's own rule (scVI's get_max_epochs_heuristic), resolved here for the record
        max_epochs = int(p["epochs"]) or get_max_epochs_heuristic(adata.n_obs)
        ctx.log.info("%s/%s: %s on %s, %d cells x %d features, batch %s, at most %d epochs", ctx.dataset, ctx.method,
                     type(model).__name__, device, adata.n_obs, adata.n_vars, batch_key or "none", max_epochs)
        validation = float(p["val_frac"]) > 0
        model.train(max_epochs=max_epochs, accelerator="gpu" if device.type == "cuda" else "cpu", devices=1,
                    train_size=1.0 - float(p["val_frac"]), validation_size=float(p["val_frac"]) or None,
                    batch_size=int(p["batch_size"]), early_stopping=bool(p["early_stopping"]),
                    early_stopping_patience=int(p["patience"]), enable_progress_bar=False,
                    check_val_every_n_epoch=1 if validation else None,
                    default_root_dir=str(ctx.outdir), **train_kwargs)
        latent = latent_mean(model)
        rows = history_rows(model.history)
        epochs_run = len(rows)
        stopped_early = bool(p["early_stopping"]) and epochs_run < max_epochs
        detail = (f"early stopping on {_MONITOR[model_name]}, patience {int(p['patience'])}"
                  if p["early_stopping"] else "no early stopping (the package's default)")
        record = convergence_record(rows, max_epochs, "patience" if stopped_early else "max_epochs", detail)
        ctx.add_convergence("train", record)
        final = {key: float(frame.iloc[-1, 0]) for key, frame in model.history.items()
                 if key in ("elbo_train", "elbo_validation", "reconstruction_loss_train")}
        ctx.log.info("%s/%s: trained %d of %d epochs (%s), %s", ctx.dataset, ctx.method, epochs_run, max_epochs,
                     record["stop_reason"], final)
        module = model.module
        config = {"model": model_name, "class": type(model).__name__, "scvi_tools": str(scvi.__version__),
                  "init": {k: v for k, v in init.items() if v is not None}, "n_latent": latent_dim,
                  "n_hidden": int(module.n_hidden), "batch_key": batch_key or "", "epochs_run": epochs_run,
                  "max_epochs": max_epochs, "history": final,
                  "params": {k: v for k, v in p.items() if isinstance(v, (bool, int, float, str))}}
        if unit is not None:
            config["count_unit"] = unit
        if batch_key is not None:
            config["batches"] = list(map(str, adata.obs["batch"].cat.categories))
        torch.save({"state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
                    "config": config, "var_names": list(map(str, ctx.adata.var_names))},
                   ctx.artifact_path("model"))
    return {"X_latent": latent}


def latent_mean(model) -> np.ndarray:
    """The embedding: the mean of q(z|x) for every cell (deterministic)."""
    return np.asarray(model.get_latent_representation(give_mean=True), dtype=np.float32)


def load_model(path, adata, batch_key: str | None = None):
    """The fitted scvi-tools model saved by :func:`fit_scvi_model`, rebuilt on ``adata`` (the preprocessed
    data it was fitted on; ``batch_key``: its batch column when the fit used one)."""
    import torch

    saved = torch.load(path, map_location="cpu", weights_only=True)
    cfg = saved["config"]
    where = f"model {path}"
    counts, _ = model_counts(adata, where, cfg["model"], cfg.get("count_unit", "fragments"))
    batches = None
    if cfg["batch_key"]:
        batches = adata.obs[batch_key or cfg["batch_key"]]
    with warnings.catch_warnings():
        for message in _QUIET:
            warnings.filterwarnings("ignore", message=message)
        import scvi

        model = _make_model(scvi, cfg["model"], _scvi_adata(adata, counts, batches), dict(cfg["init"]))
        model.module.load_state_dict(saved["state_dict"])
        model.module.eval()
        model.is_trained_ = True
    return model


_SCVI_URL = "https://docs.scvi-tools.org/en/1.4.2/api/reference/scvi.model.SCVI.html"
_LOCK = "scvi-tools 1.4.2 (envs/requirements.lock)"
_VALIDATION = Deviation(
    "validation ELBO", "computed every epoch", "computed only when early stopping is on",
    "the convergence record needs the validation curve; it changes no update, only the random stream after "
    "each epoch (the validation pass samples z)", "none")
_SCVI_DEFAULTS = {**_TRAIN_DEFAULTS, "epochs": 0, "early_stopping": False, "hidden": 128, "layers": 1,
                  "dropout": 0.1, "likelihood": "zinb", "lr": 1e-3, "weight_decay": 1e-6, "patience": 45,
                  "kl_warmup_epochs": 400}
register("scvi", "deep_rna", lambda ctx: fit_scvi_model(ctx, "scvi"), _SCVI_DEFAULTS,
         uses_gpu=True, modalities=("rna",), artifacts=("model",), resources=RESOURCES, checks=CHECKS,
         description="scVI (scvi-tools SCVI): ZINB VAE on raw counts, batch as covariate when the dataset has one",
         origin=Origin(f"{_LOCK}, scvi.model.SCVI (Lopez et al., Nat. Methods 2018)", _SCVI_URL,
                       dict(_SCVI_DEFAULTS),
                       budget="at most min(400, round(400 · 20,000 / cells)) epochs (400 up to 20,000 cells), no "
                              "early stopping, Adam lr 1e-3, weight decay 1e-6, KL warm-up 400 epochs, batch 128, "
                              "10 % of the cells held out"),
         deviations=(_VALIDATION,))
# PeakVI / PoissonVI: the package's PEAKVI.train settings; hidden 0 = the package's sqrt(number of peaks) rule.
_ATAC_DEFAULTS = {**_TRAIN_DEFAULTS, "epochs": 500, "early_stopping": True, "hidden": 0, "dropout": 0.1,
                  "lr": 1e-4, "weight_decay": 1e-3, "patience": 50, "kl_warmup_epochs": 50}
_ATAC_BUDGET = ("at most 500 epochs, early stopping on the validation reconstruction loss (patience 50, 10 % of "
                "the cells), AdamW lr 1e-4, weight decay 1e-3, KL warm-up 50 epochs, batch 128")
_ATAC_LATENT = Deviation(
    "latent_dim", "the workflow's shared latent_dim (10 in the shipped configs)",
    "int(sqrt(n_hidden)) with n_hidden = int(sqrt(peaks)): 10 at 10,000 peaks, 6 on the shipped bone-marrow "
    "set (1,640 peaks after preprocessing)",
    "every method is scored at the same latent size", "either")
register("peakvi", "atac", lambda ctx: fit_scvi_model(ctx, "peakvi"), dict(_ATAC_DEFAULTS),
         uses_gpu=True, modalities=("atac",), artifacts=("model",), resources=RESOURCES, checks=CHECKS,
         description="PeakVI (scvi-tools PEAKVI): Bernoulli VAE on binarized peak counts",
         origin=Origin(f"{_LOCK}, scvi.model.PEAKVI (Ashuach et al., Nat. Methods 2022)",
                       "https://docs.scvi-tools.org/en/1.4.2/api/reference/scvi.model.PEAKVI.html",
                       {**_ATAC_DEFAULTS, "latent_dim": "int(sqrt(n_hidden))"}, budget=_ATAC_BUDGET),
         deviations=(_ATAC_LATENT,))
register("poissonvi", "atac", lambda ctx: fit_scvi_model(ctx, "poissonvi"), {**_ATAC_DEFAULTS, "count_unit": "auto"},
         uses_gpu=True, modalities=("atac",), artifacts=("model",), resources=RESOURCES, checks=CHECKS,
         description="PoissonVI (scvi-tools POISSONVI): Poisson VAE on fragment counts",
         origin=Origin(f"{_LOCK}, scvi.external.POISSONVI (Martens et al., Nat. Methods 2024)",
                       "https://docs.scvi-tools.org/en/1.4.2/api/reference/scvi.external.POISSONVI.html",
                       {**_ATAC_DEFAULTS, "latent_dim": "int(sqrt(n_hidden))"}, budget=_ATAC_BUDGET),
         deviations=(_ATAC_LATENT,))
