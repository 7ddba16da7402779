"""The classical baselines through the method registry, on the real pancreas data."""
from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from livaebench.errors import InputError
from livaebench.methods import all_methods, fit_method, get_method

CLASSICAL = ["pca", "kernelpca", "factoranalysis", "nmf", "fastica", "truncatedsvd", "dictionarylearning"]


@pytest.fixture(scope="module")
def prep(shared_data):
    """400 real pancreas cells, normalised the simple way (the methods only need the contract's layers)."""
    raw = ad.read_h5ad(shared_data / "pancreas.h5ad")[:400, :300].copy()
    counts = raw.X.toarray().astype(np.float32)
    lognorm = np.log1p(counts / np.maximum(counts.sum(1, keepdims=True), 1) * 1e4)
    scaled = (lognorm - lognorm.mean(0)) / np.maximum(lognorm.std(0), 1e-8)
    adata = ad.AnnData(np.clip(scaled, -10, 10).astype(np.float32), obs=raw.obs)
    adata.layers["counts"] = sp.csr_matrix(counts)
    adata.layers["lognorm"] = lognorm.astype(np.float32)
    adata.uns["livaebench"] = {"dataset": "pancreas", "modality": "rna", "label_key": "clusters", "batch_key": ""}
    return adata


def test_all_classical_methods_are_registered():
    registry = all_methods()
    assert set(CLASSICAL) <= set(registry)
    assert all(registry[m].family == "classical" and not registry[m].uses_gpu for m in CLASSICAL)


# plumbing (shape, finiteness, repeatability), not fit quality: dictionary learning at 10 of its 1,000 iterations
# (20 s less on 2 cores)
SHORT = {"dictionarylearning": {"max_iter": 10}}


@pytest.mark.parametrize("method", CLASSICAL)
def test_latent_shape_finite_and_deterministic(prep, method, tmp_path):
    kwargs = dict(dataset="pancreas", seed=3, outdir=tmp_path, global_params={"latent_dim": 6},
                  overrides=SHORT.get(method))
    first = fit_method(method, prep, **kwargs)
    again = fit_method(method, prep, **kwargs)
    assert first["X_latent"].shape == (400, 6) and np.isfinite(first["X_latent"]).all()
    np.testing.assert_array_equal(first["X_latent"], again["X_latent"])


def test_pca_matches_an_svd_of_the_centred_input(prep, tmp_path):
    latent = fit_method("pca", prep, dataset="pancreas", seed=0, outdir=tmp_path)["X_latent"]
    centred = prep.X - prep.X.mean(0)
    u, s, _ = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    reference = u[:, :10] * s[:10]
    for j in range(10):  # components are defined up to sign
        assert min(np.abs(latent[:, j] - reference[:, j]).max(), np.abs(latent[:, j] + reference[:, j]).max()) < 1e-2


def test_nmf_uses_non_negative_input(prep, tmp_path):
    latent = fit_method("nmf", prep, dataset="pancreas", seed=0, outdir=tmp_path)["X_latent"]
    assert (latent >= 0).all() and latent.max() > 0


def test_kernelpca_fits_a_subsample_when_asked(prep, tmp_path):
    out = fit_method("kernelpca", prep, dataset="pancreas", seed=0, outdir=tmp_path,
                     overrides={"max_fit_cells": 150})
    assert out["X_latent"].shape == (400, 10) and np.isfinite(out["X_latent"]).all()


def test_unknown_parameter_and_method_are_errors(prep, tmp_path):
    with pytest.raises(InputError, match="unknown parameter 'n_comp'"):
        get_method("pca").resolve_params({"n_comp": 3})
    with pytest.raises(InputError, match="method 'tsne9'"):
        fit_method("tsne9", prep, dataset="pancreas", seed=0, outdir=tmp_path)


def test_pinned_parameters_ignore_global_settings():
    method = get_method("pca")
    assert method.resolve_params(global_params={"latent_dim": 4})["latent_dim"] == 4
    pinned = type(method)(**{**method.__dict__, "pinned": ("latent_dim",)})
    assert pinned.resolve_params(global_params={"latent_dim": 4})["latent_dim"] == 10
    assert pinned.resolve_params({"latent_dim": 4})["latent_dim"] == 4
