"""Every kind of bad input stops with a one-line InputError naming the dataset, the file and the fix,
and leaves no partial output.

Inputs are real data made bad on purpose (constructed corruption of resources/pancreas.h5ad subsets,
truncated copies of real downloads); the GEO cases run against the local server of tests/geo_server.py
(see tests/test_geo.py for what in that tree is real and what is constructed).
"""
from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from geo_server import constructed_gsms
from livaebench.data.geo import assemble_geo, fetch_geo
from livaebench.data.io import read_counts, read_h5ad_checked, validate_counts, write_h5ad_atomic
from livaebench.data.preprocess import preprocess
from livaebench.errors import InputError

HERE = Path(__file__).resolve().parent
RES = HERE.parent / "resources"
ACC = "GSE999001"
GSMS = constructed_gsms(ACC)


def fetch(server, dest, accession=ACC, **kw):
    return fetch_geo(accession, dest, dataset="bad_geo", base_url=server.base_url, backoff=0.01,
                     progress=False, **kw)


def assert_one_line(err: InputError, dataset: str, *names: str, fix: str = "") -> str:
    msg = str(err)
    assert "\n" not in msg
    assert f"'{dataset}'" in msg
    for name in names:
        assert name in msg, (name, msg)
    assert "Fix: " in msg and len(msg.split("Fix: ", 1)[1]) > 10
    if fix:
        assert fix in msg.split("Fix: ", 1)[1]
    return msg


def materialize(src: Path, out: Path, dataset: str, **keys) -> None:
    """What the workflow does for `source: file`: read, validate, write counts.h5ad."""
    adata = read_counts(src, dataset=dataset)
    validate_counts(adata, dataset=dataset, source=src, **keys)
    write_h5ad_atomic(adata, out)


def assert_no_output(out: Path) -> None:
    assert not out.exists()
    assert not out.parent.exists() or not [p for p in out.parent.iterdir() if "tmp" in p.name]


# ------------------------------------------------------------------------------ count values
@pytest.mark.parametrize("bad,kind", [(-3, "negative"), (2.5, "fractional"), (np.nan, "NaN"),
                                      (np.inf, "infinite")])
def test_non_count_values(pancreas, tmp_path, bad, kind):
    sub = pancreas[:40, :300]
    df = pd.DataFrame(sub.X.toarray().T.astype(float), index=sub.var_names, columns=sub.obs_names)
    df.iloc[7, 3] = bad
    src = tmp_path / "counts.csv"
    df.to_csv(src)
    out = tmp_path / "out" / "counts.h5ad"
    with pytest.raises(InputError) as err:
        materialize(src, out, "bad_values")
    msg = assert_one_line(err.value, "bad_values", "counts.csv", fix="raw integer counts")
    assert kind in msg
    assert_no_output(out)


def test_normalized_h5ad_is_rejected(pancreas, tmp_path):
    sub = pancreas[:100].copy()
    sub.layers.clear()
    sub.X = sub.X.astype(np.float32)
    sub.X.data = np.log1p(sub.X.data)  # a log-normalized matrix handed over as if it were counts
    src = tmp_path / "lognorm.h5ad"
    sub.write_h5ad(src)
    out = tmp_path / "counts.h5ad"
    with pytest.raises(InputError) as err:
        materialize(src, out, "lognorm_ds")
    assert "fractional" in assert_one_line(err.value, "lognorm_ds", "lognorm.h5ad")
    assert_no_output(out)


# ---------------------------------------------------------------------------------- empty data
def test_empty_table(tmp_path):
    src = tmp_path / "empty.tsv"
    src.write_text("gene\tAAACCTGAGAGGGATA\tAAACCTGAGCCTTGAT\n")
    with pytest.raises(InputError) as err:
        materialize(src, tmp_path / "counts.h5ad", "empty_ds")
    assert_one_line(err.value, "empty_ds", "empty.tsv", "no data rows")
    assert_no_output(tmp_path / "counts.h5ad")


@pytest.mark.parametrize("axis", ["cells", "features"])
def test_empty_matrix(pancreas, tmp_path, axis):
    empty = pancreas[:0].copy() if axis == "cells" else pancreas[:, :0].copy()
    src = tmp_path / "empty.h5ad"
    empty.write_h5ad(src)
    with pytest.raises(InputError) as err:
        materialize(src, tmp_path / "counts.h5ad", "empty_ds")
    assert "empty" in assert_one_line(err.value, "empty_ds", "empty.h5ad")
    assert_no_output(tmp_path / "counts.h5ad")


