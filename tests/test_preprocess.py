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
from livaebench.data.preprocess import lognormalize, preprocess, zscore_clip, zscore_clip_sparse
from livaebench.errors import InputError

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
                                     "batch_key": batch_key, "label_note": ""}
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
    assert back.uns["preprocess"]["fraction_cells_removed"] == out.uns["preprocess"]["fraction_cells_removed"]
    assert len(back.uns["preprocess"]["warnings"]) == 0


# --------------------------------------------------------------------------- data too small for a step
def _isolated_child(queue, target, args):
    try:
        queue.put(("ok", target(*args)))
    except InputError as err:
        queue.put(("InputError", str(err)))
    except Exception as err:  # noqa: BLE001 - reported to the parent as a failure
        queue.put(("crash", f"{type(err).__name__}: {err}"))


def _run_isolated(target, *args):
    """Run ``target(*args)`` in a fresh child process: a native crash (segfault) shows as a signal, not a dead
    pytest. Spawned, not forked: a fork of this process (JAX, numba and BLAS threads running) could deadlock."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_isolated_child, args=(queue, target, args))
    proc.start()
    proc.join(300)
    assert proc.exitcode == 0, f"the process died with exit code {proc.exitcode} (negative: killed by a signal)"
    return queue.get(timeout=10)


def _tiny(pancreas, n_cells, n_genes, kw):
    """The n_cells richest cells and n_genes most detected genes of the real pancreas data, preprocessed."""
    richest = np.sort(np.argsort(-np.asarray((pancreas.X > 0).sum(axis=1)).ravel(), kind="stable")[:n_cells])
    sub = pancreas[richest]
    if n_genes:
        detected = np.asarray((sub.X > 0).sum(axis=0)).ravel()
        sub = sub[:, np.sort(np.argsort(-detected, kind="stable")[:n_genes])]
    messages: list[str] = []
    out = preprocess(sub.copy(), dataset="tiny", modality="rna", log=messages.append, **kw)
    return out.shape, messages


@pytest.mark.parametrize("n_cells, n_genes, kw, expect", [
    # seurat_v3's loess crashed the process (segfault) or raised here before; now a logged fallback
    (60, 20, dict(min_genes=1), "fallback"),
    (12, 40, dict(min_genes=1, min_cells=1), "fallback"),
    (12, 0, dict(min_genes=1, min_cells=1, n_features=30), "ok"),  # enough variable genes: seurat_v3 runs
    # too small for the benchmark: one line
    (1, 0, dict(min_genes=1, min_cells=1), "only 1 cells pass QC"),
    (6, 0, dict(min_genes=1, min_cells=1), "only 6 cells pass QC"),
    (60, 3, dict(min_genes=1), "only 3 features pass QC"),
])
def test_tiny_data_never_crashes_a_native_library(pancreas, n_cells, n_genes, kw, expect):
    # In a child process where a native library could crash; in-process where seurat_v3 runs normally.
    status, value = ("ok", _tiny(pancreas, n_cells, n_genes, kw)) if expect == "ok" else \
        _run_isolated(_tiny, pancreas, n_cells, n_genes, kw)
    if expect in ("ok", "fallback"):
        assert status == "ok", value
        shape, messages = value
        assert shape[0] == n_cells
        assert (expect == "fallback") == any(m.startswith("WARNING: tiny: seurat_v3 highly variable genes not used") for m in messages), messages
    else:
        assert status == "InputError" and expect in value and "Fix: " in value, (status, value)


def test_hvg_fallback_ranks_by_lognormalized_variance(pancreas):
    sub = pancreas[:60]
    detected = np.asarray((sub.X > 0).sum(axis=0)).ravel()
    sub = sub[:, np.sort(np.argsort(-detected, kind="stable")[:40])].copy()  # 40 genes < LOESS_MIN_GENES
    out = preprocess(sub, dataset="p", modality="rna", min_genes=1, n_features=15, log=lambda m: None)
    assert out.n_vars == 15
    ref = sub.copy()
    sc.pp.filter_cells(ref, min_genes=1)
    sc.pp.filter_genes(ref, min_cells=3)
    sc.pp.normalize_total(ref, target_sum=1e4)
    sc.pp.log1p(ref)
    variance = np.asarray(ref.X.toarray().var(axis=0))  # population variance of the log-normalized values
    top = set(ref.var_names[np.argsort(-variance, kind="stable")[:15]])
    assert set(out.var_names) == top
    assert any("seurat_v3 highly variable genes not used" in w for w in out.uns["preprocess"]["warnings"])


def test_hvg_fallback_when_the_loess_fit_fails(pancreas, monkeypatch):
    def failing(*args, **kwargs):
        raise ValueError("b'svddc failed in l2fit.'")

    monkeypatch.setattr(sc.pp, "highly_variable_genes", failing)
    messages: list[str] = []
    out = preprocess(pancreas[:300].copy(), dataset="p", modality="rna", n_features=100, log=messages.append)
    assert out.n_vars == 100
    assert any("its loess fit failed (b'svddc failed in l2fit.')" in m for m in messages), messages


def test_scaling_one_cell_is_finite():
    X = np.array([[1.0, 5.0, 0.0]])
    np.testing.assert_array_equal(zscore_clip(X), np.zeros((1, 3)))


# --------------------------------------------------------------------------------- loud QC
def test_targeted_panel_qc_warns_with_the_fraction_and_records_it(pancreas):
    sub = pancreas[:300]
    detected = np.asarray((sub.X > 0).sum(axis=0)).ravel()
    panel = sub[:, np.sort(np.argsort(-detected, kind="stable")[:210])].copy()  # a 210-gene panel
    kept = int((np.asarray((panel.X > 0).sum(axis=1)).ravel() >= 200).sum())
    assert 10 <= kept < 150
    messages: list[str] = []
    out = preprocess(panel, dataset="panel", modality="rna", label_key="clusters", log=messages.append)
    removed = 1 - out.n_obs / 300
    warning = [m for m in messages if m.startswith("WARNING: panel: QC removed")]
    assert len(warning) == 1 and f"QC removed {removed:.0%} of the cells ({300 - out.n_obs} of 300" in warning[0]
    assert "set min_genes for this dataset in the registry" in warning[0]
    assert out.uns["preprocess"]["fraction_cells_removed"] == pytest.approx(removed)
    assert out.uns["preprocess"]["warnings"] == [warning[0].removeprefix("WARNING: ")]
    # the registry override (min_genes per dataset) keeps the cells, without a warning
    quiet = preprocess(panel, dataset="panel", modality="rna", min_genes=20, log=lambda m: None)
    assert quiet.n_obs == 300 and quiet.uns["preprocess"]["warnings"] == []


def test_qc_warning_goes_to_the_logger_as_warning(pancreas, caplog):
    logger = logging.getLogger("livaebench.test_qc")
    with caplog.at_level(logging.INFO, logger="livaebench.test_qc"):
        preprocess(pancreas[:300].copy(), dataset="p", modality="rna", min_genes=700, n_features=100, log=logger)
    records = [r for r in caplog.records if "QC removed" in r.getMessage()]
    assert len(records) == 1 and records[0].levelno == logging.WARNING


def test_one_class_and_one_batch_are_warned(cellbench):
    sub = cellbench[cellbench.obs["batch"] == cellbench.obs["batch"].iloc[0]]
    sub = sub[sub.obs["cell_line"] == sub.obs["cell_line"].iloc[0]].copy()
    out = preprocess(sub, dataset="cb", modality="rna", label_key="cell_line", batch_key="batch", n_features=200,
                     log=lambda m: None)
    warnings = out.uns["preprocess"]["warnings"]
    assert any("label column 'cell_line' has 1 distinct value" in w for w in warnings), warnings
    assert any("batch column 'batch' has 1 distinct value" in w for w in warnings), warnings


def test_partly_missing_labels_stay_missing(pancreas):
    sub = pancreas[:300].copy()
    sub.obs.loc[sub.obs_names[:10], "clusters"] = np.nan
    out = preprocess(sub, dataset="p", modality="rna", label_key="clusters", n_features=100, min_genes=50)
    assert out.obs["clusters"].isna().sum() == 10 and "nan" not in set(out.obs["clusters"].dropna().astype(str))


def test_10x_antibody_rows_are_dropped_before_qc(pancreas):
    sub = pancreas[:300].copy()
    sub.var["feature_types"] = ["Antibody Capture"] * 20 + ["Gene Expression"] * (sub.n_vars - 20)
    messages: list[str] = []
    out = preprocess(sub, dataset="p", modality="rna", n_features=5000, log=messages.append)
    assert not out.var_names.isin(sub.var_names[:20]).any()
    assert out.uns["preprocess"]["features_of_other_types"] == 20
    assert "p: kept 1980 'Gene Expression' features for rna; dropped 20 'Antibody Capture'" in messages


@pytest.mark.parametrize("block_bytes", [50_000, 2**20, 2**30])
def test_blockwise_zscore_is_bitwise_the_dense_one(pancreas, block_bytes):
    """The memory-bounded z-score (column blocks) gives exactly the numbers of the whole-matrix one."""
    lognorm = lognormalize(sp.csr_matrix(pancreas.X)[:, :700])
    dense = zscore_clip(lognorm.toarray()).astype(np.float32)
    blocks = zscore_clip_sparse(lognorm, block_bytes=block_bytes)
    assert blocks.dtype == np.float32 and np.array_equal(dense, blocks)
