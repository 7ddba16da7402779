"""Which conda env (``envs/*.yaml``, generated from the lock by ``envs/lock.py``) runs each job under
``snakemake --sdm conda``: the smallest that has what the job's code imports. The envs nest, small to large:

* ``light``: data, embeddings, metrics, statistics, figures, the site, and the trainings of the classical
  methods and controls (no torch);
* ``train``: light + torch, ``-cpu`` or ``-cuda`` (the CUDA 13 build) by whether the job asked for a GPU;
* ``train-extra``: train + scvi-tools, scTour and torch-geometric, for the methods built on them.

``tests/test_envs.py`` reads every rule's imports (and every method's ``run``) with ast and checks that the
chosen env has them and that no smaller env would. Imports nothing, so planning stays light.
"""
from __future__ import annotations

LIGHT, TRAIN, TRAIN_EXTRA = "light", "train", "train-extra"
ORDER = (LIGHT, TRAIN, TRAIN_EXTRA)

# Methods whose training imports a package beyond torch (scvi-tools, scTour, torch-geometric); the other
# torch methods (uses_gpu) train in `train`, the rest in `light`.
EXTRA_METHODS = frozenset({"scvi", "peakvi", "poissonvi", "sctour", "scgnn", "scgcc", "graph_diffvae"})


def env_file(kind: str, gpu: bool = False) -> str:
    """The file under envs/ of an env kind; the torch envs come as a CPU and a CUDA variant."""
    if kind not in ORDER:
        raise ValueError(f"unknown env {kind!r}: one of {', '.join(ORDER)}")
    return f"{kind}.yaml" if kind == LIGHT else f"{kind}-{'cuda' if gpu else 'cpu'}.yaml"


def method_env_kind(method) -> str:
    """The smallest env that trains a registered method."""
    if method.name in EXTRA_METHODS:
        return TRAIN_EXTRA
    return TRAIN if method.uses_gpu else LIGHT


def method_env(method, gpu: int = 0) -> str:
    """The env file of a method's train job: its own (a method that registers ``conda_env``), else the smallest
    of the project's, in its CUDA variant when the job asks for a GPU (config ``gpu`` > 0, torch methods)."""
    if method.conda_env:
        return method.conda_env
    return env_file(method_env_kind(method), gpu=int(gpu) > 0 and method.uses_gpu)
