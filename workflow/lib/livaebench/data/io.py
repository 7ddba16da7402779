"""Reading, checking and writing raw-count matrices.

Every reader returns an AnnData with cells as rows and the counts as a CSR matrix in ``.X``;
``validate_counts`` then turns "looks like a count matrix" into "is one" (non-negative integers,
named columns present, unique names) so that nothing downstream has to re-check. All problems with a
user's file surface as one-line :class:`~livaebench.errors.InputError` messages naming the dataset, the
file and the fix.
"""
from __future__ import annotations

import gzip
import logging
import os
import re
import warnings
import zlib
from pathlib import Path
from typing import Iterable

import anndata as ad
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from ..errors import InputError

log = logging.getLogger("livaebench.data")

ORIENTATIONS = ("auto", "genes_by_cells", "cells_by_genes")

# Failures that a truncated or corrupted (gzip) file produces while it is being read.
CORRUPT_ERRORS = (OSError, EOFError, zlib.error, ValueError, UnicodeDecodeError)
_LOCAL_FIX = "replace it with an intact copy of the file (it is truncated or corrupted)"

# 10x file names: an optional prefix (GEO puts 'GSM123_sample_' in front) and the 10x part name.
_TENX_RE = re.compile(r"^(?P<prefix>.*?)(?P<part>matrix\.mtx|barcodes\.tsv|features\.tsv|genes\.tsv)(?:\.gz)?$")
_DENSE_RE = re.compile(r"\.(csv|tsv|txt)(\.gz)?$", re.IGNORECASE)
# A cell barcode: a run of >= 10 nucleotide letters (10x barcodes are 16, Drop-seq 12).
_BARCODE_RE = re.compile(r"[ACGT]{10,}")
_ENSEMBL_RE = re.compile(r"^ENS[A-Z]*G\d{6,}")


def _what(dataset: str, source) -> str:
    return f"dataset '{dataset}' ({source})"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.name.endswith(".gz") else open(path, "rt")


# ----------------------------------------------------------------------------------------- 10x files
def group_10x_files(paths: Iterable[Path]) -> dict[tuple[Path, str], dict[str, Path]]:
    """Group 10x files by (directory, name prefix) into {"matrix", "barcodes", "features"} triplets.

    ``genes.tsv`` (Cell Ranger 2) counts as the features file. Files that are not 10x parts are ignored.
    """
    groups: dict[tuple[Path, str], dict[str, Path]] = {}
    for p in paths:
        p = Path(p)
        m = _TENX_RE.match(p.name)
        if not m:
            continue
        part = m["part"].split(".")[0]
        part = "features" if part == "genes" else part
        groups.setdefault((p.parent, m["prefix"]), {})[part] = p
    return groups


def read_10x_triplet(matrix: Path, barcodes: Path, features: Path, *, dataset: str,
                     corrupt_fix: str = _LOCAL_FIX) -> ad.AnnData:
    """Read one 10x triplet (Matrix Market features x barcodes, plus the two label files)."""
    matrix, barcodes, features = Path(matrix), Path(barcodes), Path(features)
    current = matrix
    try:
        with (gzip.open(matrix, "rb") if matrix.name.endswith(".gz") else open(matrix, "rb")) as fh:
            mat = scipy.io.mmread(fh)
        current = barcodes
        with _open_text(barcodes) as fh:
            cells = [line.rstrip("\n").split("\t")[0] for line in fh if line.strip()]
        current = features
        feats = pd.read_csv(features, sep="\t", header=None, dtype=str,
                            compression="gzip" if features.name.endswith(".gz") else None)
    except CORRUPT_ERRORS as exc:
        raise InputError(_what(dataset, current), f"cannot be read ({_one_line(exc)})", corrupt_fix) from exc
    mat = sp.csr_matrix(mat).T.tocsr()  # 10x stores features x barcodes
    if mat.shape != (len(cells), len(feats)):
        raise InputError(
            _what(dataset, matrix),
            f"matrix is {mat.shape[1]} features x {mat.shape[0]} barcodes but {features.name} lists "
            f"{len(feats)} features and {barcodes.name} {len(cells)} barcodes",
            "the three 10x files must come from the same sample; replace the mismatched one",
        )
    ids = feats[0].to_numpy()
    names = feats[1].to_numpy() if feats.shape[1] > 1 else ids
    var = pd.DataFrame({"gene_ids": ids}, index=pd.Index(names.astype(str)))
    if feats.shape[1] > 2:
        var["feature_types"] = feats[2].to_numpy()
    with warnings.catch_warnings():  # duplicate gene symbols are common; validate_counts makes them unique
        warnings.filterwarnings("ignore", message=".*names are not unique", category=UserWarning)
        return ad.AnnData(X=mat, obs=pd.DataFrame(index=pd.Index(cells, dtype=str)), var=var)


