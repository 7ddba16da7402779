"""The GEO path (fetch_geo + assemble_geo) against a real HTTP server on 127.0.0.1.

What is real and what is constructed:
- GSE105845: a REAL GEO family SOFT (tests/data/geo/, from GEOparse's test suite), served gzipped where
  GEO keeps it. It is a bulk miRNA-seq series; its only supplementary file is GSE105845_RAW.tar.
- GSE999001 and its samples GSM99900101/GSM99900102: a CONSTRUCTED series (tests/geo_server.py). The
  counts are real (the first 2 x 100 cells of resources/pancreas.h5ad, all 2000 genes); accession, SOFT
  text, characteristics and file layout are made up to look like a 10x series on GEO.
"""
from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geo_server import (SERIES_SAMPLES_CHARACTERISTICS, constructed_gsms, sample_dir, series_dir)
from livaebench.data.geo import assemble_geo, fetch_geo
from livaebench.data.geo_soft import geo_range_dir, list_geo_supplementary, map_geo_url, soft_location
from livaebench.data.io import validate_counts, write_h5ad_atomic, read_h5ad_checked
from livaebench.errors import InputError

HERE = Path(__file__).resolve().parent
RES = HERE.parent / "resources"
REAL_SOFT = HERE / "data" / "geo" / "GSE105845_family.soft"
ACC = "GSE999001"
GSMS = constructed_gsms(ACC)
CELLS = 100  # = conftest.GEO_CELLS_PER_SAMPLE


def fetch(server, dest, accession=ACC, **kw):
    kw.setdefault("backoff", 0.01)
    kw.setdefault("progress", False)
    return fetch_geo(accession, dest, dataset="geo_test", base_url=server.base_url, **kw)


def expected_counts(pancreas, n_samples=2) -> np.ndarray:
    return pancreas.X[: n_samples * CELLS].toarray()


# ----------------------------------------------------------------------------- URLs and parsing
def test_geo_layout_helpers():
    assert geo_range_dir("GSE132188") == "GSE132nnn"
    assert geo_range_dir("GSE123") == "GSEnnn"
    assert soft_location("GSE132188")[0] == \
        "https://ftp.ncbi.nlm.nih.gov/geo/series/GSE132nnn/GSE132188/soft/GSE132188_family.soft.gz"
    assert soft_location("GSM1", "http://mirror/geo/")[0].startswith("http://mirror/geo/query/acc.cgi?acc=GSM1&")
    assert map_geo_url("ftp://ftp.ncbi.nlm.nih.gov/geo/series/GSE1nnn/GSE1000/suppl/a.gz", "http://m:1/g/") == \
        "http://m:1/g/series/GSE1nnn/GSE1000/suppl/a.gz"
    assert map_geo_url("https://example.org/a.gz", "http://m") == "https://example.org/a.gz"


def test_real_soft_supplementary_listing():
    files = list_geo_supplementary(REAL_SOFT, base_url="http://mirror/geo")
    # independent reading of the same real file: every !Series_supplementary_file line
    lines = [l.split("=", 1)[1].strip() for l in REAL_SOFT.read_text().splitlines()
             if l.startswith("!Series_supplementary_file")]
    assert [f["name"] for f in files] == [u.rsplit("/", 1)[1] for u in lines] == ["GSE105845_RAW.tar"]
    assert files[0]["url"] == "http://mirror/geo/series/GSE105nnn/GSE105845/suppl/GSE105845_RAW.tar"
    assert files[0]["sample"] == ""


