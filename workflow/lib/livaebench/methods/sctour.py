"""scTour (pip ``sctour``) as a baseline (docs/methods.md §7).

scTour is a VAE whose encoder also gives each cell a pseudotime t in (0, 1); a neural ODE integrated
along the sorted pseudotimes predicts a second latent, and both latents are decoded (NB likelihood on
the counts by default). The package's ``Trainer`` is used as shipped, with its defaults (version in
envs/requirements.lock), on a fresh AnnData whose ``.X`` is the dense float32 raw counts of the selected
genes (``layers['counts']``): ``epochs: 0`` and ``percent: 0`` are the package's own rules (it trains on
90 % of the cells below 10,000 cells, 20 % above, for min(400, round(400 · 10,000 / training cells))
epochs, and reports the loss of 10 % as many other cells). The pseudotime (``get_time()``) is returned
beside the embedding as ``X_pseudotime`` (cells x 1).

The embedding is the package's mixture 0.5·z + 0.5·z_ODE (what its tutorials store as ``X_TNODE``) built
from the posterior *mean*: z = μ(x), and the ODE path is integrated from the μ of the earliest cell
(:func:`mean_latent`). The package's ``get_latentsp()`` uses a sample of z instead; every probabilistic
method here is scored on its posterior mean (docs/adding-a-method.md), which also makes the embedding a
deterministic function of the trained model. Declared as a deviation in the registry, with the latent
size (the workflow's shared ``latent_dim``; the package's default is 5).

The package has no early stopping: the record of the run (``ctx.add_convergence``) says ``max_epochs``,
with the relative change of the training and validation loss over the last 10 % of the epochs, so an
under-trained fit is visible. Cost: ~1 s per epoch for 3,300 training cells x 2,000 genes on one thread
(the latent ODE is integrated with one Euler step per cell of the minibatch, sequentially, so more
threads do not help much); at the package's batch size of 1,024 an epoch is only ~4 optimiser steps.

The package seeds numpy/torch from one seed; the whole fit runs in the project's seeded runtime (torch
threads = ``ctx.threads``, deterministic kernels), so a seed gives the same embedding on the CPU. The
``model`` artifact is the TNODE state dict with its configuration (``weights_only`` loadable;
:func:`load_model` rebuilds it).
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .registry import Check, Deviation, FitContext, Origin, Resources, register
from .scvi_tools import check_size, count_matrix

# Imports ~0.6 GB; dense float32 counts plus their log1p copy and the torch tensor (~3 x 4 bytes per
# value): 1.15 GB peak on the pancreas data. Runtime of 400 epochs on its 3,696 cells: ~7 min on one
# quiet core (~1 s per epoch), 14 min on a loaded machine: 4 min per 1,000 cells covers both.
RESOURCES = Resources(mem_mb_base=1500, bytes_per_value=16, runtime_min_base=10, runtime_min_per_kcell=4.0)

DEFAULTS = {
    "latent_dim": 10, "epochs": 0, "batch_size": 1024, "lr": 1e-3, "weight_decay": 1e-6, "percent": 0.0,
    "hidden": 128, "ode_hidden": 25, "loss_mode": "nb", "alpha_recon_lec": 0.5, "alpha_kl": 1.0,
}
CHECKS = {
    "latent_dim": Check(minimum=1), "epochs": Check(minimum=0), "batch_size": Check(minimum=2),
    "lr": Check(minimum=0), "weight_decay": Check(minimum=0), "percent": Check(minimum=0, maximum=0.99),
    "hidden": Check(minimum=1), "ode_hidden": Check(minimum=1), "loss_mode": Check(choices=("nb", "zinb")),
    "alpha_recon_lec": Check(minimum=0, maximum=1), "alpha_kl": Check(minimum=0),
}
ALPHA_Z = 0.5  # weight of z in the embedding (the package's get_latentsp default); 1 - ALPHA_Z for the ODE path


def mean_latent(model, X) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embedding, μ, ODE path) of the cells ``X`` (log1p counts for the NB/ZINB modes) under a trained TNODE.

    z = μ(x); the cells are ordered by their encoder pseudotime, the ODE is integrated from the μ of the
    earliest cell through every distinct pseudotime with the model's solver (cells that share a
    pseudotime share a point of the path), and the embedding is ALPHA_Z·μ + (1 − ALPHA_Z)·path.
    """
    import torch
    from sctour._utils import get_step_size
    from torchdiffeq import odeint

    model.eval()
    with torch.no_grad():
        x = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32)).to(model.device)
        t, mu, _ = model.encoder(x)
        t, mu = t.ravel().cpu(), mu.cpu()
        times, inverse = torch.unique(t, sorted=True, return_inverse=True)
        first = int(torch.argmin(t))  # a cell at the earliest pseudotime
        options = get_step_size(model.step_size, times[0], times[-1], len(times))
        path = odeint(model.lode_func, mu[first], times, method=model.ode_method, options=options)
        path = path.view(-1, model.n_latent)[inverse]
        mix = ALPHA_Z * mu + (1.0 - ALPHA_Z) * path
    return mix.numpy(), mu.numpy(), path.numpy()


def _train_rows(log) -> list[dict[str, float]]:
    return [{"loss": float(a), "val_loss": float(b)} for a, b in zip(log["train_loss"], log["validation_loss"])]


