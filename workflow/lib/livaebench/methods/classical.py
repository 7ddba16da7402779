"""The seven classical baselines (scikit-learn), registered as methods.

Input matrix: the model input ``.X`` (scaled log-expression / TF-IDF) except where a method needs
non-negative or uncentred data (NMF, TruncatedSVD use ``layers['lognorm']``, as in the paper's setup
where TSVD is the uncentred counterpart of PCA).
"""
from __future__ import annotations

import importlib

import numpy as np

from .registry import Deviation, FitContext, Origin, Resources, register

# Linear methods on one dense float32 copy of the input: a small memory model, single-digit minutes.
_RESOURCES = Resources(mem_mb_base=1000, bytes_per_value=12, runtime_min_base=5, runtime_min_per_kcell=0.2)
# The LiVAE paper names these seven methods but no settings: the original is scikit-learn's estimator at its
# package defaults (n_components = the shared latent_dim). The lock pins the version; tests/test_provenance.py
# checks every declared package default against the installed scikit-learn's signature.
SKLEARN = "scikit-learn 1.9.1"
SKLEARN_URL = "https://scikit-learn.org/stable/modules/decomposition.html"
_LOGNORM_INPUT = Deviation(
    "input", "layers['lognorm'] (non-negative log-normalized values)", "not stated by the paper",
    "the estimator needs non-negative (NMF) or is meant for uncentred (TruncatedSVD) input; the z-scored .X is neither",
    "either")


def _matrix(ctx: FitContext, layer: str | None) -> np.ndarray:
    data = ctx.adata.X if layer is None else ctx.adata.layers[layer]
    data = data.toarray() if hasattr(data, "toarray") else np.asarray(data)
    return np.ascontiguousarray(data, dtype=np.float32)


def _sklearn_method(name: str, estimator_name: str, defaults: dict, *, layer: str | None = None,
                    fit_subsample: bool = False, description: str = "", package_defaults: dict | None = None,
                    deviations: tuple[Deviation, ...] = ()):
    """Register ``sklearn.decomposition.<estimator_name>(n_components, random_state, **params)``.

    The class is looked up when the method runs: importing scikit-learn while the workflow is
    planned would cost every snakemake invocation its import time.
    """

    def run(ctx: FitContext) -> dict[str, np.ndarray]:
        estimator = getattr(importlib.import_module("sklearn.decomposition"), estimator_name)
        params = dict(ctx.params)
        n_components = int(params.pop("latent_dim"))
        max_fit_cells = params.pop("max_fit_cells", None)
        data = _matrix(ctx, layer)
        n_components = min(n_components, min(data.shape) - 1)
        model = estimator(n_components=n_components, random_state=ctx.seed, **params)
        if fit_subsample and max_fit_cells and data.shape[0] > max_fit_cells:
            # An n x n kernel does not fit in memory for large datasets: fit on a seeded subsample,
            # then project every cell (the standard Nystroem-style out-of-sample extension).
            rows = np.random.default_rng(ctx.seed).choice(data.shape[0], max_fit_cells, replace=False)
            ctx.log.info(f"{name}: fitting on a seeded subsample of {max_fit_cells} of {data.shape[0]} cells")
            model.fit(data[np.sort(rows)])
            latent = model.transform(data)
        else:
            latent = model.fit_transform(data)
        return {"X_latent": np.asarray(latent, dtype=np.float32)}

    origin = Origin(f"{SKLEARN} (sklearn.decomposition.{estimator_name})", SKLEARN_URL, dict(package_defaults or {}),
                    budget="package defaults (closed form or the estimator's own convergence criterion)")
    register(name, "classical", run, {"latent_dim": 10, **defaults}, description=description,
             resources=_RESOURCES, origin=origin, deviations=deviations)


_sklearn_method("pca", "PCA", {"svd_solver": "arpack"}, description="principal component analysis",
                package_defaults={"svd_solver": "auto"},
                deviations=(Deviation("svd_solver", "arpack", "auto",
                                      "the same top components, computed without the dense full SVD that 'auto' may "
                                      "pick for small inputs", "none"),))
_sklearn_method("kernelpca", "KernelPCA",
                {"kernel": "rbf", "eigen_solver": "randomized", "max_fit_cells": 5000},
                fit_subsample=True, description="RBF kernel PCA (randomized eigensolver)",
                package_defaults={"kernel": "linear", "eigen_solver": "auto"},
                deviations=(
                    Deviation("kernel", "rbf", "linear",
                              "kernel PCA with the package's linear kernel is PCA; the paper lists KPCA as a method of "
                              "its own, and RBF is the usual non-linear kernel", "either"),
                    Deviation("eigen_solver", "randomized", "auto",
                              "the top eigenvectors of a 5,000 x 5,000 kernel in seconds instead of a dense "
                              "eigendecomposition", "none"),
                    Deviation("max_fit_cells", "kernel fitted on <= 5,000 seeded cells, all cells projected",
                              "kernel of all cells",
                              "an n x n kernel does not fit in memory for large datasets (only datasets above 5,000 "
                              "cells are affected)", "against")))
_sklearn_method("factoranalysis", "FactorAnalysis", {"svd_method": "randomized"},
                description="factor analysis", package_defaults={"svd_method": "randomized"})
_sklearn_method("nmf", "NMF", {"init": "nndsvda", "max_iter": 400}, layer="lognorm",
                description="non-negative matrix factorisation of log-normalized values",
                package_defaults={"init": None, "max_iter": 200},
                deviations=(
                    Deviation("init", "nndsvda", "None",
                              "None resolves to nndsvda whenever n_components <= min(cells, features), as here: "
                              "stated explicitly so a package change cannot alter it", "none"),
                    Deviation("max_iter", "400", "200",
                              "200 iterations stop before the coordinate descent converges on the shipped data "
                              "(ConvergenceWarning)", "for"),
                    _LOGNORM_INPUT))
_sklearn_method("fastica", "FastICA", {"whiten": "unit-variance", "max_iter": 400},
                description="independent component analysis",
                package_defaults={"whiten": "unit-variance", "max_iter": 200},
                deviations=(Deviation("max_iter", "400", "200",
                                      "200 iterations stop before the fixed-point iteration converges on the shipped "
                                      "data (ConvergenceWarning)", "for"),))
_sklearn_method("truncatedsvd", "TruncatedSVD", {"algorithm": "randomized"}, layer="lognorm",
                description="truncated SVD of uncentred log-normalized values",
                package_defaults={"algorithm": "randomized"}, deviations=(_LOGNORM_INPUT,))
# The full-batch DictionaryLearning needs minutes per dataset on 2 cores; the mini-batch variant is the
# one docs/methods.md §7.6 allows for that reason.
_sklearn_method("dictionarylearning", "MiniBatchDictionaryLearning",
                {"batch_size": 256, "max_iter": 1000, "transform_algorithm": "lasso_lars"},
                description="mini-batch dictionary learning",
                package_defaults={"batch_size": 256, "max_iter": 1000, "transform_algorithm": "omp"},
                deviations=(
                    Deviation("estimator", "MiniBatchDictionaryLearning", "DictionaryLearning",
                              "the full-batch estimator needs many minutes per dataset on 2 cores; the mini-batch "
                              "one optimises the same objective", "against"),
                    Deviation("transform_algorithm", "lasso_lars", "omp",
                              "OMP keeps 10 % of the components non-zero: with 10 components each cell's code has "
                              "one non-zero entry, a one-hot embedding", "for")))
