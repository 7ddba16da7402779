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

    def resolve_params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        params = dict(self.defaults)
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
             description: str = "") -> Method:
    if name in _REGISTRY:
        raise ValueError(f"method {name!r} registered twice")
    method = Method(name, family, run, dict(defaults or {}), uses_gpu, modalities, description)
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
