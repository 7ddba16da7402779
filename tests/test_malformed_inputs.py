"""A matrix of malformed inputs through the real workflow (the `snakemake` command line).

Every malformed dataset is made in tmp_path from the real shipped data (resources/*.h5ad): damaged,
mislabelled or reshaped copies. Most of them share ONE registry with good datasets and one snakemake
run (`--keep-going`, up to each dataset's preprocessed.h5ad); then, per bad dataset, its job's log ends
with one line naming the dataset, what is wrong and `Fix: ...`, the same line is on the console, nothing
partial is left in results/data/{dataset}/, and the good datasets of the run are complete. Registry
errors stop the parse of the whole registry, so they get a few separate `snakemake -n` runs.
"""
from __future__ import annotations

import gzip
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from livaebench.config import REGISTRY_COLUMNS
from workflow_helpers import RESOURCES, snakemake, write_config

pytestmark = pytest.mark.workflow

ASSEMBLE, PREPROCESS = "assemble_counts", "preprocess"


@dataclass
class Case:
    dataset: str
    build: Callable[[Path, dict], dict]  # (folder, sources) -> registry row values (path, keys, ...)
    stage: str                           # the rule whose job must fail
    words: list[str] = field(default_factory=list)  # in the one-line error (besides dataset and "Fix:")


# ----------------------------------------------------------------------------- building blocks
def _h5ad(adata: ad.AnnData, path: Path) -> Path:
    adata.write_h5ad(path)
    return path


def _pancreas_csv(src: dict, path: Path, cells: int = 40) -> pd.DataFrame:
    """Real pancreas counts as a genes x cells table (2000 genes, so later lines fall in a later chunk)."""
    sub = src["pancreas"][:cells]
    return pd.DataFrame(sub.X.toarray().T.astype(np.int64), index=sub.var_names, columns=sub.obs_names)


def _write_10x(folder: Path, adata: ad.AnnData, types: list[str] | None = None, prefix: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / f"{prefix}barcodes.tsv.gz", "wt") as fh:
        fh.write("".join(f"{b}\n" for b in adata.obs_names))
    with gzip.open(folder / f"{prefix}features.tsv.gz", "wt") as fh:
        for i, g in enumerate(adata.var_names):
            fh.write(f"{g}\t{g}\t{types[i] if types else 'Gene Expression'}\n")
    with gzip.open(folder / f"{prefix}matrix.mtx.gz", "wb") as fh:
        scipy.io.mmwrite(fh, sp.coo_matrix(sp.csr_matrix(adata.X).T), field="integer")
    return folder


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _with_value(src: dict, path: Path, value: float) -> dict:
    sub = src["pancreas"][:40].copy()
    sub.X = sub.X.astype(np.float64).toarray()
    sub.X[3, 7] = value
    return {"path": _h5ad(sub, path)}


def _csv_with(src: dict, path: Path, line: int, text: str | None = None, extra_field: bool = False) -> dict:
    """The genes x cells CSV with one cell replaced by ``text`` or one line given an extra field."""
    lines = _pancreas_csv(src, path).to_csv().splitlines()
    fields = lines[line].split(",")
    if text is not None:
        fields[5] = text
    if extra_field:
        fields.append("7")
    lines[line] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    return {"path": path}


# -------------------------------------------------------------------------------- the bad cases
def _unsupported(d, s):
    (d / "counts.xlsx").write_bytes(b"PK\x03\x04 not a count matrix")
    return {"path": d / "counts.xlsx"}


def _h5ad_truncated(d, s):
    return {"path": _truncate(_h5ad(s["pancreas"][:200].copy(), d / "truncated.h5ad"))}


def _h5ad_garbage(d, s):
    (d / "garbage.h5ad").write_bytes(b"\x00not an h5ad\x00" * 100)
    return {"path": d / "garbage.h5ad"}


def _lognormalized(d, s):
    sub = s["pancreas"][:40].copy()
    sub.X = sub.X.astype(np.float32)
    sub.X.data = np.log1p(sub.X.data)
    return {"path": _h5ad(sub, d / "lognorm.h5ad")}


def _no_cells(d, s):
    return {"path": _h5ad(s["pancreas"][:0].copy(), d / "no_cells.h5ad")}


def _no_genes(d, s):
    return {"path": _h5ad(s["pancreas"][:40, :0].copy(), d / "no_genes.h5ad")}


