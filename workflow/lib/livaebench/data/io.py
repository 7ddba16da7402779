"""Reading, checking and writing raw-count matrices.

Every reader returns an AnnData with cells as rows and the counts as a CSR matrix in ``.X``;
``validate_counts`` then turns "looks like a count matrix" into "is one" (non-negative integers,
named columns present, unique names) so that nothing downstream has to re-check. All problems with a
user's file surface as one-line :class:`~livaebench.errors.InputError` messages naming the dataset, the
file and the fix.
"""
from __future__ import annotations

import csv
import gzip
import logging
import os
import re
import warnings
import zlib
from dataclasses import dataclass, field
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
        feats = pd.read_csv(features, sep="\t", header=None, dtype=str, keep_default_na=False, quoting=3,
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


# Matrix Market sets of the other single-cell quantifiers. Both store cells in rows (10x: features in rows).
# kallisto-bustools (bustools count -o PREFIX): PREFIX.mtx + PREFIX.barcodes.txt + PREFIX.genes.txt
# (+ PREFIX.genes.names.txt); kb's nac/lamanno workflows add a variant before .mtx
# (cells_x_genes.mature.mtx, .nascent.mtx, .ambiguous.mtx, .cell.mtx, .nucleus.mtx, .total.mtx) that shares
# the label files. alevin --dumpMtx / alevin-fry: quants_mat.mtx[.gz] + quants_mat_rows.txt (barcodes) +
# quants_mat_cols.txt (genes). GEO may prefix every name with 'GSM123_' and gzip it.
_MTX_RE = re.compile(r"^(?P<stem>.+)\.mtx(?:\.gz)?$")
_ALEVIN_RE = re.compile(r"^(?P<prefix>.*)quants_mat\.mtx(?:\.gz)?$")
# alevin's default output: a gzipped binary (EDS) matrix that no Matrix Market reader opens.
_ALEVIN_EDS_RE = re.compile(r"^(?P<prefix>.*)quants_mat\.gz$")
# STARsolo's velocyto matrices: spliced/unspliced/ambiguous counts, not one gene count matrix.
_VELOCYTO_MTX = {"spliced.mtx", "unspliced.mtx", "ambiguous.mtx"}


@dataclass(frozen=True)
class MtxSet:
    """One Matrix Market count matrix and its label files, as a quantifier wrote them."""

    tool: str                        # '10x' (Cell Ranger and STARsolo), 'kallisto-bustools' or 'alevin'
    matrix: Path
    cells: Path                      # one barcode per line
    genes: Path                      # 10x: id, name, type per line; the others: one id per line
    gene_names: Path | None = None   # kallisto-bustools' .genes.names.txt, aligned with .genes.txt
    cells_in_rows: bool = False      # the matrix stores cells x genes (10x: genes x cells)

    @property
    def files(self) -> list[Path]:
        return [p for p in (self.matrix, self.cells, self.genes, self.gene_names) if p is not None]


def _plain_name(name: str) -> str:
    return name[:-3] if name.endswith(".gz") else name


def find_mtx_sets(paths: Iterable[Path]) -> list[MtxSet]:
    """Recognise Matrix Market count matrices among ``paths`` by the file names their tools write.

    10x triplets (Cell Ranger, STARsolo's ``Solo.out/Gene*/raw|filtered``; see :func:`group_10x_files`),
    kallisto-bustools sets and alevin / alevin-fry ``--dumpMtx`` sets. Only complete sets are returned;
    label files are matched within the same directory (``.gz`` or not). Files that belong to no set are
    left to the caller.
    """
    paths = [Path(p) for p in paths]
    by_name = {(p.parent, _plain_name(p.name)): p for p in paths}
    sets = [MtxSet("10x", t["matrix"], t["barcodes"], t["features"])
            for t in group_10x_files(paths).values() if len(t) == 3]
    taken = {s.matrix for s in sets}
    for p in paths:
        if p in taken:
            continue
        alevin = _ALEVIN_RE.match(p.name)
        if alevin:
            rows = by_name.get((p.parent, f"{alevin['prefix']}quants_mat_rows.txt"))
            cols = by_name.get((p.parent, f"{alevin['prefix']}quants_mat_cols.txt"))
            if rows and cols:
                sets.append(MtxSet("alevin", p, rows, cols, cells_in_rows=True))
            continue
        m = _MTX_RE.match(p.name)
        if not m:
            continue
        stem = m["stem"]
        # PREFIX.mtx, or PREFIX.VARIANT.mtx sharing PREFIX's label files (kb's nac/lamanno matrices)
        for prefix in dict.fromkeys([stem, stem.rsplit(".", 1)[0]]):
            cells = by_name.get((p.parent, f"{prefix}.barcodes.txt"))
            genes = by_name.get((p.parent, f"{prefix}.genes.txt"))
            if cells and genes:
                sets.append(MtxSet("kallisto-bustools", p, cells, genes,
                                   by_name.get((p.parent, f"{prefix}.genes.names.txt")), cells_in_rows=True))
                break
    return sets


def _label_lines(path: Path) -> list[str]:
    with _open_text(path) as fh:
        return [line.rstrip("\r\n").split("\t")[0] for line in fh if line.strip()]


def _tool_name(mtx: MtxSet) -> str:
    if mtx.tool == "10x" and "Solo.out" in mtx.matrix.parts:
        return "STARsolo"
    return mtx.tool


def _alevin_usa_blocks(genes: list[str]) -> bool:
    """alevin-fry's USA mode lists every gene three times: as is, then '-U' (unspliced), then '-A' (ambiguous)."""
    k, rest = divmod(len(genes), 3)
    return (k > 0 and rest == 0 and genes[k:2 * k] == [g + "-U" for g in genes[:k]]
            and genes[2 * k:] == [g + "-A" for g in genes[:k]])


def read_mtx_set(mtx: MtxSet, *, dataset: str, corrupt_fix: str = _LOCAL_FIX) -> ad.AnnData:
    """Read one :class:`MtxSet` (see :func:`find_mtx_sets`) into cells x genes, in the orientation its tool writes."""
    tool = _tool_name(mtx)
    if mtx.tool == "10x":
        adata = read_10x_triplet(mtx.matrix, mtx.cells, mtx.genes, dataset=dataset, corrupt_fix=corrupt_fix)
        log.info("%s: %s read as %s output (genes x cells)", dataset, mtx.matrix.name, tool)
        return adata
    current = mtx.matrix
    try:
        with (gzip.open(mtx.matrix, "rb") if mtx.matrix.name.endswith(".gz") else open(mtx.matrix, "rb")) as fh:
            mat = sp.csr_matrix(scipy.io.mmread(fh))
        current = mtx.cells
        cells = _label_lines(mtx.cells)
        current = mtx.genes
        genes = _label_lines(mtx.genes)
        current = mtx.gene_names or mtx.genes
        names = _label_lines(mtx.gene_names) if mtx.gene_names else genes
    except CORRUPT_ERRORS as exc:
        raise InputError(_what(dataset, current), f"cannot be read ({_one_line(exc)})", corrupt_fix) from exc
    what = _what(dataset, mtx.matrix)
    if mtx.tool == "alevin" and _alevin_usa_blocks(genes):
        raise InputError(what, f"is alevin-fry USA-mode output ({len(genes) // 3} genes, each as spliced, "
                         "unspliced '-U' and ambiguous '-A' columns), not one count per gene",
                         "convert it to one matrix with pyroe's load_fry (output_format 'scRNA' = spliced + "
                         "ambiguous, 'snRNA' = all three), write it as .h5ad and point the registry path at that")
    expected = (len(cells), len(genes))
    if mat.shape != expected:
        if mat.shape == expected[::-1] and expected[0] != expected[1]:
            # The label files decide without ambiguity: someone wrote it genes x cells
            log.info("%s: %s stores genes x cells (not the %s layout); read transposed", dataset, mtx.matrix.name, tool)
            mat = mat.T.tocsr()
        else:
            raise InputError(what, f"matrix is {mat.shape[0]} x {mat.shape[1]} but {mtx.cells.name} lists "
                             f"{len(cells)} barcodes and {mtx.genes.name} {len(genes)} genes",
                             f"the {tool} files must come from the same run; replace the mismatched one")
    if len(names) != len(genes):
        raise InputError(_what(dataset, mtx.gene_names), f"lists {len(names)} names for {len(genes)} genes",
                         f"it must match {mtx.genes.name} line by line; replace it or remove it")
    log.info("%s: %s read as %s output (cells x genes)", dataset, mtx.matrix.name, tool)
    var = pd.DataFrame({"gene_ids": genes}, index=pd.Index(names, dtype=str))
    with warnings.catch_warnings():  # duplicate gene symbols are common; validate_counts makes them unique
        warnings.filterwarnings("ignore", message=".*names are not unique", category=UserWarning)
        return ad.AnnData(X=mat, obs=pd.DataFrame(index=pd.Index(cells, dtype=str)), var=var)


def _mtx_subfolders(path: Path) -> list[str]:
    """Subfolders (two levels down) holding a matrix: STARsolo's Gene/raw, kb's counts_filtered, alevin/ ..."""
    found = []
    for sub in sorted(p for p in path.iterdir() if p.is_dir()):
        for d in [sub, *sorted(p for p in sub.iterdir() if p.is_dir())]:
            files = [p for p in d.iterdir() if p.is_file()]
            if find_mtx_sets(files) or any(_ALEVIN_EDS_RE.match(p.name) for p in files):
                found.append(d.relative_to(path).as_posix())
    return found


def _eds_error(dataset: str, path: Path) -> InputError:
    return InputError(_what(dataset, path), "is alevin's binary (EDS) count matrix, which cannot be read here",
                      "rerun salmon alevin with --dumpMtx (it writes quants_mat.mtx.gz beside quants_mat.gz) "
                      "and point the registry path at that folder, or convert the matrix to .h5ad")


def _read_mtx_dir(path: Path, *, dataset: str, matrix: Path | None = None) -> ad.AnnData:
    """Read the one Matrix Market count matrix of a directory (or the set of ``matrix`` in it)."""
    files = sorted(p for p in path.iterdir() if p.is_file())
    sets = find_mtx_sets(files)
    if matrix is not None:
        sets = [s for s in sets if s.matrix == matrix]
        if not sets:
            raise InputError(_what(dataset, matrix), "has no barcode and gene files beside it under the names "
                             "its tool writes (10x: barcodes.tsv + features.tsv/genes.tsv; kallisto-bustools: "
                             "PREFIX.barcodes.txt + PREFIX.genes.txt; alevin: quants_mat_rows.txt + "
                             "quants_mat_cols.txt)",
                             "keep the matrix in the folder its tool wrote, with its label files")
    listing = ", ".join(p.name for p in files[:20]) or "nothing"
    if len(sets) > 1:
        if all(s.tool == "10x" for s in sets):
            raise InputError(_what(dataset, path), f"{len(sets)} 10x triplets (one per sample?); found: {listing}",
                             "point the registry path at a directory holding exactly one 10x matrix")
        names = ", ".join(s.matrix.name for s in sets)
        raise InputError(_what(dataset, path), f"holds {len(sets)} count matrices ({names})",
                         "point the registry path at the one .mtx file to read")
    if sets:
        (one,) = sets
        others = [p.name for p in files if _MTX_RE.match(p.name) and p != one.matrix]
        if others:
            log.info("%s: %s: read %s; not read: %s", dataset, path.name, one.matrix.name, ", ".join(others))
        return read_mtx_set(one, dataset=dataset)
    eds = [p for p in files if _ALEVIN_EDS_RE.match(p.name)]
    if eds:
        raise _eds_error(dataset, eds[0])
    if _VELOCYTO_MTX <= {p.name for p in files}:
        raise InputError(_what(dataset, path), "holds STARsolo's velocyto matrices (spliced, unspliced, ambiguous), "
                         "not one gene count matrix", "point the registry path at Solo.out/Gene/filtered instead")
    subfolders = _mtx_subfolders(path)
    if subfolders:
        called = [s for s in subfolders if s.split("/")[-1].startswith("filtered") or "counts_filtered" in s]
        hint = f" (e.g. {path / called[0]}: the called cells)" if called else ""
        raise InputError(_what(dataset, path), f"holds no count matrix itself, but its subfolders "
                         f"{', '.join(subfolders[:10])} do", f"point the registry path at one of them{hint}")
    raise InputError(_what(dataset, path),
                     "no complete 10x triplet (matrix.mtx[.gz], barcodes.tsv[.gz], features.tsv[.gz] or "
                     "genes.tsv[.gz]) nor a kallisto-bustools or alevin matrix with its label files; found: " + listing,
                     "point the registry path at a directory holding exactly one 10x matrix (or one .mtx set)")


def _read_10x_h5(path: Path, *, dataset: str, corrupt_fix: str = _LOCAL_FIX) -> ad.AnnData:
    import h5py
    import scanpy as sc  # imported here: scanpy costs seconds and most callers never read .h5

    if not h5py.is_hdf5(path):
        raise InputError(_what(dataset, path), "is not an HDF5 file (truncated or not a 10x .h5)", corrupt_fix)
    try:
        adata = sc.read_10x_h5(path, gex_only=False)  # every feature type; preprocess keeps the modality's
    except Exception as exc:  # scanpy raises bare Exception for unknown layouts
        raise InputError(_what(dataset, path), f"cannot be read as a 10x .h5 file ({_one_line(exc)})",
                         corrupt_fix) from exc
    adata.X = sp.csr_matrix(adata.X)
    return adata


# ------------------------------------------------------------------------------------- dense tables
# featureCounts (Subread) writes a '# Program:featureCounts ...' line, then these six columns of gene
# annotation before one count column per BAM file (--extraAttributes adds text columns after Length).
FEATURECOUNTS_COMMENT = "# Program:featureCounts"
FEATURECOUNTS_COLUMNS = ("Geneid", "Chr", "Start", "End", "Strand", "Length")
# htseq-count's counters of reads not counted for any gene, written as rows after the genes.
HTSEQ_SUMMARY_ROWS = ("__no_feature", "__ambiguous", "__too_low_aQual", "__not_aligned", "__alignment_not_unique")


def _sniff_sep(path: Path) -> str:
    with _open_text(path) as fh:
        first = fh.readline()
        while first.startswith(FEATURECOUNTS_COMMENT):
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


_NUMBER_RE = re.compile(r"[+-]?((\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|inf|infinity)", re.IGNORECASE)
# Cells that pandas (and R) write for a missing value: missing, neither a number nor text.
NA_TOKENS = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "-nan", "-NaN", "<NA>", "#N/A"]
_SNIFF_ROWS = 200
_DENSE_SHAPE_FIX = ("every line needs the same number of fields: one per column, plus the row label "
                    "(check the separator and quoting)")


