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

from livaebench.data.io import (decide_orientation, read_counts, read_h5ad_checked, select_modality_features,
                                validate_counts, write_h5ad_atomic)
from livaebench.errors import InputError

RES = Path(__file__).resolve().parents[1] / "resources"


def dense(m) -> np.ndarray:
    return m.toarray() if sp.issparse(m) else np.asarray(m)


def write_10x(directory: Path, counts, barcodes, ids, names=None, *, gz=True, v3=True, types=None) -> None:
    directory.mkdir(parents=True)
    op = (lambda p: gzip.open(p, "wt")) if gz else (lambda p: open(p, "wt"))
    suffix = ".gz" if gz else ""
    with op(directory / f"barcodes.tsv{suffix}") as fh:
        fh.write("".join(f"{b}\n" for b in barcodes))
    feat_name = "features.tsv" if v3 else "genes.tsv"
    with op(directory / f"{feat_name}{suffix}") as fh:
        for i, g in enumerate(ids):
            cols = [g, names[i] if names is not None else g] + ([types[i] if types else "Gene Expression"] if v3 else [])
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


def write_10x_h5(path: Path, sub, types=None) -> Path:
    X = sp.csc_matrix(sub.X.T)  # 10x .h5 stores features x barcodes in CSC
    with h5py.File(path, "w") as f:
        m = f.create_group("matrix")
        m["data"], m["indices"], m["indptr"] = X.data.astype(np.int32), X.indices, X.indptr
        m["shape"] = np.array(X.shape, dtype=np.int32)
        m["barcodes"] = np.array(sub.obs_names, dtype="S")
        ft = m.create_group("features")
        ft["id"] = np.array([f"ENSMUSG{i:011d}" for i in range(sub.n_vars)], dtype="S")
        ft["name"] = np.array(sub.var_names, dtype="S")
        ft["feature_type"] = np.array(types or ["Gene Expression"] * sub.n_vars, dtype="S")
        ft["genome"] = np.array(["mm10"] * sub.n_vars, dtype="S")
    return path


def test_10x_h5(pancreas, tmp_path):
    sub = pancreas[100:160]
    path = write_10x_h5(tmp_path / "filtered_feature_bc_matrix.h5", sub)
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



# ------------------------------------------------------------------ non-gene features in 10x files
TYPES = ["Gene Expression"] * 380 + ["Antibody Capture"] * 15 + ["CRISPR Guide Capture"] * 5


def test_10x_feature_types_are_kept_and_selected_by_modality(cellbench, tmp_path, caplog):
    sub = cellbench[:80, :400]
    write_10x(tmp_path / "m", sub.X, sub.obs_names, sub.var_names, types=TYPES)
    got = validate_counts(read_counts(tmp_path / "m", dataset="cb"), dataset="cb", source="m")
    assert got.n_vars == 400 and list(got.var["feature_types"]) == TYPES  # the reader keeps every row
    messages: list[str] = []
    rna = select_modality_features(got, dataset="cb", modality="rna", say=messages.append)
    assert list(rna.var_names) == list(sub.var_names[:380])
    np.testing.assert_array_equal(dense(rna.X), dense(sub.X[:, :380]))
    assert messages == ["cb: kept 380 'Gene Expression' features for rna; dropped 15 'Antibody Capture', "
                        "5 'CRISPR Guide Capture'"]
    with pytest.raises(InputError) as err:
        select_modality_features(got, dataset="cb", modality="atac")
    assert "no 'Peaks' features for modality atac" in str(err.value) and "Fix: set modality to rna" in str(err.value)


def test_10x_h5_keeps_peaks_of_a_multiome_file(atac, pancreas, tmp_path):
    """scanpy's read_10x_h5 drops everything but Gene Expression by default: ATAC peaks would vanish."""
    genes, peaks = pancreas[:50, :30], atac[:50, :70]
    both = ad.concat([ad.AnnData(genes.X, obs=pd.DataFrame(index=[f"c{i}" for i in range(50)]), var=genes.var[[]]),
                      ad.AnnData(peaks.X, obs=pd.DataFrame(index=[f"c{i}" for i in range(50)]),
                                 var=pd.DataFrame(index=[f"chr1:{i}-{i + 500}" for i in range(70)]))], axis=1)
    path = write_10x_h5(tmp_path / "multiome.h5", both, types=["Gene Expression"] * 30 + ["Peaks"] * 70)
    got = validate_counts(read_counts(path, dataset="mo"), dataset="mo", source=path)
    assert got.n_vars == 100
    atac_part = select_modality_features(got, dataset="mo", modality="atac", say=lambda m: None)
    assert atac_part.n_vars == 70 and atac_part.var_names[0] == "chr1:0-500"
    np.testing.assert_array_equal(dense(atac_part.X), dense(peaks.X))