def test_zero_cells_after_qc(pancreas):
    with pytest.raises(InputError) as err:
        preprocess(pancreas, dataset="pancreas", modality="rna", min_genes=10_000)
    assert_one_line(err.value, "pancreas", "min_genes=10000", fix="lower min_genes")


def test_zero_cells_after_qc_atac_reports_richest_cell():
    atac = ad.read_h5ad(RES / "atac_bmmc.h5ad")
    richest = int((atac.X > 0).sum(axis=1).max())  # peaks of the richest cell, counted independently
    with pytest.raises(InputError) as err:
        preprocess(atac, dataset="atac_bmmc", modality="atac", min_genes=richest + 1)
    assert_one_line(err.value, "atac_bmmc", "no cell passes QC", f"richest cell has {richest} ",
                    fix="lower min_genes")


# ------------------------------------------------------------------------------ missing columns
@pytest.mark.parametrize("role", ["label", "batch"])
def test_missing_obs_column(pancreas, tmp_path, role):
    src = tmp_path / "p.h5ad"
    pancreas[:50].copy().write_h5ad(src)
    out = tmp_path / "counts.h5ad"
    with pytest.raises(InputError) as err:
        materialize(src, out, "pancreas", **{f"{role}_key": "celltype"})
    msg = assert_one_line(err.value, "pancreas", "p.h5ad", "'celltype'", fix=f"{role}_key")
    assert "clusters" in msg  # the columns that do exist are listed
    assert_no_output(out)
    with pytest.raises(InputError):
        preprocess(pancreas, dataset="pancreas", modality="rna", **{f"{role}_key": "celltype"})


# ------------------------------------------------------------------------------------------ GEO
def test_geo_accession_does_not_exist(server, tmp_path):
    with pytest.raises(InputError) as err:
        fetch(server, tmp_path, accession="GSE424242")
    assert_one_line(err.value, "bad_geo", "GSE424242", "404", fix="accession")
    assert list(tmp_path.iterdir()) == []


def test_geo_gsm_does_not_exist(server, tmp_path):
    with pytest.raises(InputError) as err:
        fetch(server, tmp_path, accession="GSM424242")
    assert_one_line(err.value, "bad_geo", "GSM424242", fix="accession")
    assert not (tmp_path / "manifest.tsv").exists()


def test_geo_gsm_query_answers_without_a_record(server, tmp_path):
    # NCBI's query page can answer an unknown accession with a page of text instead of a 404
    (server.root / "query" / "GSM424243.txt").write_text("<html>Could not find a public or private accession</html>\n")
    with pytest.raises(InputError) as err:
        fetch(server, tmp_path, accession="GSM424243")
    assert_one_line(err.value, "bad_geo", "GSM424243", "no GSM424243 record", fix="accession")
    assert list(tmp_path.iterdir()) == []


def test_geo_no_supplementary_matches_real_series(server, tmp_path):
    with pytest.raises(InputError) as err:
        fetch(server, tmp_path, accession="GSE105845", pattern=r"_matrix\.mtx\.gz$")
    # the listing comes from the real SOFT file: its one supplementary file is named
    assert_one_line(err.value, "bad_geo", "GSE105845", r"_matrix\.mtx\.gz$", "GSE105845_RAW.tar",
                    fix="pattern")
    assert not (tmp_path / "manifest.tsv").exists()


def test_geo_download_stays_truncated(server, tmp_path):
    name = f"{GSMS[0]}_matrix.mtx.gz"
    server.faults[name] = "truncate_always"
    with pytest.raises(InputError) as err:
        fetch(server, tmp_path, pattern=r"^GSM", retries=2)
    assert_one_line(err.value, "bad_geo", name, "3 attempts", fix="rerun")
    assert not (tmp_path / "manifest.tsv").exists() and not (tmp_path / name).exists()
    assert len([r for r in server.requests if r[0].endswith(name)]) == 3


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("part", ["matrix.mtx.gz", "features.tsv.gz"])
def test_geo_corrupted_gz(server, tmp_path, part):
    fetch(server, tmp_path, pattern=r"^GSM")
    victim = tmp_path / f"{GSMS[1]}_{part}"
    _truncate(victim)
    with pytest.raises(InputError) as err:
        assemble_geo(tmp_path, dataset="bad_geo")
    assert_one_line(err.value, "bad_geo", victim.name, fix="delete it and rerun to download again")


