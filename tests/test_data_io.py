"""Readers, validation and atomic h5ad I/O of livaebench.data.io on the real shipped datasets.

The 10x, 10x-.h5 and dense files are written by the tests from real subsets of resources/*.h5ad (their
layout is constructed, the counts are real); every read is compared with the source matrix.
"""
from __future__ import annotations

import gzip
import logging
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from livaebench.data.io import (decide_orientation, read_counts, read_h5ad_checked, validate_counts,
                                write_h5ad_atomic)

RES = Path(__file__).resolve().parents[1] / "resources"


def dense(m) -> np.ndarray:
    return m.toarray() if sp.issparse(m) else np.asarray(m)


def write_10x(directory: Path, counts, barcodes, ids, names=None, *, gz=True, v3=True) -> None:
    directory.mkdir(parents=True)
    op = (lambda p: gzip.open(p, "wt")) if gz else (lambda p: open(p, "wt"))
    suffix = ".gz" if gz else ""
    with op(directory / f"barcodes.tsv{suffix}") as fh:
        fh.write("".join(f"{b}\n" for b in barcodes))
    feat_name = "features.tsv" if v3 else "genes.tsv"
    with op(directory / f"{feat_name}{suffix}") as fh:
        for i, g in enumerate(ids):
            cols = [g, names[i] if names is not None else g] + (["Gene Expression"] if v3 else [])
            fh.write("\t".join(cols) + "\n")
    mode = (lambda p: gzip.open(p, "wb")) if gz else (lambda p: open(p, "wb"))
    with mode(directory / f"matrix.mtx{suffix}") as fh:
        scipy.io.mmwrite(fh, sp.coo_matrix(sp.csr_matrix(counts).T), field="integer")


# --------------------------------------------------------------------------------------- h5ad
@pytest.mark.parametrize("name", ["pancreas", "cellbench", "atac_bmmc"])
def test_h5ad_real_data_reads_as_int32_csr(name):
    path = RES / f"{name}.h5ad"
    adata = validate_counts(read_counts(path, dataset=name), dataset=name, source=path)
    with h5py.File(path) as f:  # independent read of the stored CSR arrays
        g = f["X"]
        ref = sp.csr_matrix((g["data"][:], g["indices"][:], g["indptr"][:]), shape=tuple(g.attrs["shape"]))
    assert adata.X.format == "csr" and adata.X.dtype == np.int32
    assert adata.shape == ref.shape
    assert (adata.X != ref).nnz == 0
    assert not adata.layers  # spliced/unspliced of pancreas are not counts of .X and are dropped
    assert adata.obs_names.is_unique and adata.var_names.is_unique


def test_h5ad_prefers_counts_layer(pancreas, tmp_path):
    sub = pancreas[:50].copy()
    raw = sub.X.copy()
    sub.layers["counts"] = raw
    sub.X = sp.csr_matrix(np.log1p(raw.astype(np.float32)))  # a normalized .X, as many published files have
    sub.write_h5ad(tmp_path / "x.h5ad")
    got = validate_counts(read_counts(tmp_path / "x.h5ad", dataset="p"), dataset="p", source="x.h5ad")
    assert (got.X != raw).nnz == 0


# ---------------------------------------------------------------------------------------- 10x
@pytest.mark.parametrize("gz,v3", [(True, True), (False, False)], ids=["v3-gz", "v2-plain"])
def test_10x_directory(cellbench, tmp_path, gz, v3):
    sub = cellbench[:80, :400]
    names = [f"SYM{i % 390}" for i in range(400)]  # duplicate symbols, as real 10x feature files have
    write_10x(tmp_path / "m", sub.X, sub.obs_names, sub.var_names, names, gz=gz, v3=v3)
    got = validate_counts(read_counts(tmp_path / "m", dataset="cb"), dataset="cb", source="m")
    assert got.shape == (80, 400)
    np.testing.assert_array_equal(dense(got.X), dense(sub.X))
    assert list(got.obs_names) == list(sub.obs_names)
    assert list(got.var["gene_ids"]) == list(sub.var_names)
    assert got.var_names.is_unique and got.var_names[395] == "SYM5-1"
    # a path to matrix.mtx itself means its directory
    mtx = next((tmp_path / "m").glob("matrix.mtx*"))
    assert read_counts(mtx, dataset="cb").shape == (80, 400)


def test_10x_h5(pancreas, tmp_path):
    sub = pancreas[100:160]
    X = sp.csc_matrix(sub.X.T)  # 10x .h5 stores features x barcodes in CSC
    path = tmp_path / "filtered_feature_bc_matrix.h5"
    with h5py.File(path, "w") as f:
        m = f.create_group("matrix")
        m["data"], m["indices"], m["indptr"] = X.data.astype(np.int32), X.indices, X.indptr
        m["shape"] = np.array(X.shape, dtype=np.int32)
        m["barcodes"] = np.array(sub.obs_names, dtype="S")
        ft = m.create_group("features")
        ft["id"] = np.array([f"ENSMUSG{i:011d}" for i in range(sub.n_vars)], dtype="S")
        ft["name"] = np.array(sub.var_names, dtype="S")
        ft["feature_type"] = np.array(["Gene Expression"] * sub.n_vars, dtype="S")
        ft["genome"] = np.array(["mm10"] * sub.n_vars, dtype="S")
    got = validate_counts(read_counts(path, dataset="p"), dataset="p", source=path)
    np.testing.assert_array_equal(dense(got.X), dense(sub.X))
    assert list(got.var_names) == list(sub.var_names)
    assert list(got.obs_names) == list(sub.obs_names)