def run(ctx: FitContext) -> dict[str, np.ndarray]:
    import anndata as ad
    import pandas as pd
    import torch

    from ..training import convergence_record, resolve_device, torch_runtime

    p = ctx.params
    latent_dim = int(p["latent_dim"])
    check_size(ctx, latent_dim)
    counts = count_matrix(ctx, integer=True)
    percent = float(p["percent"]) or (0.2 if ctx.adata.n_obs > 10000 else 0.9)  # 0: the package's rule
    if int(np.ceil(ctx.adata.n_obs * percent)) >= ctx.adata.n_obs:
        raise InputError(f"dataset '{ctx.dataset}', method '{ctx.method}'",
                         f"percent {percent} of {ctx.adata.n_obs} cells leaves none to validate on",
                         "lower percent")
    dense = counts.toarray()
    obs = pd.DataFrame({"n_genes_by_counts": np.diff(counts.indptr).astype(np.int64)},
                       index=ctx.adata.obs_names.astype(str))
    adata = ad.AnnData(X=dense, obs=obs, var=pd.DataFrame(index=ctx.adata.var_names.astype(str)))

    with torch_runtime(ctx.threads, ctx.seed):
        import sctour

        device = resolve_device(ctx.device)
        trainer = sctour.train.Trainer(
            adata, percent=percent, n_latent=latent_dim, n_ode_hidden=int(p["ode_hidden"]),
            n_vae_hidden=int(p["hidden"]), loss_mode=p["loss_mode"], nepoch=int(p["epochs"]) or None,
            batch_size=int(p["batch_size"]), lr=float(p["lr"]), wt_decay=float(p["weight_decay"]),
            alpha_recon_lec=float(p["alpha_recon_lec"]), alpha_recon_lode=1.0 - float(p["alpha_recon_lec"]),
            alpha_kl=float(p["alpha_kl"]), random_state=ctx.seed, use_gpu=device.type == "cuda")
        n_train = int(np.ceil(adata.n_obs * trainer.percent))
        ctx.log.info("%s/%s: scTour on %s, %d cells (%d for training) x %d genes, %d epochs", ctx.dataset,
                     ctx.method, trainer.device, adata.n_obs, n_train, adata.n_vars, trainer.nepoch)
        trainer.train()
        losses = {key: float(values[-1]) for key, values in trainer.log.items() if values}
        ctx.log.info("%s/%s: final losses %s", ctx.dataset, ctx.method, losses)
        if not all(np.isfinite(list(losses.values()))):
            raise RuntimeError(f"{ctx.dataset}/{ctx.method}: scTour training diverged (losses {losses})")
        ctx.add_convergence("train", convergence_record(
            _train_rows(trainer.log), int(trainer.nepoch), "max_epochs",
            "the package trains a fixed number of epochs (no early stopping)"))
        pseudotime = trainer.get_time()
        embedding, _, _ = mean_latent(trainer.model, np.log1p(dense) if p["loss_mode"] != "mse" else dense)
        kwargs = {k: v for k, v in trainer.model_kwargs.items() if k != "device"}
        config = {"model": "sctour.TNODE", **kwargs, "time_reverse": bool(trainer.time_reverse),
                  "nepoch": int(trainer.nepoch), "percent": float(trainer.percent), "losses": losses,
                  "n_latent": latent_dim, "alpha_z": ALPHA_Z}
        torch.save({"state_dict": {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()},
                    "config": config, "var_names": list(map(str, ctx.adata.var_names))},
                   ctx.artifact_path("model"))
    return {"X_latent": np.asarray(embedding, dtype=np.float32),
            "X_pseudotime": np.asarray(pseudotime, dtype=np.float32).reshape(-1, 1)}


def load_model(path):
    """The TNODE saved by :func:`run`, on the CPU in eval mode."""
    import torch
    from sctour.model import TNODE

    saved = torch.load(path, map_location="cpu", weights_only=True)
    keys = ("n_int", "n_latent", "n_ode_hidden", "n_vae_hidden", "batch_norm", "ode_method", "step_size",
            "alpha_recon_lec", "alpha_recon_lode", "alpha_kl", "loss_mode")
    model = TNODE(device=torch.device("cpu"), **{k: saved["config"][k] for k in keys})
    model.load_state_dict(saved["state_dict"])
    return model.eval()


register("sctour", "deep_rna", run, DEFAULTS, uses_gpu=True, modalities=("rna",), artifacts=("model",),
         resources=RESOURCES, checks=CHECKS,
         description="scTour (pip sctour): VAE with encoder pseudotime and a latent neural ODE (NB on counts)",
         origin=Origin("sctour 1.0.0 (envs/requirements.lock; Li et al., Genome Biol. 2023)",
                       "https://github.com/LiQian-XC/sctour", {**DEFAULTS, "latent_dim": 5},
                       budget="min(400, round(400 · 10,000 / training cells)) epochs (400 up to 10,000 training "
                              "cells), no early stopping, Adam lr 1e-3 (eps 0.01), weight decay 1e-6, batch 1,024, "
                              "trained on 90 % of the cells (20 % above 10,000 cells)"),
         deviations=(
             Deviation("latent_dim", "the workflow's shared latent_dim (10 in the shipped configs)", "5",
                       "every method is scored at the same latent size", "either"),
             Deviation("embedding", "0.5·μ + 0.5·ODE path from μ (posterior mean)",
                       "0.5·z + 0.5·ODE path from z, z a posterior sample (get_latentsp)",
                       "one rule for every probabilistic method: the embedding is the posterior mean, a "
                       "deterministic function of the trained model", "for"),
         ))
