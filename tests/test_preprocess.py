"""Preprocessing (docs/methods.md §1) on the real shipped datasets, checked against independent
computations: scanpy's own normalize_total/log1p/scale for RNA, a dense numpy TF-IDF for ATAC."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp

from livaebench.data.io import read_h5ad_checked, write_h5ad_atomic
from livaebench.data.preprocess import preprocess

RES = Path(__file__).resolve().parents[1] / "resources"


@pytest.fixture(scope="module")
def pancreas_pp(pancreas):
    messages: list[str] = []
    out = preprocess(pancreas, dataset="pancreas", modality="rna", label_key="clusters", log=messages.append)
    return out, messages


def qc_reference(adata, min_genes, min_cells):
    """QC with scanpy's own filters (cells first, then genes), as an independent reference."""
    ref = adata.copy()
    sc.pp.filter_cells(ref, min_genes=min_genes)
    sc.pp.filter_genes(ref, min_cells=min_cells)
    return ref


def check_contract(out, dataset, modality, label_key, batch_key=""):
    assert isinstance(out.X, np.ndarray) and out.X.dtype == np.float32
    for layer in ("counts", "lognorm"):
        assert sp.isspmatrix_csr(out.layers[layer]) and out.layers[layer].dtype == np.float32
    assert out.layers["lognorm"].min() >= 0
    assert out.uns["livaebench"] == {"dataset": dataset, "modality": modality, "label_key": label_key,
                                     "batch_key": batch_key}
    for key in (label_key, batch_key):
        if key:
            assert key in out.obs
    assert np.isfinite(out.X).all()


# ------------------------------------------------------------------------------------------- RNA
def test_rna_pancreas_defaults_capped_and_logged(pancreas, pancreas_pp):
    out, messages = pancreas_pp
    ref = qc_reference(pancreas, 200, 3)
    check_contract(out, "pancreas", "rna", "clusters")
    # 5000 genes requested, fewer pass QC: all of them are kept and the cap is logged
    assert out.n_vars == ref.n_vars < 5000
    assert any("5000 features requested" in m and str(ref.n_vars) in m for m in messages)
    assert out.n_obs == ref.n_obs
    assert set(out.var_names) == set(ref.var_names)
    # raw counts of the selected genes, untouched
    raw = pancreas[out.obs_names, out.var_names].X
    assert (out.layers["counts"] != raw).nnz == 0


def test_rna_normalization_matches_scanpy(pancreas, pancreas_pp):
    out, _ = pancreas_pp
    ref = qc_reference(pancreas, 200, 3)
    ref.X = ref.X.astype(np.float64)
    sc.pp.normalize_total(ref, target_sum=1e4)  # library size over all genes passing QC
    sc.pp.log1p(ref)
    ref = ref[:, out.var_names].copy()
    np.testing.assert_allclose(out.layers["lognorm"].toarray(), ref.X.toarray(), rtol=1e-5, atol=1e-5)
    ref.X = ref.X.toarray()
    sc.pp.scale(ref, max_value=10)  # scanpy clips only the top; clip the bottom the same way
    np.testing.assert_allclose(out.X, np.clip(ref.X, -10, 10), rtol=1e-4, atol=1e-4)
    assert np.abs(out.X).max() <= 10


def test_rna_hvg_is_seurat_v3_on_counts(cellbench):
    out = preprocess(cellbench, dataset="cellbench", modality="rna", label_key="cell_line", batch_key="batch",
                     n_features=700)
    check_contract(out, "cellbench", "rna", "cell_line", "batch")
    assert out.n_vars == 700
    ref = qc_reference(cellbench, 200, 3)
    sc.pp.highly_variable_genes(ref, flavor="seurat_v3", n_top_genes=700)
    assert set(out.var_names) == set(ref.var_names[ref.var["highly_variable"]])
    assert list(out.obs["batch"]) == list(cellbench.obs["batch"])
    assert list(out.obs["cell_line"]) == list(cellbench.obs["cell_line"])