def _is_number(text: str) -> bool:
    return bool(_NUMBER_RE.fullmatch(text.strip()))


def _is_missing(text: str) -> bool:
    return text.strip() in NA_TOKENS


def _split_fields(lines: list[str], sep: str) -> list[list[str]]:
    if sep == r"\s+":  # runs of spaces; quoted fields as pandas reads them
        return list(csv.reader([line.strip() for line in lines], delimiter=" ", skipinitialspace=True))
    return list(csv.reader(lines, delimiter=sep))


def _is_index_sequence(fields: list[str]) -> bool:
    """Column names written as 0..k-1 or 1..k (R/pandas write these for an unnamed matrix).

    One field is no sequence: a lone 0 or 1 is as likely the first count of a headerless one-column table
    (htseq-count's output).
    """
    if len(fields) < 2:
        return False
    try:
        values = [int(f) for f in fields]
    except ValueError:
        return False
    return values in (list(range(len(values))), list(range(1, len(values) + 1)))


@dataclass
class DenseLayout:
    """How a dense table is laid out: see :func:`dense_layout`."""

    n_fields: int             # fields per data line
    header: bool              # the first line names the columns
    row_labels: bool          # field 0 of each data line labels the row
    annotations: list[int]    # fields holding text annotations of the rows (not counts)
    counts: list[int]         # fields holding counts
    names: dict[int, str]     # column name of each field
    notes: list[str]          # what was decided without being written in the file (logged)
    skip: int = 0             # comment lines before the first line (featureCounts' program line)
    tool: str = ""            # the tool whose layout was recognised by its header ('featureCounts')
    dropped: list[int] = field(default_factory=list)  # a tool's annotation fields, not read


