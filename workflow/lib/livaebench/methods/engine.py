"""The one adapter between the method registry and the training engine: fits any ``EngineModel``.

A neural method supplies ``build(ctx) -> (model, data)`` (the model, initialised inside the seeded
runtime, and its training tensors, first dimension = cells); this adapter does everything else the
same way for every model: threads and seeds, the device, one training run per phase (checkpointed and
resumable), the embeddings, and the ``model`` artifact. No model class is named here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from .registry import Check, FitContext

# Parameters of the engine every neural method takes (ctx.params holds these, plus the model's own).
ENGINE_DEFAULTS: dict[str, Any] = {
    "epochs": 400, "batch_size": 128, "lr": 1e-4, "weight_decay": 0.0, "grad_clip": 1.0,
    "val_frac": 0.15, "patience": 25, "checkpoint_seconds": 60.0, "optimizer": "adam",
}
ENGINE_CHECKS: dict[str, Check] = {
    "epochs": Check(minimum=1), "batch_size": Check(minimum=2), "lr": Check(minimum=0),
    "weight_decay": Check(minimum=0), "grad_clip": Check(minimum=0), "val_frac": Check(minimum=0, maximum=0.9),
    "patience": Check(minimum=0), "checkpoint_seconds": Check(minimum=0), "latent_dim": Check(minimum=1),
    "optimizer": Check(choices=("adam", "amsgrad", "adadelta", "sgd")),  # training.OPTIMIZERS (no torch import here)
}
TRAIN_KEYS = tuple(ENGINE_DEFAULTS)


def fit_engine_model(ctx: FitContext, build: Callable[[FitContext], tuple[Any, dict]], *,
                     progress: bool = True) -> dict[str, np.ndarray]:
    """Train the model ``build`` makes on the engine, phase by phase; return its embeddings.

    Phases after the first get their own checkpoint folder (``phase_<name>/``), so an interrupted run
    resumes inside the phase it was in. ``model.phases()`` is re-read after every phase: an iterative
    model (scGNN) may end the list early once its own convergence rule is met. Writes the ``model``
    artifact when the method declares one.
    """
    import torch

    from ..training import TrainConfig, resolve_device, torch_runtime, train

    base = {k: ctx.params[k] for k in TRAIN_KEYS if k in ctx.params}
    with torch_runtime(ctx.threads, ctx.seed):
        device = resolve_device(ctx.device)
        model, data = build(ctx)
        ctx.log.info("%s/%s: %s on %s, %d cells", ctx.dataset, ctx.method, type(model).__name__, device,
                     next(iter(data.values())).shape[0])
        infos = []
        phases = model.phases()
        single = len(phases) == 1
        index = 0
        while index < len(phases):
            phase = dict(phases[index])
            name = phase.pop("name")
            model.start_phase(name, data)
            outdir = Path(ctx.outdir) if index == 0 else Path(ctx.outdir) / f"phase_{name}"
            result = train(model, data, TrainConfig(**{**base, **phase}), seed=ctx.seed, outdir=outdir,
                           device=device, log=ctx.log, dataset=ctx.dataset,
                           method=ctx.method if single else f"{ctx.method}:{name}",
                           progress=progress, fingerprint_extra={**model.describe(), "phase": name})
            infos.append(result.info)
            ctx.add_convergence(name, result.info["convergence"])
            index += 1
            phases = model.phases()  # re-read: an iterative model ends its list when it has converged
        latents = model.latents(data)
        if "model" in ctx.artifacts:
            torch.save({"state_dict": model.state_dict(), "config": model.describe(),
                        "var_names": list(map(str, ctx.adata.var_names)), "train_info": infos},
                       ctx.artifact_path("model"))
    return {key: np.asarray(value, dtype=np.float32) for key, value in latents.items()}
