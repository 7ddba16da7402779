"""A GEO download cut halfway resumes from its partial file when the workflow is rerun (snakemake CLI).

GSE999001 is a CONSTRUCTED series (tests/geo_server.py: real pancreas counts, made-up accession and SOFT
text) served on 127.0.0.1; the server counts the bytes it sends, so the test sees what the rerun fetched.
"""
from __future__ import annotations

import pytest

from geo_server import build_constructed_series, serve, series_dir
from workflow_helpers import RESOURCES, snakemake, write_config, write_registry

ACC = "GSE999001"
NAME = f"{ACC}_RAW.tar"


@pytest.mark.workflow
def test_cut_download_resumes_on_rerun(tmp_path):
    root = tmp_path / "geo_root"
    build_constructed_series(root, RESOURCES / "pancreas.h5ad", ACC, n_samples=2, cells_per_sample=100)
    served = (series_dir(root, ACC) / "suppl" / NAME).read_bytes()
    work = tmp_path / "work"
    work.mkdir()
    registry = write_registry(work / "datasets.tsv", [
        dict(dataset="geo_raw", modality="rna", source="geo", accession=ACC, pattern=r"_RAW\.tar$",
             label_key="", batch_key="sample")])
    output, cache = work / "results/downloads/geo_raw", work / "results/downloads/.partial/geo_raw"
    with serve(root) as server:
        # Only the download rule runs: no comparison families, so the plan does not depend on them.
        config = write_config(work, datasets=str(registry), methods=["pca"], paper_comparisons=[],
                              geo={"base_url": server.base_url, "retries": 0, "timeout": 10})
        # First run: the server drops the connection halfway through the archive; no retries are left.
        server.faults[NAME] = "truncate_once"
        first = snakemake(work, config, "--cores", "1", "results/downloads/geo_raw")
        assert first.returncode != 0
        last = (work / "logs/fetch_geo/geo_raw.log").read_text().strip().splitlines()[-1]
        assert "ERROR" in last and "geo_raw" in last and NAME in last and "Fix:" in last
        assert not output.exists()  # Snakemake removed the failed output; the partial file lives on
        half = (cache / f"{NAME}.part").stat().st_size
        assert 0 < half < len(served) and server.sent(NAME) == half

        # Rerun: only the missing bytes are requested, and the complete SOFT is not fetched again.
        server.transfers.clear()
        second = snakemake(work, config, "--cores", "1", "results/downloads/geo_raw")
        assert second.returncode == 0, second.stderr[-3000:]
        assert [(t["path"].rsplit("/", 1)[1], t["range"], t["status"]) for t in server.transfers] == \
            [(NAME, f"bytes={half}-", 206)]
        assert server.sent(NAME) == len(served) - half < len(served)
    assert (output / NAME).read_bytes() == served
    assert (output / "manifest.tsv").is_file() and not cache.exists()