# -------------------------------------------------------------------------------- fetch + assemble
def test_fetch_sample_triplets_and_assemble(server, tmp_path, pancreas):
    files = fetch(server, tmp_path, pattern=r"^GSM\d+_(barcodes|features|matrix)")
    assert sorted(p.name for p in files) == sorted(f"{g}_{part}" for g in GSMS for part in
                                                   ("barcodes.tsv.gz", "features.tsv.gz", "matrix.mtx.gz"))
    manifest = pd.read_csv(tmp_path / "manifest.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(manifest.columns) == ["file", "sample", "url", "bytes"]
    for row in manifest.itertuples():  # sizes and bytes equal the served originals
        served = sample_dir(server.root, row.sample) / "suppl" / row.file
        assert int(row.bytes) == served.stat().st_size
        assert (tmp_path / row.file).read_bytes() == served.read_bytes()
        assert row.url.startswith(server.base_url + "/samples/")
    adata = assemble_geo(tmp_path, dataset="geo_test")
    assert adata.shape == (2 * CELLS, pancreas.n_vars)
    assert list(adata.var_names) == list(pancreas.var_names)
    np.testing.assert_array_equal(adata.X.toarray(), expected_counts(pancreas))
    assert list(adata.obs["sample"]) == [GSMS[0]] * CELLS + [GSMS[1]] * CELLS
    assert list(adata.obs_names[:2]) == [f"{GSMS[0]}_{b}" for b in pancreas.obs_names[:2]]
    # characteristics of the SOFT become obs columns
    for line in SERIES_SAMPLES_CHARACTERISTICS:
        key, value = line.split(": ")
        assert set(adata.obs[key.replace(" ", "_")]) == {value}
    assert list(adata.obs["replicate"].iloc[[0, -1]]) == ["rep1", "rep2"]
    assert (tmp_path / "GSE999001_family.soft.gz").exists()


def test_raw_tar_assembles_like_triplets(server, tmp_path, pancreas):
    fetch(server, tmp_path, pattern=r"_RAW\.tar$")
    manifest = pd.read_csv(tmp_path / "manifest.tsv", sep="\t")
    assert list(manifest["file"]) == [f"{ACC}_RAW.tar"]
    adata = assemble_geo(tmp_path, dataset="geo_test")
    np.testing.assert_array_equal(adata.X.toarray(), expected_counts(pancreas))
    assert list(adata.obs["sample"].cat.categories) == GSMS
    assert "replicate" in adata.obs


def test_series_level_dense_matrix(server, tmp_path, pancreas):
    fetch(server, tmp_path, pattern=r"_counts\.csv\.gz$")
    adata = assemble_geo(tmp_path, dataset="geo_test")
    assert adata.shape == (2 * CELLS, pancreas.n_vars)  # genes x cells on disk, cells x genes here
    np.testing.assert_array_equal(adata.X.toarray(), expected_counts(pancreas))
    assert adata.obs_names[0] == f"{GSMS[0]}_{pancreas.obs_names[0]}"


def test_gsm_accession(server, tmp_path, pancreas):
    fetch(server, tmp_path, accession=GSMS[1])
    adata = assemble_geo(tmp_path, dataset="geo_test")
    np.testing.assert_array_equal(adata.X.toarray(), pancreas.X[CELLS: 2 * CELLS].toarray())
    assert set(adata.obs["sample"]) == {GSMS[1]} and set(adata.obs["replicate"]) == {"rep2"}
    assert any("/query/acc.cgi?acc=" + GSMS[1] in path for path, _, _ in server.requests)


def test_geo_counts_validate_and_write(server, tmp_path, pancreas):
    """The file the workflow's download rule writes: assembled, validated, atomically written."""
    fetch(server, tmp_path / "dl", pattern=r"^GSM")
    adata = validate_counts(assemble_geo(tmp_path / "dl", dataset="geo_test"), dataset="geo_test",
                            source=tmp_path / "dl", label_key="replicate", batch_key="sample")
    out = tmp_path / "counts.h5ad"
    write_h5ad_atomic(adata, out)
    back = read_h5ad_checked(out, dataset="geo_test")
    assert back.X.dtype == np.int32
    np.testing.assert_array_equal(back.X.toarray(), expected_counts(pancreas))


# ------------------------------------------------------------------------------ robust transfers
def test_truncated_transfer_is_resumed_with_range(server, tmp_path):
    name = f"{GSMS[0]}_matrix.mtx.gz"
    server.faults[name] = "truncate_once"
    fetch(server, tmp_path, pattern=re.escape(name))
    served = sample_dir(server.root, GSMS[0]) / "suppl" / name
    assert (tmp_path / name).read_bytes() == served.read_bytes()
    hits = [(rng, status) for path, rng, status in server.requests if path.endswith(name)]
    assert hits[0] == (None, 200)
    half = served.stat().st_size // 2
    assert hits[1] == (f"bytes={half}-", 206)  # resumed where the cut transfer stopped
    assert not list(tmp_path.glob("*.part"))


def test_partial_file_from_earlier_run_is_resumed(server, tmp_path):
    """A run that fails halfway leaves its partial file (and the complete SOFT) in the cache, outside the
    download folder; the next run resumes the file where it stopped and fetches nothing twice."""
    name = f"{ACC}_RAW.tar"
    data = (series_dir(server.root, ACC) / "suppl" / name).read_bytes()
    dest, cache = tmp_path / "dl", tmp_path / "cache"
    server.faults[name] = "truncate_once"
    with pytest.raises(InputError, match="1 attempt"):
        fetch(server, dest, pattern=r"_RAW\.tar$", retries=0, cache_dir=cache)
    assert not dest.exists()  # nothing half-done in the output
    half = (cache / (name + ".part")).stat().st_size
    assert half == len(data) // 2 and (cache / f"{ACC}_family.soft.gz").is_file()
    sidecar = json.loads((cache / (name + ".part.json")).read_text())
    assert sidecar["total"] == len(data) and sidecar["etag"]
    server.requests.clear()
    fetch(server, dest, pattern=r"_RAW\.tar$", cache_dir=cache)
    assert (dest / name).read_bytes() == data
    assert [(p.rsplit("/", 1)[1], r, s) for p, r, s in server.requests] == [(name, f"bytes={half}-", 206)]
    assert not cache.exists()  # cleaned once everything moved into the download folder


def test_server_without_range_support_gets_a_fresh_download(server, tmp_path):
    name = f"{ACC}_RAW.tar"
    data = (series_dir(server.root, ACC) / "suppl" / name).read_bytes()
    server.faults[name] = "truncate_once"
    with pytest.raises(InputError):
        fetch(server, tmp_path / "dl", pattern=r"_RAW\.tar$", retries=0, cache_dir=tmp_path / "cache")
    server.requests.clear()
    server.faults[name] = "ignore_range"
    fetch(server, tmp_path / "dl", pattern=r"_RAW\.tar$", cache_dir=tmp_path / "cache")
    assert (tmp_path / "dl" / name).read_bytes() == data
    assert [(r, s) for p, r, s in server.requests if p.endswith(name)] == [(f"bytes={len(data) // 2}-", 200)]


def test_server_error_is_retried(server, tmp_path):
    name = f"{GSMS[1]}_barcodes.tsv.gz"
    server.faults[name] = "error_once"
    fetch(server, tmp_path, pattern=re.escape(name))
    assert [s for p, _, s in server.requests if p.endswith(name)] == [503, 200]
    assert gzip.decompress((tmp_path / name).read_bytes()).count(b"\n") == CELLS


def test_complete_download_is_not_repeated(server, tmp_path):
    fetch(server, tmp_path, pattern=r"^GSM")
    first = (tmp_path / "manifest.tsv").read_text()
    server.requests.clear()
    fetch(server, tmp_path, pattern=r"^GSM")
    assert server.requests == []  # SOFT and files were complete on disk
    assert (tmp_path / "manifest.tsv").read_text() == first
