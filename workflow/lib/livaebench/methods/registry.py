"""The method registry: one place that maps a method name to its implementation, defaults and resources.

A method is a callable ``run(ctx: FitContext) -> dict[str, np.ndarray]`` returning at least
``"X_latent"`` (cells x latent_dim) and optionally extra embeddings such as ``"X_bottleneck"``.
Modules in ``livaebench.methods`` register their methods at import time; ``livaebench.methods``
imports every such module, so adding a method never touches the rules, the scripts or this file.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import InputError


@dataclass
class FitContext:
    """Everything a method needs to fit one dataset with one seed."""

    adata: Any  # preprocessed AnnData: .X model input, .layers["counts"] raw counts, .layers["lognorm"]
    dataset: str
    method: str
    seed: int
    params: dict[str, Any]
    outdir: Path  # results/models/{dataset}/{method}/seed{seed}/ : checkpoints, train_log.tsv
    threads: int = 1
    device: str | None = None  # None: CUDA when available, else CPU
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("livaebench"))

    @property
    def modality(self) -> str:
        return self.adata.uns["livaebench"]["modality"]


@dataclass(frozen=True)
class Method:
    name: str
    family: str  # grouping used by comparisons and figures: classical, vae_family, livae, ...
    run: Callable[[FitContext], dict[str, np.ndarray]]
    defaults: Mapping[str, Any]
    uses_gpu: bool = False  # torch models get the rule's gpu resource
    modalities: tuple[str, ...] = ("rna", "atac")
    description: str = ""
    pinned: tuple[str, ...] = ()  # parameters a variant fixes (a sweep's latent_dim): global settings skip them

    def resolve_params(self, overrides: Mapping[str, Any] | None = None,
                       global_params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Registry defaults, then workflow-wide settings (e.g. latent_dim) unless pinned, then per-method overrides."""
        params = dict(self.defaults)
        for key, value in (global_params or {}).items():
            if key in params and key not in self.pinned:
                params[key] = value
        for key, value in (overrides or {}).items():
            if key not in params:
                raise InputError(
                    f"method '{self.name}'",
                    f"unknown parameter '{key}' (known: {', '.join(sorted(params))})",
                    "remove it from method_params in the config or spell it as listed",
                )
            params[key] = value
        return params


_REGISTRY: dict[str, Method] = {}


def register(name: str, family: str, run: Callable, defaults: Mapping[str, Any] | None = None,
             *, uses_gpu: bool = False, modalities: tuple[str, ...] = ("rna", "atac"),
             description: str = "", pinned: tuple[str, ...] = ()) -> Method:
    if name in _REGISTRY:
        raise ValueError(f"method {name!r} registered twice")
    method = Method(name, family, run, dict(defaults or {}), uses_gpu, modalities, description, tuple(pinned))
    _REGISTRY[name] = method
    return method


def get_method(name: str) -> Method:
    if name not in _REGISTRY:
        raise InputError(
            f"method '{name}'", "is not in the method registry",
            f"use one of: {', '.join(sorted(_REGISTRY))}",
        )
    return _REGISTRY[name]


def all_methods() -> dict[str, Method]:
    return dict(_REGISTRY)


def fit_method(name: str, adata, *, dataset: str, seed: int, outdir: str | Path, threads: int = 1,
               overrides: Mapping[str, Any] | None = None, global_params: Mapping[str, Any] | None = None,
               device: str | None = None, log: logging.Logger | None = None) -> dict[str, np.ndarray]:
    """Fit a registered method and check what it returns (a finite cells x d ``X_latent``)."""
    method = get_method(name)
    modality = adata.uns["livaebench"]["modality"]
    if modality not in method.modalities:
        raise InputError(f"method '{name}' on dataset '{dataset}'", f"does not support modality {modality}",
                         f"remove it from methods or use it on {'/'.join(method.modalities)} data")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    ctx = FitContext(adata=adata, dataset=dataset, method=name, seed=seed,
                     params=method.resolve_params(overrides, global_params), outdir=outdir, threads=threads,
                     device=device, log=log or logging.getLogger("livaebench"))
    ctx.log.info(f"{dataset}/{name}/seed{seed}: {adata.n_obs} cells x {adata.n_vars} features, params {ctx.params}")
    embeddings = method.run(ctx)
    latent = embeddings.get("X_latent")
    if latent is None or latent.shape[0] != adata.n_obs or not np.isfinite(latent).all():
        raise RuntimeError(f"{dataset}/{name}: method returned no finite X_latent of {adata.n_obs} rows")
    return {key: np.asarray(value, dtype=np.float32) for key, value in embeddings.items()}