def _empty_label(d, s):
    sub = s["pancreas"][:40].copy()
    sub.obs["clusters"] = pd.Categorical([np.nan] * sub.n_obs, categories=["Alpha"])
    return {"path": _h5ad(sub, d / "empty_label.h5ad"), "label_key": "clusters"}


def _csv_empty(d, s):
    (d / "empty.csv").write_bytes(b"")
    return {"path": d / "empty.csv"}


def _csv_header_only(d, s):
    (d / "header_only.tsv").write_text("gene\tAAACCTGAGAGGGATA\tAAACCTGAGCCTTGAT\n")
    return {"path": d / "header_only.tsv"}


def _csv_text_only(d, s):
    sub = s["pancreas"][:40]
    pd.DataFrame({"cell": sub.obs_names, "type": sub.obs["clusters"].astype(str),
                  "stage": "E15.5"}).to_csv(d / "annotation.csv", index=False)
    return {"path": d / "annotation.csv"}


def _csv_gz_truncated(d, s):
    path = d / "counts.csv.gz"
    _pancreas_csv(s, path, cells=200).to_csv(path)
    return {"path": _truncate(path)}


def _csv_utf16(d, s):
    path = d / "utf16.csv"
    path.write_bytes(_pancreas_csv(s, path).to_csv().encode("utf-16"))
    return {"path": path}


def _tenx_missing_barcodes(d, s):
    folder = _write_10x(d / "tenx", s["pancreas"][:40])
    (folder / "barcodes.tsv.gz").unlink()
    return {"path": folder}


def _tenx_two_samples(d, s):
    folder = _write_10x(d / "tenx", s["pancreas"][:40], prefix="GSM1_")
    _write_10x(folder, s["pancreas"][40:80], prefix="GSM2_")
    return {"path": folder}


def _tenx_shape_mismatch(d, s):
    folder = _write_10x(d / "tenx", s["pancreas"][:40])
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as fh:
        fh.write("".join(f"{b}\n" for b in s["pancreas"].obs_names[:39]))
    return {"path": folder}


def _tenx_truncated(d, s):
    folder = _write_10x(d / "tenx", s["pancreas"][:300])
    _truncate(folder / "matrix.mtx.gz")
    return {"path": folder}


def _tenx_orientation(d, s):
    return {"path": _write_10x(d / "tenx", s["pancreas"][:40]), "orientation": "genes_by_cells"}


def _tenx_label(d, s):
    return {"path": _write_10x(d / "tenx", s["pancreas"][:40]), "label_key": "cell_type"}


def _empty_dir(d, s):
    (d / "tenx").mkdir()
    return {"path": d / "tenx"}


def _h5_garbage(d, s):
    (d / "counts.h5").write_bytes(b"\x89HDF not really" * 50)
    return {"path": d / "counts.h5"}


def _h5_not_10x(d, s):
    path = d / "counts.h5"
    s["pancreas"][:40].copy().write_h5ad(path)  # an HDF5 file, but an AnnData, not Cell Ranger's layout
    return {"path": path}


def _antibody_only(d, s):
    sub = s["pancreas"][:60, :40]
    return {"path": _write_10x(d / "tenx", sub, types=["Antibody Capture"] * sub.n_vars)}


def _rna_declared_atac(d, s):
    return {"path": _write_10x(d / "tenx", s["pancreas"][:60]), "modality": "atac"}


def _qc_removes_all(d, s):
    return {"path": RESOURCES / "pancreas.h5ad", "max_cells": "60", "min_genes": "100000"}


def _min_cells_too_high(d, s):
    return {"path": RESOURCES / "pancreas.h5ad", "max_cells": "60", "min_cells": "100000"}


def _too_few_cells(d, s):
    return {"path": _h5ad(s["pancreas"][:6].copy(), d / "six_cells.h5ad")}


def _too_few_genes(d, s):
    sub = s["pancreas"][:60]
    top = np.argsort(-np.asarray((sub.X > 0).sum(axis=0)).ravel())[:5]
    return {"path": _h5ad(sub[:, np.sort(top)].copy(), d / "five_genes.h5ad"), "min_genes": "1"}


def _atac_no_window(d, s):
    sub = s["atac"][:40, :50].copy()
    sub.X = sp.csr_matrix(np.ones(sub.shape, dtype=np.int64))  # every peak open in every cell
    return {"path": _h5ad(sub, d / "all_open.h5ad"), "modality": "atac", "label_key": "cell_type"}