def _read_10x_dir(path: Path, *, dataset: str) -> ad.AnnData:
    groups = group_10x_files(sorted(path.iterdir()))
    complete = {k: v for k, v in groups.items() if len(v) == 3}
    if len(complete) != 1:
        listing = ", ".join(sorted(p.name for p in path.iterdir())[:20]) or "nothing"
        problem = ("no complete 10x triplet (matrix.mtx[.gz], barcodes.tsv[.gz], features.tsv[.gz] or genes.tsv[.gz])"
                   if not complete else f"{len(complete)} 10x triplets (one per sample?)")
        raise InputError(_what(dataset, path), f"{problem}; found: {listing}",
                         "point the registry path at a directory holding exactly one 10x matrix")
    (trip,) = complete.values()
    return read_10x_triplet(trip["matrix"], trip["barcodes"], trip["features"], dataset=dataset)


def _read_10x_h5(path: Path, *, dataset: str, corrupt_fix: str = _LOCAL_FIX) -> ad.AnnData:
    import h5py
    import scanpy as sc  # imported here: scanpy costs seconds and most callers never read .h5

    if not h5py.is_hdf5(path):
        raise InputError(_what(dataset, path), "is not an HDF5 file (truncated or not a 10x .h5)", corrupt_fix)
    try:
        adata = sc.read_10x_h5(path)
    except Exception as exc:  # scanpy raises bare Exception for unknown layouts
        raise InputError(_what(dataset, path), f"cannot be read as a 10x .h5 file ({_one_line(exc)})",
                         corrupt_fix) from exc
    adata.X = sp.csr_matrix(adata.X)
    return adata


# ------------------------------------------------------------------------------------- dense tables
def _sniff_sep(path: Path) -> str:
    with _open_text(path) as fh:
        first = fh.readline()
    if "\t" in first:
        return "\t"
    if "," in first:
        return ","
    return r"\s+"