def _featurecounts_annotation(first: list[str]) -> list[int]:
    """Fields of featureCounts' annotation columns: after 'Geneid', a run of Chr, Start, End, Strand, Length
    in its order (all five as featureCounts writes them, or the ones a user kept, e.g. ``cut -f1,6-``)."""
    if not first or first[0].strip() != FEATURECOUNTS_COLUMNS[0]:
        return []
    order, at, fields = FEATURECOUNTS_COLUMNS[1:], 0, []
    for i, name in enumerate(first[1:], start=1):
        if name.strip() not in order[at:]:
            break
        at = order.index(name.strip()) + 1
        fields.append(i)
    return fields


def _featurecounts_summary(first: list[str], rows: list[list[str]]) -> bool:
    """featureCounts' .summary file: 'Status' then rows 'Assigned', 'Unassigned_Unmapped', ..."""
    return (first[0].strip() == "Status" and bool(rows)
            and all(r[0] == "Assigned" or r[0].startswith("Unassigned_") for r in rows))


def dense_layout(path: Path, sep: str, *, dataset: str) -> DenseLayout:
    """Decide from the first lines of a dense table where its header, row labels, annotations and counts are.

    - Tools recognised by their header: featureCounts (an optional ``# Program:featureCounts`` line, then
      ``Geneid, Chr, Start, End, Strand, Length`` before the count columns, or ``Geneid`` and the part of
      these a user kept): Geneid labels the rows and the annotation columns are not read (logged). Its
      ``.summary`` file is refused. htseq-count's summary rows are recognised by their names while
      reading (see :func:`_read_dense`).
    - Header: the first line is a header unless all its fields (but a row label) are numbers that are
      not a 0..k-1 / 1..k column numbering; a header with one field fewer than the data lines (R's
      ``write.table``) names the columns after the row labels.
    - Row labels: field 0 holds row labels when the header has one field fewer, when the header's first
      field is empty (R's ``write.csv``, htseq-count ``--with-header``), or when its values are text or
      distinct numbers (gene ids); otherwise the rows have no labels and are named ``row_1``, ``row_2``, ...
    - Annotation columns: other fields whose values in the first lines are mostly text (e.g. a gene
      symbol or description column, a cell-type column); they become annotations of the rows. A column
      with a few text values among numbers is an error, not an annotation. An unnamed one is named
      ``annotation_1``, ``annotation_2``, ...
    """
    what = _what(dataset, path)
    lines: list[str] = []
    skip = 0
    with _open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not lines and line.startswith(FEATURECOUNTS_COMMENT):
                skip = number  # pandas skips these physical lines before the header
                continue
            if line.strip():
                lines.append(line.rstrip("\r\n"))
            if len(lines) > _SNIFF_ROWS:
                break
    if not lines:
        raise InputError(what, "is empty (no rows or columns)", "supply a non-empty count matrix")
    first, *rows = _split_fields(lines, sep)
    notes: list[str] = []
    if not rows:
        raise InputError(what, "has a single line, no data rows", "supply a non-empty count matrix")
    n = len(rows[0])
    for offset, fields in enumerate(rows[1:], start=3 + skip):
        if len(fields) != n:
            raise InputError(what, f"has {len(fields)} fields on data line {offset} but {n} on line {2 + skip}",
                             _DENSE_SHAPE_FIX)
    if _featurecounts_summary(first, rows):
        raise InputError(what, "is featureCounts' read-assignment summary (Status, Assigned, Unassigned_...), "
                         "not the counts", "point the registry path at the count table featureCounts wrote "
                         "beside it (the same name without .summary)")
    tool, dropped = "", _featurecounts_annotation(first)
    if dropped:
        if len(first) != n:
            raise InputError(what, f"has {len(first)} fields on its featureCounts header but {n} on line "
                             f"{2 + skip}", _DENSE_SHAPE_FIX)
        tool = "featureCounts"
        header, row_labels, names = True, True, dict(enumerate(first))
        notes.append(f"featureCounts table{' (its program line skipped)' if skip else ''}: dropped its gene "
                     f"annotation columns {', '.join(_shown_name(first[i]) for i in dropped)} (not counts)")
    elif len(first) == n - 1:
        header, row_labels, names = True, True, {0: "", **{i + 1: name for i, name in enumerate(first)}}
    elif len(first) == n:
        rest = first[1:]
        header = not (all(_is_number(f) for f in rest) and not _is_index_sequence(rest)
                      and (_is_number(first[0]) or not all(_is_number(r[0]) for r in rows)))
        column0 = [r[0] for r in rows] if header else [first[0]] + [r[0] for r in rows]
        if (header and first[0].strip() == "") or not all(_is_number(v) for v in column0):
            row_labels = True
        else:  # numbers in field 0: gene ids (distinct) or counts of the first column (repeat, e.g. zeros)
            row_labels = len(set(column0)) == len(column0) and all(float(v).is_integer() for v in column0)
            notes.append("field 0 holds distinct whole numbers: read as row labels (ids)" if row_labels
                         else "field 0 holds counts: the rows have no labels and are named row_1, row_2, ...")
        names = dict(enumerate(first)) if header else {}
        if not header:
            notes.append("the first line holds numbers only: read as data (no header); columns are named "
                         "column_1, column_2, ...")
    else:
        raise InputError(what, f"has {len(first)} fields on line {1 + skip} but {n} on line {2 + skip}",
                         _DENSE_SHAPE_FIX)
    if n - int(row_labels) - len(dropped) < 1:
        raise InputError(what, "has no column besides the row labels",
                         "a dense matrix needs row labels (optional) and one column of counts per cell or gene")
    data = rows if header else [first] + rows
    annotations, counts = [], []
    for i in range(int(row_labels), n):
        if i in dropped:
            continue
        values = [r[i] for r in data if not _is_missing(r[i])]
        text = [v for v in values if not _is_number(v)]
        if text and len(text) * 2 >= len(values):
            annotations.append(i)
        elif text:
            name = names.get(i) or f"column_{i + 1 - int(row_labels)}"
            raise InputError(what, f"column {_shown_name(name)} holds non-numeric values (e.g. {_shown_name(text[0])}) "
                             "among numbers", "correct the values: counts must be whole numbers, NA for missing")
        else:
            counts.append(i)
    if not counts:
        raise InputError(what, "has no numeric columns",
                         "a dense matrix needs row labels in the first column and counts elsewhere")
    if not header:
        names = {i: f"column_{k}" for k, i in enumerate(counts, start=1)}
    for k, i in enumerate(annotations, start=1):
        if not str(names.get(i, "")).strip():  # htseq-count leaves its --additional-attr columns unnamed
            names[i] = f"annotation_{k}"
    if annotations:
        notes.append(f"text column(s) {', '.join(_shown_name(names[i]) for i in annotations)} kept as row annotations")
    return DenseLayout(n, header, row_labels, annotations, counts, names, notes, skip, tool, dropped)