CASES = [
    Case("unsupported_type", _unsupported, ASSEMBLE, ["counts.xlsx", "unsupported file type"]),
    Case("h5ad_truncated", _h5ad_truncated, ASSEMBLE, ["truncated.h5ad", "truncated or corrupted"]),
    Case("h5ad_garbage", _h5ad_garbage, ASSEMBLE, ["garbage.h5ad", "not a readable HDF5"]),
    Case("negative_counts", lambda d, s: _with_value(s, d / "negative.h5ad", -3), ASSEMBLE,
         ["negative", "raw integer counts"]),
    Case("nan_counts", lambda d, s: _with_value(s, d / "nan.h5ad", np.nan), ASSEMBLE, ["NaN values"]),
    Case("inf_counts", lambda d, s: _with_value(s, d / "inf.h5ad", np.inf), ASSEMBLE, ["infinite values"]),
    Case("lognormalized", _lognormalized, ASSEMBLE, ["lognorm.h5ad", "fractional"]),
    Case("no_cells", _no_cells, ASSEMBLE, ["0 cells", "empty"]),
    Case("no_genes", _no_genes, ASSEMBLE, ["0 features", "empty"]),
    Case("wrong_label_key", lambda d, s: {"path": RESOURCES / "pancreas.h5ad", "label_key": "celltype"}, ASSEMBLE,
         ["label column 'celltype'", "clusters"]),
    Case("wrong_batch_key", lambda d, s: {"path": RESOURCES / "pancreas.h5ad", "batch_key": "donor"}, ASSEMBLE,
         ["batch column 'donor'", "batch_key"]),
    Case("empty_label", _empty_label, ASSEMBLE, ["label column 'clusters' has no values"]),
    Case("csv_empty", _csv_empty, ASSEMBLE, ["empty.csv", "is empty"]),
    Case("csv_header_only", _csv_header_only, ASSEMBLE, ["header_only.tsv", "no data rows"]),
    Case("csv_text_only", _csv_text_only, ASSEMBLE, ["annotation.csv", "no numeric columns"]),
    Case("csv_stray_text", lambda d, s: _csv_with(s, d / "stray.csv", 30, text="x"), ASSEMBLE,
         ["non-numeric values", "'x'"]),
    Case("csv_stray_text_late", lambda d, s: _csv_with(s, d / "stray_late.csv", 1500, text="oops"), ASSEMBLE,
         ["non-numeric values", "'oops'"]),
    Case("csv_ragged", lambda d, s: _csv_with(s, d / "ragged.csv", 30, extra_field=True), ASSEMBLE,
         ["fields on data line 31", "same number of fields"]),
    Case("csv_ragged_late", lambda d, s: _csv_with(s, d / "ragged_late.csv", 1500, extra_field=True), ASSEMBLE,
         ["cannot be read as a table", "same number of fields"]),
    Case("csv_gz_truncated", _csv_gz_truncated, ASSEMBLE, ["counts.csv.gz", "truncated or corrupted"]),
    Case("csv_utf16", _csv_utf16, ASSEMBLE, ["utf16.csv", "cannot be read"]),
    Case("tenx_missing_barcodes", _tenx_missing_barcodes, ASSEMBLE, ["no complete 10x triplet"]),
    Case("tenx_two_samples", _tenx_two_samples, ASSEMBLE, ["2 10x triplets", "exactly one 10x matrix"]),
    Case("tenx_shape_mismatch", _tenx_shape_mismatch, ASSEMBLE, ["39 barcodes", "same sample"]),
    Case("tenx_truncated", _tenx_truncated, ASSEMBLE, ["matrix.mtx.gz", "truncated or corrupted"]),
    Case("tenx_orientation", _tenx_orientation, ASSEMBLE, ["orientation 'genes_by_cells'", "10x directory",
                                                           "leave orientation empty"]),
    Case("tenx_label_key", _tenx_label, ASSEMBLE, ["label column 'cell_type'", "obs columns: none"]),
    Case("empty_directory", _empty_dir, ASSEMBLE, ["no complete 10x triplet", "found: nothing"]),
    Case("h5_garbage", _h5_garbage, ASSEMBLE, ["counts.h5", "not an HDF5 file"]),
    Case("h5_not_10x", _h5_not_10x, ASSEMBLE, ["counts.h5", "cannot be read as a 10x .h5"]),
    Case("antibody_only", _antibody_only, PREPROCESS, ["no 'Gene Expression' features", "Antibody Capture"]),
    Case("rna_declared_atac", _rna_declared_atac, PREPROCESS, ["no 'Peaks' features", "set modality to rna"]),
    Case("qc_removes_all", _qc_removes_all, PREPROCESS, ["no cell passes QC", "min_genes=100000", "registry"]),
    Case("min_cells_too_high", _min_cells_too_high, PREPROCESS, ["min_cells=100000", "lower min_cells"]),
    Case("too_few_cells", _too_few_cells, PREPROCESS, ["only 6 cells", "at least 10"]),
    Case("too_few_genes", _too_few_genes, PREPROCESS, ["only 5 features", "at least 10"]),
    Case("atac_no_window", _atac_no_window, PREPROCESS, ["no peak is accessible in 1%-95%"]),
]