def test_features_file_names_are_read_as_written(cellbench, tmp_path):
    sub = cellbench[:20, :5]
    write_10x(tmp_path / "m", sub.X, sub.obs_names, ["NA", "None", "nan", "G#1", "G2"], v3=False)
    got = read_counts(tmp_path / "m", dataset="cb")
    assert list(got.var_names) == ["NA", "None", "nan", "G#1", "G2"]


# ---------------------------------------------------------------- orientation by source format
def test_orientation_is_honoured_for_h5ad_and_refused_for_10x(pancreas, tmp_path):
    sub = pancreas[:40, :60].copy()
    sub.T.copy().write_h5ad(tmp_path / "genes_rows.h5ad")  # an h5ad written genes x cells
    got = read_counts(tmp_path / "genes_rows.h5ad", dataset="p", orientation="genes_by_cells")
    assert got.shape == (40, 60) and list(got.obs_names) == list(sub.obs_names)
    np.testing.assert_array_equal(dense(got.X), dense(sub.X))
    assert read_counts(tmp_path / "genes_rows.h5ad", dataset="p", orientation="cells_by_genes").shape == (60, 40)
    write_10x(tmp_path / "m", sub.X, sub.obs_names, sub.var_names)
    write_10x_h5(tmp_path / "x.h5", sub)
    for path, kind in [(tmp_path / "m", "10x directory"), (tmp_path / "x.h5", "10x .h5 file")]:
        for orientation in ("genes_by_cells", "cells_by_genes"):
            with pytest.raises(InputError) as err:
                read_counts(path, dataset="p", orientation=orientation)
            assert f"orientation '{orientation}' does not apply to a {kind}" in str(err.value)
            assert "Fix: leave orientation empty" in str(err.value)


# -------------------------------------------------------------- dense tables as users have them
def genes_by_cells(sub) -> pd.DataFrame:
    return pd.DataFrame(dense(sub.X).T.astype(np.int64), index=sub.var_names, columns=sub.obs_names)


def check_same(got, sub):
    assert got.shape == sub.shape
    np.testing.assert_array_equal(dense(got.X), dense(sub.X))


def test_dense_annotation_columns_on_both_sides(pancreas, tmp_path, caplog):
    sub = pancreas[:30, :300]
    df = genes_by_cells(sub)
    df.insert(0, "gene_symbol", [g.upper() for g in df.index])
    df["description"] = [f"{g}, a gene; NA" for g in df.index]  # text with commas and quotes after the counts
    df.to_csv(tmp_path / "annot.csv")
    with caplog.at_level(logging.INFO, logger="livaebench.data"):
        got = validate_counts(read_counts(tmp_path / "annot.csv", dataset="p"), dataset="p", source="annot.csv")
    check_same(got, sub)
    assert list(got.var.columns) == ["gene_symbol", "description"]
    assert got.var["description"].iloc[0] == f"{sub.var_names[0]}, a gene; NA"
    assert "'gene_symbol', 'description' kept as row annotations" in caplog.text


def test_dense_cells_by_genes_with_string_columns_and_missing_labels(pancreas, tmp_path):
    sub = pancreas[:50, :120]
    df = pd.DataFrame(dense(sub.X).astype(np.int64), index=sub.obs_names, columns=sub.var_names)
    labels = sub.obs["clusters"].astype(str).to_numpy().copy().astype(object)
    labels[:4] = None  # four cells without a label
    df.insert(0, "batch", "E15.5")
    df["cell_type"] = labels
    df.to_csv(tmp_path / "cells.tsv", sep="\t")
    got = read_counts(tmp_path / "cells.tsv", dataset="p", orientation="cells_by_genes")
    got = validate_counts(got, dataset="p", source="cells.tsv", label_key="cell_type", batch_key="batch")
    check_same(got, sub)
    assert got.obs["cell_type"].isna().sum() == 4  # missing stays missing: NaN, not "nan"
    assert "nan" not in set(got.obs["cell_type"].dropna()) and list(got.obs["cell_type"][4:]) == list(labels[4:])
    assert set(got.obs["batch"]) == {"E15.5"}