def test_geo_corrupted_tar(server, tmp_path):
    fetch(server, tmp_path, pattern=r"_RAW\.tar$")
    tar = tmp_path / f"{ACC}_RAW.tar"
    _truncate(tar)
    with pytest.raises(InputError) as err:
        assemble_geo(tmp_path, dataset="bad_geo")
    assert_one_line(err.value, "bad_geo", tar.name, fix="delete it and rerun to download again")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{ACC}_RAW.tar", f"{ACC}_family.soft.gz", "manifest.tsv", "samples.tsv"])  # no half extraction


def test_geo_assemble_without_manifest(tmp_path):
    with pytest.raises(InputError) as err:
        assemble_geo(tmp_path, dataset="bad_geo")
    assert_one_line(err.value, "bad_geo", "manifest.tsv", fix="rerun the download")


# ----------------------------------------------------------------------------------------- h5ad
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupted_h5ad(pancreas, tmp_path, damage):
    src = tmp_path / "counts.h5ad"
    write_h5ad_atomic(pancreas[:300].copy(), src)
    if damage == "truncated":
        _truncate(src)
    else:
        src.write_bytes(b"\x00not an h5ad\x00" * 100)
    with pytest.raises(InputError) as err:
        read_h5ad_checked(src, dataset="pancreas")
    assert_one_line(err.value, "pancreas", "counts.h5ad", fix="delete it")
    out = tmp_path / "out" / "counts.h5ad"
    with pytest.raises(InputError):
        materialize(src, out, "pancreas")
    assert_no_output(out)


# ----------------------------------------------------------- per-sample metadata of some samples only
def test_geo_characteristics_of_some_samples_only_stay_missing(server, tmp_path, pancreas):
    """A GSM without a characteristic gives its cells a missing value (NaN), not the text 'NA' or 'nan', and
    no sample is dropped; a value written 'NA' in GEO stays that text. CONSTRUCTED series: real pancreas
    counts, made-up accession and SOFT text."""
    import scipy.sparse as sp

    from geo_server import _gz_bytes, _triplet_bytes, range_dir, series_dir

    acc, gsms = "GSE999061", ["GSM99906101", "GSM99906102", "GSM99906103"]
    characteristics = [["cell type: alpha", "batch: b1"], ["batch: b2"], ["cell type: NA", "batch: b1"]]
    sdir = series_dir(server.root, acc)
    (sdir / "suppl").mkdir(parents=True)
    (sdir / "soft").mkdir(parents=True)
    ftp = f"ftp://ftp.ncbi.nlm.nih.gov/geo/series/{range_dir(acc)}/{acc}/suppl"
    lines = [f"^SERIES = {acc}", "!Series_title = constructed", f"!Series_geo_accession = {acc}",
             *(f"!Series_sample_id = {g}" for g in gsms)]
    for i, gsm in enumerate(gsms):
        sub = pancreas[i * 20:(i + 1) * 20]
        for part, data in _triplet_bytes(sp.csr_matrix(sub.X), list(sub.obs_names), list(sub.var_names)).items():
            (sdir / "suppl" / f"{gsm}_{part}").write_bytes(data)
            lines.append(f"!Series_supplementary_file = {ftp}/{gsm}_{part}")
    for gsm, chars in zip(gsms, characteristics):
        lines += [f"^SAMPLE = {gsm}", f"!Sample_title = {gsm}", f"!Sample_geo_accession = {gsm}",
                  *(f"!Sample_characteristics_ch1 = {c}" for c in chars), "!Sample_data_row_count = 0"]
    (sdir / "soft" / f"{acc}_family.soft.gz").write_bytes(_gz_bytes(("\n".join(lines) + "\n").encode()))

    fetch(server, tmp_path, accession=acc)
    adata = validate_counts(assemble_geo(tmp_path, dataset="meta"), dataset="meta", source=tmp_path,
                            label_key="cell_type", batch_key="batch")
    assert adata.n_obs == 60
    by_sample = adata.obs.groupby("sample", observed=True)["cell_type"]
    assert by_sample.apply(lambda s: s.isna().sum()).to_dict() == {gsms[0]: 0, gsms[1]: 20, gsms[2]: 0}
    assert set(adata.obs["cell_type"].dropna()) == {"alpha", "NA"}
    assert adata.obs["batch"].notna().all()