# ---------------------------------------------------------------------------------- good datasets
def _good_table(d, s):
    """Genes x cells CSV as users have it: an R-style header (no corner cell), a symbol column beside the
    ids, a description column after the counts; gene ids are distinct numbers (Entrez-like)."""
    table = _pancreas_csv(s, d / "x", cells=80)
    symbols = table.index
    table.index = [str(10_000 + i) for i in range(len(table))]
    table.insert(0, "symbol", symbols)
    table["description"] = [f"gene {g}, from the pancreas" for g in symbols]
    lines = table.to_csv().splitlines()
    lines[0] = lines[0].split(",", 1)[1]  # header without the row-label corner (R's write.table)
    (d / "table.csv").write_text("\n".join(lines) + "\n")
    return {"path": d / "table.csv", "orientation": "genes_by_cells", "min_genes": "50"}


def _good_10x_adt(d, s):
    sub = s["pancreas"][:80]
    types = ["Gene Expression"] * sub.n_vars
    types[:15] = ["Antibody Capture"] * 15
    return {"path": _write_10x(d / "tenx", sub, types=types)}


def _good_panel(d, s):
    """A targeted panel: ~210 genes, so the default min_genes=200 removes most cells (a WARNING)."""
    sub = s["pancreas"][:300]
    detected = np.asarray((sub.X > 0).sum(axis=0)).ravel()
    panel = np.sort(np.argsort(-detected, kind="stable")[:210])
    return {"path": _h5ad(sub[:, panel].copy(), d / "panel.h5ad"), "label_key": "clusters"}


GOOD = {
    "good_pancreas": lambda d, s: {"path": RESOURCES / "pancreas.h5ad", "label_key": "clusters", "max_cells": "150",
                                   "notes": "real pancreas # a '#' inside a value is kept"},
    "good_table": _good_table,
    "good_10x_adt": _good_10x_adt,
    "good_panel": _good_panel,
}