def test_rna_mito_cap_removes_the_right_cells(pancreas):
    mito = np.asarray(pancreas.var_names.str.startswith("mt-"))
    assert mito.sum() >= 3  # the real pancreas genes include mt-Co1, mt-Co3, mt-Nd5, ...
    X = pancreas.X
    pct = 100 * np.asarray(X[:, mito].sum(1)).ravel() / np.asarray(X.sum(1)).ravel()
    cap = float(np.percentile(pct, 90))
    out = preprocess(pancreas, dataset="pancreas", modality="rna", max_mito_pct=cap, n_features=300)
    assert list(out.obs_names) == list(pancreas.obs_names[pct <= cap])
    assert out.uns["preprocess"]["cells_above_mito_pct"] == int((pct > cap).sum()) > 0


def test_input_is_not_modified(pancreas):
    sub = pancreas[:500].copy()
    X0, obs0, var0 = sub.X.copy(), sub.obs.copy(), list(sub.var_names)
    preprocess(sub, dataset="p", modality="rna", n_features=100)
    assert (sub.X != X0).nnz == 0 and sub.X.dtype == X0.dtype
    assert sub.obs.equals(obs0) and list(sub.var_names) == var0


# ------------------------------------------------------------------------------------------ ATAC
def tfidf_reference(counts: np.ndarray) -> np.ndarray:
    """The paper's eq. 21 (docs/methods.md §1.2) written out densely."""
    n = counts.shape[0]
    tf = counts / counts.sum(axis=1, keepdims=True)
    idf = np.log(1 + n / (counts > 0).sum(axis=0))
    return np.log1p(tf * idf * 1e4)


def test_atac_defaults_survive_sparse_data(atac, caplog):
    with caplog.at_level(logging.INFO, logger="livaebench.data"):
        out = preprocess(atac, dataset="atac_bmmc", modality="atac", label_key="cell_type", batch_key="Group")
    check_contract(out, "atac_bmmc", "atac", "cell_type", "Group")
    assert out.n_obs == atac.n_obs  # ~75 peaks per cell: the default threshold must not remove cells
    ref = qc_reference(atac, 1, 3)
    frac = np.asarray((ref.X > 0).mean(axis=0)).ravel()
    eligible = (frac >= 0.01) & (frac <= 0.95)
    assert out.n_vars == eligible.sum() < 10000
    assert "10000 features requested" in caplog.text
    assert set(out.var_names) == set(ref.var_names[eligible])
    full = tfidf_reference(ref.X.toarray().astype(np.float64))  # tf over all peaks passing QC
    idx = ref.var_names.get_indexer(out.var_names)
    np.testing.assert_allclose(out.X, full[:, idx], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.layers["lognorm"].toarray(), out.X)
    assert (out.layers["counts"] != atac[:, out.var_names].X).nnz == 0
    assert set(out.obs["cell_type"]) == set(atac.obs["cell_type"])


def test_atac_selects_top_variance_peaks(atac):
    out = preprocess(atac, dataset="atac_bmmc", modality="atac", n_features=500)
    assert out.n_vars == 500
    ref = qc_reference(atac, 1, 3)
    full = tfidf_reference(ref.X.toarray().astype(np.float64))
    frac = (ref.X.toarray() > 0).mean(axis=0)
    variance = full.var(axis=0)
    chosen = np.isin(ref.var_names, out.var_names)
    eligible = (frac >= 0.01) & (frac <= 0.95)
    assert not (chosen & ~eligible).any()
    assert variance[chosen].min() >= variance[eligible & ~chosen].max()


def test_preprocessed_roundtrip(atac, tmp_path):
    out = preprocess(atac, dataset="atac_bmmc", modality="atac", label_key="cell_type", n_features=200)
    write_h5ad_atomic(out, tmp_path / "preprocessed.h5ad")
    back = read_h5ad_checked(tmp_path / "preprocessed.h5ad", dataset="atac_bmmc")
    check_contract(back, "atac_bmmc", "atac", "cell_type")
    np.testing.assert_array_equal(back.X, out.X)