# -------------------------------------------------------------------------------------- dense
def test_dense_csv_gz_genes_by_cells_auto(pancreas, tmp_path, caplog):
    sub = pancreas[:60]
    df = pd.DataFrame(dense(sub.X).T, index=sub.var_names, columns=sub.obs_names)
    path = tmp_path / "counts.csv.gz"
    df.to_csv(path)
    with caplog.at_level(logging.INFO, logger="livaebench.data"):
        got = validate_counts(read_counts(path, dataset="p"), dataset="p", source=path)
    assert "genes_by_cells" in caplog.text and "barcodes" in caplog.text
    np.testing.assert_array_equal(dense(got.X), dense(sub.X))
    assert list(got.obs_names) == list(sub.obs_names)


def test_dense_tsv_cells_by_genes_barcodes_win_over_shape(pancreas, tmp_path):
    # 2000 genes as columns, 3000 cells as rows would make "more rows = genes" wrong; barcodes decide.
    sub = pancreas[:300, :100]
    df = pd.DataFrame(dense(sub.X), index=sub.obs_names, columns=sub.var_names)
    path = tmp_path / "counts.tsv"
    df.to_csv(path, sep="\t")
    got = read_counts(path, dataset="p")
    assert got.shape == (300, 100)
    np.testing.assert_array_equal(dense(got.X), dense(sub.X))


def test_dense_ensembl_rows_and_annotation_column(cellbench, tmp_path):
    # 40 genes x 100 cells: the shape rule alone would call genes the columns; Ensembl ids decide.
    sub = cellbench[:100, :40]
    df = pd.DataFrame(dense(sub.X).T, index=sub.var_names, columns=sub.obs_names)
    df.insert(0, "symbol", [f"G{i}" for i in range(40)])  # a second, non-numeric label column
    path = tmp_path / "counts.txt.gz"
    df.to_csv(path, sep="\t")
    got = read_counts(path, dataset="cb")
    assert got.shape == (100, 40)
    assert list(got.var["symbol"]) == [f"G{i}" for i in range(40)]
    np.testing.assert_array_equal(dense(got.X), dense(sub.X))


def test_dense_explicit_orientation_overrides(cellbench, tmp_path):
    sub = cellbench[:100, :40]
    df = pd.DataFrame(dense(sub.X), index=sub.obs_names, columns=sub.var_names)
    path = tmp_path / "c.csv"
    df.to_csv(path)
    assert read_counts(path, dataset="cb", orientation="cells_by_genes").shape == (100, 40)
    assert read_counts(path, dataset="cb", orientation="genes_by_cells").shape == (40, 100)


def test_orientation_rule_by_shape():
    rows = pd.Index([f"gene{i}" for i in range(50)])
    cols = pd.Index([f"cell{i}" for i in range(20)])
    assert decide_orientation(rows, cols)[0] == "genes_by_cells"
    assert decide_orientation(cols, rows)[0] == "cells_by_genes"


# --------------------------------------------------------------------------------- validation
@pytest.mark.filterwarnings("ignore:Observation names are not unique")
def test_validate_converts_float_and_makes_names_unique(pancreas):
    sub = pancreas[:30, :50]
    X = dense(sub.X).astype(np.float64)  # integral floats, dense: how CSV readers hand counts over
    a = ad.AnnData(X=X, obs=pd.DataFrame(index=["c"] * 30), var=pd.DataFrame(index=list(sub.var_names)))
    got = validate_counts(a, dataset="p", source="mem")
    assert sp.isspmatrix_csr(got.X) and got.X.dtype == np.int32
    np.testing.assert_array_equal(dense(got.X), dense(sub.X))
    assert got.obs_names.is_unique and got.obs_names[1] == "c-1"


def test_validate_uses_int64_for_huge_counts():
    X = sp.csr_matrix(np.array([[1, 3_000_000_000], [2, 0]], dtype=np.float64))
    got = validate_counts(ad.AnnData(X=X), dataset="d", source="mem")
    assert got.X.dtype == np.int64 and got.X[0, 1] == 3_000_000_000


# ------------------------------------------------------------------------------------ h5ad I/O
def test_write_h5ad_atomic_gzip_and_roundtrip(pancreas, tmp_path):
    out = tmp_path / "results" / "data" / "p" / "counts.h5ad"
    sub = pancreas[:200].copy()
    write_h5ad_atomic(sub, out)
    with h5py.File(out) as f:
        assert f["X"]["data"].compression == "gzip"
    back = read_h5ad_checked(out, dataset="p")
    assert (back.X != sub.X).nnz == 0 and list(back.obs["clusters"]) == list(sub.obs["clusters"])
    assert sorted(p.name for p in out.parent.iterdir()) == ["counts.h5ad"]


def test_write_h5ad_atomic_failure_keeps_old_file(pancreas, tmp_path):
    out = tmp_path / "counts.h5ad"
    write_h5ad_atomic(pancreas[:10].copy(), out)
    before = out.read_bytes()
    bad = pancreas[:20].copy()
    bad.uns["unwritable"] = object()  # h5ad cannot store arbitrary objects: the write fails midway
    with pytest.raises(Exception):
        write_h5ad_atomic(bad, out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counts.h5ad"]