@pytest.mark.parametrize("header, index", [(False, True), (True, False), (False, False)],
                         ids=["no-header", "no-row-labels", "neither"])
def test_dense_without_header_or_row_labels(pancreas, tmp_path, caplog, header, index):
    sub = pancreas[:30, :200]
    df = genes_by_cells(sub)
    df.to_csv(tmp_path / "t.csv", header=header, index=index)
    with caplog.at_level(logging.INFO, logger="livaebench.data"):
        got = read_counts(tmp_path / "t.csv", dataset="p", orientation="genes_by_cells")
    check_same(got, sub)
    assert list(got.obs_names[:2]) == (list(sub.obs_names[:2]) if header else ["column_1", "column_2"])
    assert list(got.var_names[:2]) == (list(sub.var_names[:2]) if index else ["row_1", "row_2"])
    assert ("read as data (no header)" in caplog.text) != header
    assert ("the rows have no labels" in caplog.text) != index


def test_dense_r_style_header_and_numeric_gene_ids(pancreas, tmp_path):
    """R's write.table: quoted names, space-separated, a header one field shorter (no corner cell);
    the row labels are Entrez-like numbers that must stay labels, not become a column of counts."""
    sub = pancreas[:25, :150]
    ids = [str(20_000 + 7 * i) for i in range(150)]
    lines = [" ".join(f'"{c}"' for c in sub.obs_names)]
    lines += [" ".join([g, *map(str, row)]) for g, row in zip(ids, dense(sub.X).T.astype(int))]
    (tmp_path / "r.txt").write_text("\n".join(lines) + "\n")
    got = read_counts(tmp_path / "r.txt", dataset="p")
    check_same(got, sub)
    assert list(got.var_names) == ids and list(got.obs_names) == list(sub.obs_names)


def test_dense_header_of_column_numbers(pancreas, tmp_path):
    sub = pancreas[:20, :100]
    df = genes_by_cells(sub)
    df.columns = range(1, 21)  # an unnamed matrix written with 1..n as its column names
    df.to_csv(tmp_path / "n.csv")
    got = read_counts(tmp_path / "n.csv", dataset="p", orientation="genes_by_cells")
    check_same(got, sub)
    assert list(got.obs_names[:3]) == ["1", "2", "3"]


@pytest.mark.parametrize("line, change, fragment", [
    (5, lambda f: f.__setitem__(3, "x"), "column '{cell3}' holds non-numeric values (e.g. 'x') among numbers"),
    (5, lambda f: f.append("9"), "has 32 fields on data line 6 but 31 on line 2"),
    (1500, lambda f: f.__setitem__(3, "oops"), "holds non-numeric values (e.g. 'oops')"),
    (1500, lambda f: f.append("9"), "cannot be read as a table (ParserError"),
])
def test_dense_bad_lines_are_named(pancreas, tmp_path, line, change, fragment):
    lines = genes_by_cells(pancreas[:30]).to_csv().splitlines()
    fields = lines[line].split(",")
    change(fields)
    lines[line] = ",".join(fields)
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        read_counts(tmp_path / "bad.csv", dataset="p")
    fragment = fragment.format(cell3=pancreas.obs_names[2])  # field 3 of a line: the third cell's count
    assert fragment in str(err.value) and "Fix: " in str(err.value), str(err.value)


# ----------------------------------------------------------------------- label / batch columns
def test_label_column_partly_missing_stays_missing_and_all_missing_is_an_error(pancreas):
    sub = pancreas[:40].copy()
    sub.obs.loc[sub.obs_names[:5], "clusters"] = np.nan
    got = validate_counts(sub.copy(), dataset="p", source="mem", label_key="clusters")
    assert got.obs["clusters"].isna().sum() == 5
    sub.obs["clusters"] = np.nan
    with pytest.raises(InputError) as err:
        validate_counts(sub, dataset="p", source="mem", label_key="clusters")
    assert "label column 'clusters' has no values (all 40 cells missing)" in str(err.value)