def write_full_registry(path: Path, rows: list[dict]) -> Path:
    lines = ["\t".join(REGISTRY_COLUMNS)]
    lines += ["\t".join(str(row.get(col, "")) for col in REGISTRY_COLUMNS) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _row(dataset: str, folder: Path, values: dict) -> dict:
    return {"dataset": dataset, "modality": "rna", "source": "file", "label_key": "", **values}


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("malformed")
    sources = {"pancreas": ad.read_h5ad(RESOURCES / "pancreas.h5ad"), "atac": ad.read_h5ad(RESOURCES / "atac_bmmc.h5ad")}
    rows = []
    for name, build in [(c.dataset, c.build) for c in CASES] + list(GOOD.items()):
        folder = work / "inputs" / name
        folder.mkdir(parents=True)
        rows.append(_row(name, folder, build(folder, sources)))
    registry = write_full_registry(work / "datasets.tsv", rows)
    config = write_config(work, datasets=str(registry), methods=["pca"], paper_comparisons=[])
    targets = [f"results/data/{row['dataset']}/preprocessed.h5ad" for row in rows]
    started = time.monotonic()
    result = snakemake(work, config, "--cores", "2", "--keep-going", *targets, timeout=600)
    return work, result, time.monotonic() - started


def test_matrix_has_at_least_30_cases():
    assert len(CASES) >= 30 and len({c.dataset for c in CASES}) == len(CASES)


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.mark.parametrize("case", CASES, ids=[c.dataset for c in CASES])
def test_malformed_input_fails_alone_with_one_line(matrix_run, case):
    work, result, _ = matrix_run
    assert result.returncode != 0
    last = _last_line(work / "logs" / case.stage / f"{case.dataset}.log")
    assert "ERROR" in last and f"'{case.dataset}'" in last and "Fix: " in last, last
    assert len(last.split("Fix: ", 1)[1]) > 10, last
    for word in case.words:
        assert word in last, (word, last)
    assert last.split("ERROR ", 1)[1] in result.stderr  # the same line on the console
    data = work / "results" / "data" / case.dataset
    left = sorted(p.name for p in data.iterdir()) if data.exists() else []
    if case.stage == ASSEMBLE:
        assert left == [], left  # nothing partial
        assert not (work / "logs" / PREPROCESS / f"{case.dataset}.log").exists()
    else:  # the assembled counts are a complete, valid intermediate; no preprocessed (or temporary) file
        assert left == ["counts.h5ad"], left
        assert "ERROR" not in (work / "logs" / ASSEMBLE / f"{case.dataset}.log").read_text()


def test_good_datasets_of_the_same_run_are_complete(matrix_run):
    work, result, seconds = matrix_run
    print(f"matrix run: {len(CASES)} malformed + {len(GOOD)} good datasets in {seconds:.0f} s")
    for name in GOOD:
        prep = ad.read_h5ad(work / "results" / "data" / name / "preprocessed.h5ad")
        assert prep.n_obs >= 10 and prep.n_vars >= 10
    # annotation columns beside the counts became var columns; the row labels (numbers) stayed text
    table = ad.read_h5ad(work / "results/data/good_table/counts.h5ad")
    assert list(table.var.columns) == ["symbol", "description"] and table.var_names[0] == "10000"
    assert table.n_obs == 80 and table.var["description"].iloc[0].startswith("gene ")
    src = ad.read_h5ad(RESOURCES / "pancreas.h5ad")[:80]
    np.testing.assert_array_equal(table.X.toarray(), src.X.toarray())
    # the antibody rows are dropped for RNA, and the log says so
    adt = ad.read_h5ad(work / "results/data/good_10x_adt/preprocessed.h5ad")
    assert not adt.var_names.isin(src.var_names[:15]).any()
    assert "dropped 15 'Antibody Capture'" in (work / "logs/preprocess/good_10x_adt.log").read_text()
    # the targeted panel: QC removed most cells -> a WARNING with the fraction, recorded in uns
    panel = ad.read_h5ad(work / "results/data/good_panel/preprocessed.h5ad")
    removed = panel.uns["preprocess"]["fraction_cells_removed"]
    assert removed > 0.5
    warnings = [line for line in (work / "logs/preprocess/good_panel.log").read_text().splitlines() if "WARNING" in line]
    assert any(f"QC removed {removed:.0%} of the cells" in w and "min_genes" in w for w in warnings), warnings
    assert any("QC removed" in w for w in panel.uns["preprocess"]["warnings"])


# --------------------------------------------------------------------------- registry-level errors
REGISTRY_CASES = {
    "dot_dot_id": ({"dataset": "a..b"}, ["'a..b'", "cannot be used in file paths", "without '..'"]),
    "trailing_space": ({"modality": "rna "}, ["column 'modality'", "trailing whitespace"]),
    "pattern_on_file": ({"pattern": "_RAW\\.tar$"}, ["column 'pattern'", "source is 'file'"]),
    "min_peaks_on_rna": ({"min_peaks": "5"}, ["column 'min_peaks'", "applies to ATAC", "use min_genes"]),
    # a missing local file is known at parse time (Snakemake would stop with a MissingInputException)
    "missing_file": ({"path": "data/nowhere.h5ad"}, ["column 'path'", "'data/nowhere.h5ad' does not exist",
                                                     "correct the path"]),
}


@pytest.mark.parametrize("name", list(REGISTRY_CASES))
def test_registry_error_stops_the_run_in_one_line(tmp_path, name):
    change, words = REGISTRY_CASES[name]
    row = {"dataset": "pancreas", "modality": "rna", "source": "file", "path": RESOURCES / "pancreas.h5ad",
           "label_key": "clusters", **change}
    registry = write_full_registry(tmp_path / "datasets.tsv", [row])
    config = write_config(tmp_path, datasets=str(registry), methods=["pca"], paper_comparisons=[])
    result = snakemake(tmp_path, config, "-n", timeout=300)
    assert result.returncode != 0
    output = result.stdout + result.stderr  # Snakemake prints parse errors on stdout
    lines = [line for line in output.splitlines() if "Fix: " in line]
    assert len(lines) == 1, output
    assert f"line 2 (dataset '{row['dataset']}')" in lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()