def _looks_like(labels: pd.Index, pattern: re.Pattern, how: str = "search") -> float:
    labels = labels.astype(str)
    if len(labels) == 0:
        return 0.0
    sample = labels[:: max(1, len(labels) // 500)]  # a spread-out sample is enough to decide
    fn = pattern.search if how == "search" else pattern.match
    return float(np.mean([bool(fn(x)) for x in sample]))


def decide_orientation(row_labels: pd.Index, col_labels: pd.Index) -> tuple[str, str]:
    """The 'auto' rule for dense tables; returns (orientation, reason).

    1. If one axis' labels look like cell barcodes (>= 90 % contain a run of >= 10 A/C/G/T letters)
       and the other's do not, that axis holds the cells.
    2. Else if one axis' labels look like Ensembl gene ids (ENS...G + digits), that axis holds the genes.
    3. Else the longer axis holds the genes (an expression table has more genes than a sample has cells
       far more often than not); a tie counts as genes in rows.
    """
    rb, cb = _looks_like(row_labels, _BARCODE_RE), _looks_like(col_labels, _BARCODE_RE)
    if rb >= 0.9 and cb < 0.5:
        return "cells_by_genes", "row labels look like cell barcodes"
    if cb >= 0.9 and rb < 0.5:
        return "genes_by_cells", "column labels look like cell barcodes"
    re_, ce = _looks_like(row_labels, _ENSEMBL_RE, "match"), _looks_like(col_labels, _ENSEMBL_RE, "match")
    if re_ >= 0.9 and ce < 0.5:
        return "genes_by_cells", "row labels look like Ensembl gene ids"
    if ce >= 0.9 and re_ < 0.5:
        return "cells_by_genes", "column labels look like Ensembl gene ids"
    if len(row_labels) >= len(col_labels):
        return "genes_by_cells", f"more rows ({len(row_labels)}) than columns ({len(col_labels)})"
    return "cells_by_genes", f"fewer rows ({len(row_labels)}) than columns ({len(col_labels)})"


def _read_dense(path: Path, *, dataset: str, orientation: str, corrupt_fix: str = _LOCAL_FIX) -> ad.AnnData:
    """Dense CSV/TSV (optionally gzipped), read in row chunks straight into a sparse matrix.

    The first column holds the row labels; further leading non-numeric columns (e.g. a gene-symbol
    column beside gene ids) are kept as row annotations.
    """
    chunks, row_labels, annot = [], [], []
    n_annot = None
    try:
        sep = _sniff_sep(path)
        reader = pd.read_csv(path, sep=sep, index_col=0, chunksize=2000, low_memory=False)
        for chunk in reader:
            if n_annot is None:
                numeric = [pd.api.types.is_numeric_dtype(t) for t in chunk.dtypes]
                n_annot = next((i for i, ok in enumerate(numeric) if ok), len(numeric))
                columns = chunk.columns
            values = chunk.iloc[:, n_annot:]
            try:
                block = values.to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as exc:
                bad = next(c for c in values.columns if not pd.api.types.is_numeric_dtype(values[c]))
                raise InputError(_what(dataset, path), f"column '{bad}' holds non-numeric values",
                                 "a dense matrix needs row labels in the first column and counts elsewhere "
                                 "(for GEO: narrow the pattern to the count files)") from exc
            chunks.append(sp.csr_matrix(block))
            row_labels.extend(chunk.index.astype(str))
            if n_annot:
                annot.append(chunk.iloc[:, :n_annot])
    except InputError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise InputError(_what(dataset, path), "is empty (no rows or columns)", "supply a non-empty count matrix") from exc
    except CORRUPT_ERRORS as exc:
        raise InputError(_what(dataset, path), f"cannot be read as a table ({_one_line(exc)})", corrupt_fix) from exc
    if not row_labels:
        raise InputError(_what(dataset, path), "has a header but no data rows", "supply a non-empty count matrix")
    if n_annot == len(columns):
        raise InputError(_what(dataset, path), "has no numeric columns",
                         "a dense matrix needs row labels in the first column and counts elsewhere")
    mat = sp.vstack(chunks).tocsr()
    rows = pd.Index(row_labels)
    cols = pd.Index(columns[n_annot:].astype(str))
    annot_df = pd.concat(annot) if annot else pd.DataFrame(index=rows)
    annot_df.index = rows
    if orientation == "auto":
        orientation, reason = decide_orientation(rows, cols)
        log.info("%s: %s read as %s (%s); set orientation in the registry to override",
                 dataset, path.name, orientation, reason)
    if orientation == "genes_by_cells":
        return ad.AnnData(X=mat.T.tocsr(), obs=pd.DataFrame(index=cols), var=annot_df)
    return ad.AnnData(X=mat, obs=annot_df, var=pd.DataFrame(index=cols))


# ----------------------------------------------------------------------------------------- dispatch
def read_counts(path, *, dataset: str, orientation: str = "auto") -> ad.AnnData:
    """Read a raw-count matrix from a local file into an AnnData (cells x features, CSR ``.X``).

    Formats: ``.h5ad`` (``layers['counts']`` is used when present, else ``.X``); a 10x directory
    (``[prefix]matrix.mtx[.gz]`` + ``barcodes.tsv[.gz]`` + ``features.tsv[.gz]`` or ``genes.tsv[.gz]``;
    a path to the ``matrix.mtx`` file itself means its directory); a 10x ``.h5``; a dense CSV/TSV/TXT
    table, optionally gzipped, whose orientation is ``genes_by_cells``, ``cells_by_genes`` or ``auto``
    (see :func:`decide_orientation`; the decision is logged). The values are not checked here: call
    :func:`validate_counts`.
    """
    path = Path(path)
    if orientation not in ORIENTATIONS:
        raise InputError(_what(dataset, path), f"unknown orientation '{orientation}'",
                         f"use one of {', '.join(ORIENTATIONS)}")
    if not path.exists():
        raise InputError(_what(dataset, path), "file not found",
                         "check the path in the dataset registry (relative paths start at the working directory)")
    if path.is_file() and _TENX_RE.match(path.name) and "matrix" in path.name:
        path = path.parent
    if path.is_dir():
        adata = _read_10x_dir(path, dataset=dataset)
    elif path.suffix == ".h5ad":
        adata = read_h5ad_checked(path, dataset=dataset)
        if "counts" in adata.layers:
            log.info("%s: using layers['counts'] of %s as the raw counts", dataset, path.name)
            adata.X = adata.layers["counts"]
        adata.layers.clear()  # other layers (spliced/unspliced, normalized) are not counts of .X
    elif path.suffix == ".h5":
        adata = _read_10x_h5(path, dataset=dataset)
    elif _DENSE_RE.search(path.name):
        adata = _read_dense(path, dataset=dataset, orientation=orientation)
    else:
        raise InputError(_what(dataset, path), "unsupported file type",
                         "give an .h5ad, a 10x directory, a 10x .h5, or a .csv/.tsv/.txt[.gz] dense matrix")
    if not sp.issparse(adata.X):
        adata.X = sp.csr_matrix(np.asarray(adata.X))
    return adata


# --------------------------------------------------------------------------------------- validation
def validate_counts(adata: ad.AnnData, *, dataset: str, source, label_key: str = "",
                    batch_key: str = "") -> ad.AnnData:
    """Check that ``adata.X`` holds raw counts and the named obs columns exist; normalize the storage.

    Raises InputError for an empty matrix, negative / fractional / NaN / infinite values, or a
    ``label_key`` / ``batch_key`` that is not an obs column. On success ``.X`` is CSR int32 (int64 when a
    value needs it), duplicate obs/var names are made unique (logged), and the same object is returned.
    """
    what = _what(dataset, source)
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(what, f"the count matrix is empty ({adata.n_obs} cells x {adata.n_vars} features)",
                         "check that the file (or the GEO pattern) selects the actual count matrix")
    for role, key in (("label", label_key), ("batch", batch_key)):
        if key and key not in adata.obs.columns:
            cols = ", ".join(map(str, adata.obs.columns[:30])) or "none"
            raise InputError(what, f"{role} column '{key}' is not in the data (obs columns: {cols})",
                             f"set {role}_key in the dataset registry to one of the obs columns, or leave it empty")
    X = adata.X
    X = X.tocsr() if sp.issparse(X) else sp.csr_matrix(np.asarray(X))
    X.sum_duplicates()
    data = X.data
    fix = ("supply raw integer counts (not normalized, log-transformed or scaled values), "
           "e.g. the raw-count layer or the original count file")
    if not np.issubdtype(data.dtype, np.integer):
        finite = np.isfinite(data)
        if not finite.all():
            n_nan = int(np.isnan(data).sum())
            kind = f"{n_nan} NaN" if n_nan else f"{int((~finite).sum())} infinite"
            raise InputError(what, f"the count matrix has {kind} values", fix)
        n_neg = int((data < 0).sum())
        if n_neg:
            raise InputError(what, f"the count matrix has {n_neg} negative values (min {data.min():g})", fix)
        frac = data != np.floor(data)
        if frac.any():
            raise InputError(what, f"the count matrix has {int(frac.sum())} fractional values "
                                   f"(e.g. {data[frac][0]:g}); counts must be integers", fix)
    elif data.size and data.min() < 0:
        raise InputError(what, f"the count matrix has {int((data < 0).sum())} negative values (min {data.min()})", fix)
    top = data.max() if data.size else 0
    dtype = np.int32 if top <= np.iinfo(np.int32).max else np.int64
    X = sp.csr_matrix((data.astype(dtype), X.indices, X.indptr), shape=X.shape)
    X.eliminate_zeros()
    X.sort_indices()
    adata.X = X
    for axis in ("obs", "var"):
        setattr(adata, f"{axis}_names", getattr(adata, f"{axis}_names").astype(str))
        if not getattr(adata, f"{axis}_names").is_unique:
            n_dup = int(getattr(adata, f"{axis}_names").duplicated().sum())
            getattr(adata, f"{axis}_names_make_unique")()
            log.info("%s: %d duplicate %s names made unique (suffix -1, -2, ...)", dataset, n_dup, axis)
    return adata


# ---------------------------------------------------------------------------------------- h5ad I/O
def write_h5ad_atomic(adata: ad.AnnData, path) -> None:
    """Write gzip-compressed h5ad via a temporary file in the same directory and ``os.replace``.

    A reader (or Snakemake) therefore sees either no file or the complete one, never a partial write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.h5ad")
    try:
        adata.write_h5ad(tmp, compression="gzip")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_h5ad_checked(path, *, dataset: str) -> ad.AnnData:
    """``anndata.read_h5ad`` that turns a missing, truncated or corrupted file into a one-line InputError."""
    import h5py

    path = Path(path)
    what = _what(dataset, path)
    fix = "the file is truncated or corrupted: delete it and recreate it (rerun the step that wrote it, or copy it again)"
    if not path.is_file():
        raise InputError(what, "file not found", "check the path in the dataset registry, or rerun the step that writes it")
    if not h5py.is_hdf5(path):
        raise InputError(what, "is not a readable HDF5/h5ad file", fix)
    try:
        return ad.read_h5ad(path)
    except Exception as exc:  # h5py/anndata raise many types (OSError, KeyError, AnnDataReadError)
        raise InputError(what, f"cannot be read as h5ad ({_one_line(exc)})", fix) from exc
