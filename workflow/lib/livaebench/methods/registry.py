"""The method registry: one place that maps a method name to its implementation and its contract.

The contract of a method (see docs/adding-a-method.md):

* ``run(ctx: FitContext) -> dict[str, np.ndarray]`` returns at least ``"X_latent"`` (cells x d) and
  optionally further embeddings (``"X_bottleneck"``, ...). Files that later rules read are
  *artifacts*: declared by name in ``artifacts`` (the file names are in :data:`ARTIFACT_FILES`),
  written by ``run`` to ``ctx.artifact_path(name)``, and declared as outputs of the train rule.
* ``defaults`` are the parameters it takes; their types (and ``checks``: choices, ranges) are checked
  against the config's ``method_params`` while the workflow is planned, before any job runs.
* ``modalities``, ``uses_gpu``, ``conda_env`` (the train rule's ``conda:``: None for the smallest of the
  project's envs that trains it, ``livaebench.software_envs``; a file under ``envs/`` for a method with
  software of its own) and ``resources`` (threads, memory and runtime as a function of the dataset's size).

Modules in ``livaebench.methods`` register their methods at import time. Importing the registry is
what the Snakefile does while it parses, so a method module imports nothing heavy at module level
(torch, scvi-tools, scikit-learn, scanpy, ...): those imports live inside ``run``.
``tests/test_method_contract.py`` checks this in a fresh interpreter.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import InputError, choose_from

# Artifact name -> file name inside results/models/{dataset}/{method}/seed{seed}/
ARTIFACT_FILES: dict[str, str] = {
    "model": "model.pt",          # fitted model (torch state dict + configuration), loadable with weights_only
    "loadings": "loadings.tsv",   # feature x component weights of a linear method
    "cells": "cells.tsv",         # per-cell table (cluster assignments, pseudotime, ...)
}
DEFAULT_CONDA_ENV = None  # livaebench.software_envs chooses
# Written by fit_method beside the latents: the convergence records of the run's trainings ([] if none)
CONVERGENCE_FILE = "convergence.json"


@dataclass(frozen=True)
class Resources:
    """Resources of one training job, growing with the dataset (cells x features) and the attempt.

    Memory: a base (imports, model) plus ``bytes_per_value`` per cell x feature (the dense copies a
    method makes of the input); runtime: a base plus minutes per 1,000 cells. A retried job (attempt
    k) gets k times both, so a job killed for memory or time is resubmitted with more.
    """

    mem_mb_base: int = 1500
    bytes_per_value: float = 16.0
    runtime_min_base: float = 10.0
    runtime_min_per_kcell: float = 0.5
    max_threads: int | None = None  # a method that cannot use more threads caps the rule's threads

    def __call__(self, n_cells: int, n_features: int, attempt: int = 1) -> dict[str, int]:
        attempt = max(1, int(attempt))
        mem = self.mem_mb_base + n_cells * n_features * self.bytes_per_value / 2**20
        runtime = self.runtime_min_base + self.runtime_min_per_kcell * n_cells / 1000
        return {"mem_mb": int(math.ceil(mem * attempt)), "runtime": int(math.ceil(runtime * attempt))}

    def threads(self, requested: int) -> int:
        return max(1, min(int(requested), self.max_threads or int(requested)))


@dataclass(frozen=True)
class Check:
    """Constraints of one parameter beyond its type: allowed values and an inclusive range."""

    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None

    def problem(self, value: Any) -> str | None:
        if self.choices is not None and value not in self.choices:
            return f"must be one of {', '.join(map(str, self.choices))}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                return f"must be >= {self.minimum}"
            if self.maximum is not None and value > self.maximum:
                return f"must be <= {self.maximum}"
        return None


def _type_problem(value: Any, default: Any) -> str | None:
    """The type a value must have, taken from the registry default (None: any; int fits a float)."""
    if default is None:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"
    if isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok and math.isfinite(value) else "must be a finite number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "must be a string"
    if isinstance(default, (list, tuple)):
        return None if isinstance(value, (list, tuple)) else "must be a list"
    return None


BIAS_DIRECTIONS = ("for", "against", "either", "none")


@dataclass(frozen=True)
class Deviation:
    """One way a registered method differs from its original (package defaults or the authors' code/paper).

    ``setting``: a parameter name of the method's ``defaults`` or, for what is not a parameter, a short
    name of the aspect ("architecture", "augmentation"). ``bias``: the direction the difference may move a
    comparison, from the method's side: ``for`` it (it may score better than the original would),
    ``against`` it, ``either``, or ``none``.
    """

    setting: str
    ours: str
    original: str
    reason: str
    bias: str

    def __post_init__(self):
        if self.bias not in BIAS_DIRECTIONS:
            raise ValueError(f"deviation '{self.setting}': bias must be one of {BIAS_DIRECTIONS}, not {self.bias!r}")
        if not self.reason.strip():
            raise ValueError(f"deviation '{self.setting}' has no reason")


@dataclass(frozen=True)
class Origin:
    """Where a method comes from: ``source`` (package and version, or the paper), ``url`` (the package's
    documentation or the authors' repository) and ``defaults``: the original's values of the parameters that
    this registry's ``defaults`` also has (epochs, learning rate, optimizer, dimensions, ...). A parameter
    whose registry default differs from the original's needs a :class:`Deviation` of that name
    (``tests/test_provenance.py``). ``budget``: the original's training budget in words, for the fairness
    table."""

    source: str
    url: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    budget: str = ""


@dataclass
class FitContext:
    """Everything a method needs to fit one dataset with one seed."""

    adata: Any  # preprocessed AnnData: .X model input, .layers["counts"] raw counts, .layers["lognorm"]
    dataset: str
    method: str
    seed: int
    params: dict[str, Any]
    outdir: Path  # results/models/{dataset}/{method}/seed{seed}/ : artifacts, checkpoints, train_log.tsv
    threads: int = 1
    device: str | None = None  # None: CUDA when available, else CPU
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("livaebench"))
    artifacts: tuple[str, ...] = ()
    # one record per training phase (training.convergence_record + "phase"); empty for non-iterative methods
    convergence: list[dict[str, Any]] = field(default_factory=list)

    def add_convergence(self, phase: str, record: Mapping[str, Any]) -> None:
        """Every neural training reports how it ended (engine, scvi-tools, scTour): see CONVERGENCE_FILE."""
        self.convergence.append({"phase": phase, **record})

    @property
    def modality(self) -> str:
        return self.adata.uns["livaebench"]["modality"]

    def artifact_path(self, name: str) -> Path:
        """Where ``run`` writes a declared artifact (an undeclared one is a programming error)."""
        if name not in self.artifacts:
            raise KeyError(f"method '{self.method}' writes artifact '{name}' without declaring it "
                           f"(declared: {', '.join(self.artifacts) or 'none'})")
        return Path(self.outdir) / ARTIFACT_FILES[name]


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
    artifacts: tuple[str, ...] = ()
    conda_env: str | None = DEFAULT_CONDA_ENV
    resources: Resources = Resources()
    checks: Mapping[str, Check] = field(default_factory=dict)
    origin: Origin | None = None
    deviations: tuple[Deviation, ...] = ()

    def undeclared_differences(self) -> list[str]:
        """Parameters whose default differs from the original's without a declared deviation, and declared
        parameter deviations whose default in fact equals the original's (stale): both are documentation bugs."""
        if self.origin is None:
            return ["no origin declared"]
        declared = {d.setting for d in self.deviations}
        problems = []
        for key, original in self.origin.defaults.items():
            if key not in self.defaults:
                problems.append(f"origin names '{key}', which is not a parameter of the method")
            elif self.defaults[key] != original and key not in declared:
                problems.append(f"'{key}' is {self.defaults[key]!r} here but {original!r} in the original, "
                                "with no deviation declared")
            elif self.defaults[key] == original and key in declared:
                problems.append(f"deviation '{key}' is declared but the default equals the original's {original!r}")
        return problems

    def check_modality(self, modality: str, dataset: str) -> None:
        if modality not in self.modalities:
            raise InputError(f"method '{self.name}' on dataset '{dataset}'", f"does not support modality {modality}",
                             f"remove it from methods or use it on {'/'.join(self.modalities)} data")

    def check_params(self, overrides: Mapping[str, Any] | None, where: str) -> None:
        """One-line error for an unknown parameter, a wrong type or a value out of range."""
        for key, value in (overrides or {}).items():
            if key not in self.defaults:
                raise InputError(where, f"unknown parameter '{key}' of method '{self.name}'",
                                 choose_from(key, sorted(self.defaults), f"`python -m livaebench.methods {self.name}`"))
            problem = _type_problem(value, self.defaults[key])
            if problem is None and key in self.checks:
                problem = self.checks[key].problem(value)
            if problem:
                raise InputError(where, f"parameter '{key}' of method '{self.name}' is {value!r}: it {problem}",
                                 "correct the value in method_params")

    def resolve_params(self, overrides: Mapping[str, Any] | None = None,
                       global_params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Registry defaults, then workflow-wide settings (e.g. latent_dim) unless pinned, then per-method overrides."""
        self.check_params(overrides, f"method '{self.name}'")
        params = dict(self.defaults)
        for key, value in (global_params or {}).items():
            if key in params and key not in self.pinned:
                params[key] = value
        params.update(overrides or {})
        return params


_REGISTRY: dict[str, Method] = {}
# where a user finds every registered name (an error about an unknown name points there, docs/baselines.md
# is generated from the registry)
METHODS_LISTED = "docs/baselines.md"


def register(name: str, family: str, run: Callable, defaults: Mapping[str, Any] | None = None,
             *, uses_gpu: bool = False, modalities: tuple[str, ...] = ("rna", "atac"),
             description: str = "", pinned: tuple[str, ...] = (), artifacts: tuple[str, ...] = (),
             conda_env: str | None = DEFAULT_CONDA_ENV, resources: Resources | None = None,
             checks: Mapping[str, Check] | None = None, origin: Origin | None = None,
             deviations: tuple[Deviation, ...] | list[Deviation] = ()) -> Method:
    if name in _REGISTRY:
        raise ValueError(f"method {name!r} registered twice")
    unknown = set(artifacts) - set(ARTIFACT_FILES)
    if unknown:
        raise ValueError(f"method {name!r} declares unknown artifacts {sorted(unknown)}")
    method = Method(name, family, run, dict(defaults or {}), uses_gpu, tuple(modalities), description,
                    tuple(pinned), tuple(artifacts), conda_env, resources or Resources(), dict(checks or {}),
                    origin, tuple(deviations))
    _REGISTRY[name] = method
    return method


def get_method(name: str) -> Method:
    if name not in _REGISTRY:
        raise InputError(
            f"method '{name}'", "is not in the method registry", choose_from(name, sorted(_REGISTRY), METHODS_LISTED),
        )
    return _REGISTRY[name]


def all_methods() -> dict[str, Method]:
    return dict(_REGISTRY)


def methods_of_family(family: str) -> list[str]:
    """Registered method names of one family, in registration order."""
    return [name for name, method in _REGISTRY.items() if method.family == family]


def check_method_params(method_params: Mapping[str, Any], source: str = "config") -> None:
    """Check the config's ``method_params`` against the registry (names, parameters, types, ranges)."""
    for name, overrides in (method_params or {}).items():
        if name not in _REGISTRY:
            raise InputError(f"{source}: key 'method_params.{name}'", f"'{name}' is not a registered method",
                             choose_from(name, sorted(_REGISTRY), METHODS_LISTED))
        if not isinstance(overrides, Mapping):
            raise InputError(f"{source}: key 'method_params.{name}'", "must be a mapping of parameter: value",
                             "write it as {parameter: value, ...}")
        _REGISTRY[name].check_params(overrides, f"{source}: key 'method_params.{name}'")


def check_dataset_method_params(dataset_method_params: Mapping[str, Any], datasets, source: str = "config") -> None:
    """Check per-dataset overrides ``{dataset: {method: {parameter: value}}}`` like ``method_params``."""
    for dataset, per_method in (dataset_method_params or {}).items():
        if dataset not in datasets:
            raise InputError(f"{source}: key 'dataset_method_params.{dataset}'", f"'{dataset}' is not in the dataset registry",
                             choose_from(dataset, datasets, "the dataset registry"))
        check_method_params(per_method, f"{source} (dataset_method_params.{dataset})")


def method_overrides(config: Mapping[str, Any], dataset: str, method: str) -> dict[str, Any]:
    """A method's overrides on one dataset: ``method_params``, then ``dataset_method_params`` of the dataset."""
    per_dataset = ((config.get("dataset_method_params") or {}).get(dataset) or {}).get(method) or {}
    return {**((config.get("method_params") or {}).get(method) or {}), **per_dataset}


def fit_method(name: str, adata, *, dataset: str, seed: int, outdir: str | Path, threads: int = 1,
               overrides: Mapping[str, Any] | None = None, global_params: Mapping[str, Any] | None = None,
               device: str | None = None, log: logging.Logger | None = None) -> dict[str, np.ndarray]:
    """Fit a registered method; check what it returns (a finite cells x d ``X_latent``) and its artifacts."""
    method = get_method(name)
    method.check_modality(adata.uns["livaebench"]["modality"], dataset)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    ctx = FitContext(adata=adata, dataset=dataset, method=name, seed=seed,
                     params=method.resolve_params(overrides, global_params), outdir=outdir, threads=threads,
                     device=device, log=log or logging.getLogger("livaebench"), artifacts=method.artifacts)
    ctx.log.info(f"{dataset}/{name}/seed{seed}: {adata.n_obs} cells x {adata.n_vars} features, params {ctx.params}")
    embeddings = method.run(ctx)
    latent = embeddings.get("X_latent")
    if latent is None or latent.shape[0] != adata.n_obs or not np.isfinite(latent).all():
        raise RuntimeError(f"{dataset}/{name}: method returned no finite X_latent of {adata.n_obs} rows")
    missing = [a for a in method.artifacts if not ctx.artifact_path(a).is_file()]
    if missing:
        raise RuntimeError(f"{dataset}/{name}: declared artifact(s) {', '.join(missing)} were not written")
    import json
    (outdir / CONVERGENCE_FILE).write_text(json.dumps(ctx.convergence, indent=1, default=float) + "\n")
    return {key: np.asarray(value, dtype=np.float32) for key, value in embeddings.items()}