def _shown_name(text: str, limit: int = 60) -> str:
    shown = ascii(str(text))
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def _read_dense(path: Path, *, dataset: str, orientation: str, corrupt_fix: str = _LOCAL_FIX) -> ad.AnnData:
    """Dense CSV/TSV (optionally gzipped), read in row chunks straight into a sparse matrix.

    The layout (header or not, row labels or not, text annotation columns anywhere beside the counts, a
    tool's annotation columns) is decided from the first lines by :func:`dense_layout` and logged;
    annotations become ``var`` (genes in rows) or ``obs`` (cells in rows) columns, where missing values
    stay missing (NaN). Rows labelled with htseq-count's summary counters (``__no_feature``,
    ``__ambiguous``, ``__too_low_aQual``, ``__not_aligned``, ``__alignment_not_unique``) are dropped and
    reported in one log line. The tables of featureCounts and htseq-count have genes in rows: ``auto``
    reads them so, and ``cells_by_genes`` is an error there.
    """
    what = _what(dataset, path)
    chunks, row_labels, annot = [], [], []
    summary: dict[str, float] = {}
    try:
        sep = _sniff_sep(path)
        layout = dense_layout(path, sep, dataset=dataset)
        text_fields = ([0] if layout.row_labels else []) + layout.annotations + layout.dropped
        reader = pd.read_csv(
            path, sep=sep, header=None, skiprows=layout.skip + int(layout.header),
            names=list(range(layout.n_fields)), dtype={i: str for i in text_fields}, keep_default_na=False,
            na_values={i: NA_TOKENS for i in range(layout.n_fields) if i != 0 or not layout.row_labels},
            chunksize=2000, low_memory=False, skip_blank_lines=True)
        offset = 0
        for chunk in reader:
            values = chunk[layout.counts]
            bad = [c for c in values.columns if not pd.api.types.is_numeric_dtype(values[c])]
            if bad:
                col = values[bad[0]]
                example = next((v for v in col if isinstance(v, str) and not _is_number(v)), col.iloc[0])
                raise InputError(what, f"column {_shown_name(layout.names[bad[0]])} holds non-numeric values "
                                 f"(e.g. {_shown_name(example)})",
                                 "correct the values: counts must be whole numbers, NA for missing (for GEO: "
                                 "narrow the pattern to the count files)")
            if layout.row_labels:
                special = chunk[0].isin(HTSEQ_SUMMARY_ROWS).to_numpy()
                if special.any():
                    for label, total in zip(chunk[0][special], values[special].sum(axis=1)):
                        summary[label] = summary.get(label, 0.0) + float(total)
                    chunk, values = chunk[~special], values[~special]
            chunks.append(sp.csr_matrix(values.to_numpy(dtype=np.float64)))
            if layout.row_labels:
                row_labels.extend(chunk[0].astype(str))
            else:
                row_labels.extend(f"row_{offset + k}" for k in range(1, len(chunk) + 1))
            offset += len(chunk)
            if layout.annotations:
                annot.append(chunk[layout.annotations])
    except InputError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise InputError(what, "is empty (no rows or columns)", "supply a non-empty count matrix") from exc
    except pd.errors.ParserError as exc:
        raise InputError(what, f"cannot be read as a table ({_one_line(exc)})", _DENSE_SHAPE_FIX) from exc
    except CORRUPT_ERRORS as exc:
        raise InputError(what, f"cannot be read as a table ({_one_line(exc)})", corrupt_fix) from exc
    if not row_labels:
        raise InputError(what, "has a header but no data rows" if not summary else
                         "holds only htseq-count's summary rows, no gene counts", "supply a non-empty count matrix")
    for note in layout.notes:
        log.info("%s: %s: %s", dataset, path.name, note)
    if summary:
        log.info("%s: %s: dropped htseq-count's summary rows (reads counted for no gene, not genes): %s",
                 dataset, path.name, ", ".join(f"{label} ({total:g} in all)" for label, total in summary.items()))
    tool = layout.tool or ("htseq-count" if summary else "")
    if tool:
        if orientation == "cells_by_genes":
            raise InputError(what, f"is a {tool} table, which has genes in rows, but the registry sets "
                             "orientation cells_by_genes", "leave orientation empty (or set genes_by_cells)")
        if orientation == "auto":
            orientation = "genes_by_cells"
            log.info("%s: %s read as genes_by_cells (%s writes genes in rows)", dataset, path.name, tool)
    mat = sp.vstack(chunks).tocsr()
    rows = pd.Index(row_labels, dtype=str)
    cols = pd.Index([str(layout.names[i]) for i in layout.counts], dtype=str)
    annot_df = pd.concat(annot) if annot else pd.DataFrame(index=range(len(rows)))
    annot_df.columns = [str(layout.names[i]) for i in layout.annotations]
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

    Formats: ``.h5ad`` (``layers['counts']`` is used when present, else ``.X``); a directory holding one
    Matrix Market matrix with its label files, recognised by the names its tool writes (see
    :func:`find_mtx_sets`): a 10x triplet (``[prefix]matrix.mtx[.gz]`` + ``barcodes.tsv[.gz]`` +
    ``features.tsv[.gz]`` or ``genes.tsv[.gz]``, as Cell Ranger and STARsolo write them), a
    kallisto-bustools set (``cells_x_genes.mtx`` + ``.barcodes.txt`` + ``.genes.txt``) or an alevin
    ``--dumpMtx`` / alevin-fry set (``quants_mat.mtx[.gz]`` + ``quants_mat_rows.txt`` +
    ``quants_mat_cols.txt``); a path to an ``.mtx`` file reads that matrix with the label files beside it;
    a 10x ``.h5``; a dense CSV/TSV/TXT table, optionally gzipped, whose orientation is ``genes_by_cells``,
    ``cells_by_genes`` or ``auto`` (see :func:`decide_orientation` and :func:`_read_dense`; the decision
    is logged). alevin's binary ``quants_mat.gz`` is refused with the fix. The values are not checked
    here: call :func:`validate_counts`.

    ``orientation`` is honoured by dense tables, and by ``.h5ad`` files: ``genes_by_cells`` means the
    file stores genes in its rows and is transposed (``auto``/``cells_by_genes``: as stored, AnnData's
    convention). Matrix Market sets and 10x ``.h5`` files have a layout fixed by their tool: an
    orientation other than ``auto`` is an error there, not silently ignored.
    """
    path = Path(path)
    if orientation not in ORIENTATIONS:
        raise InputError(_what(dataset, path), f"unknown orientation '{orientation}'",
                         f"use one of {', '.join(ORIENTATIONS)}")
    if not path.exists():
        raise InputError(_what(dataset, path), "file not found",
                         "check the path in the dataset registry (relative paths start at the working directory)")
    if path.is_file() and _ALEVIN_EDS_RE.match(path.name):
        raise _eds_error(dataset, path)
    matrix = path if path.is_file() and _MTX_RE.match(path.name) else None
    if (path.is_dir() or matrix or path.suffix == ".h5") and orientation != "auto":
        kind = "10x .h5 file" if path.suffix == ".h5" else "10x directory or other .mtx matrix set"
        raise InputError(_what(dataset, path), f"orientation '{orientation}' does not apply to a {kind} "
                         "(its layout is fixed by the format)", "leave orientation empty in the dataset registry")
    if path.is_dir() or matrix:
        adata = _read_mtx_dir(path.parent if matrix else path, dataset=dataset, matrix=matrix)
    elif path.suffix == ".h5ad":
        adata = read_h5ad_checked(path, dataset=dataset)
        if "counts" in adata.layers:
            log.info("%s: using layers['counts'] of %s as the raw counts", dataset, path.name)
            adata.X = adata.layers["counts"]
        adata.layers.clear()  # other layers (spliced/unspliced, normalized) are not counts of .X
        if orientation == "genes_by_cells":
            log.info("%s: %s transposed (registry orientation genes_by_cells: genes in its rows)", dataset, path.name)
            adata = adata.T.copy()
    elif path.suffix == ".h5":
        adata = _read_10x_h5(path, dataset=dataset)
    elif _DENSE_RE.search(path.name):
        adata = _read_dense(path, dataset=dataset, orientation=orientation)
    else:
        raise InputError(_what(dataset, path), "unsupported file type",
                         "give an .h5ad, a 10x (or STARsolo, kallisto-bustools, alevin) matrix directory, a 10x "
                         ".h5, or a .csv/.tsv/.txt[.gz] dense matrix")
    if not sp.issparse(adata.X):
        adata.X = sp.csr_matrix(np.asarray(adata.X))
    return adata


# 10x feature types (features.tsv column 3, the .h5's feature_type) that each modality models.
MODALITY_FEATURE_TYPES = {"rna": "Gene Expression", "atac": "Peaks"}


def select_modality_features(adata: ad.AnnData, *, dataset: str, modality: str, say=None) -> ad.AnnData:
    """Keep the features of ``modality``'s 10x feature type (``var['feature_types']``), if the data has types.

    A 10x matrix can hold antibody (Antibody Capture), CRISPR guide, custom and peak (multiome) rows beside
    the genes; RNA keeps 'Gene Expression', ATAC 'Peaks', and what was dropped is said in one line through
    ``say``. Features with a missing type are kept. Without a ``feature_types`` column the input is
    returned as it is; when no feature has the modality's type, a one-line InputError.
    """
    if "feature_types" not in adata.var.columns:
        return adata
    wanted = MODALITY_FEATURE_TYPES[modality]
    types = adata.var["feature_types"]
    keep = (types.isna() | (types.astype(str) == wanted)).to_numpy()
    if keep.all():
        return adata
    found = types.astype(str).value_counts()
    listing = ", ".join(f"{n} {t!r}" for t, n in found.items())
    if not keep.any():
        other = next((m for m, t in MODALITY_FEATURE_TYPES.items() if t in found.index), None)
        fix = (f"set modality to {other} in the dataset registry" if other
               else f"supply a matrix with '{wanted}' features")
        raise InputError(f"dataset '{dataset}'", f"has no '{wanted}' features for modality {modality} "
                         f"(feature types: {listing})", fix)
    dropped = found.drop(wanted, errors="ignore")
    (say or log.info)(f"{dataset}: kept {int(keep.sum())} '{wanted}' features for {modality}; dropped "
                      + ", ".join(f"{n} {t!r}" for t, n in dropped.items()))
    return adata[:, keep]


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
        if key:
            missing = int(adata.obs[key].isna().sum())
            if missing == adata.n_obs:
                raise InputError(what, f"{role} column '{key}' has no values (all {missing} cells missing)",
                                 f"set {role}_key to a column with values, or leave it empty")
            if missing:
                log.info("%s: %d of %d cells have no %s (column '%s'); they stay missing", dataset, missing,
                         adata.n_obs, role, key)
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
