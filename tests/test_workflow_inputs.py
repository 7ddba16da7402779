"""The workflow's data rules for real: a GEO series from a local HTTP server, and bad input stopping one dataset.

GEO: GSE999001 is a CONSTRUCTED series (tests/geo_server.py: real pancreas counts, made-up accession,
SOFT text and characteristics) served on 127.0.0.1; no real GEO host is contacted.
"""
from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from geo_server import build_constructed_series, serve
from workflow_helpers import RESOURCES, snakemake, write_config, write_registry


@pytest.fixture(scope="module")
def geo_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("geo_root")
    build_constructed_series(root, RESOURCES / "pancreas.h5ad", "GSE999001", n_samples=2, cells_per_sample=150)
    with serve(root) as server:
        yield server


@pytest.mark.workflow
def test_geo_dataset_is_downloaded_assembled_and_preprocessed(tmp_path, geo_server):
    registry = write_registry(tmp_path / "datasets.tsv", [
        dict(dataset="geo_pancreas", modality="rna", source="geo", accession="GSE999001", pattern="^GSM",
             label_key="", batch_key="sample"),
        dict(dataset="no_such_series", modality="rna", source="geo", accession="GSE999777", label_key=""),
    ])
    config = write_config(tmp_path, datasets=str(registry), methods=["pca"],
                          geo={"base_url": geo_server.base_url, "retries": 1, "timeout": 10})
    result = snakemake(tmp_path, config, "--cores", "2", "--keep-going", "results/data/geo_pancreas/preprocessed.h5ad",
                       "results/data/no_such_series/counts.h5ad")
    assert result.returncode != 0  # the missing series fails ...
    counts = ad.read_h5ad(tmp_path / "results/data/geo_pancreas/counts.h5ad")  # ... the good one is complete
    assert counts.n_obs == 300 and set(counts.obs["sample"]) == {"GSM99900101", "GSM99900102"}
    source = ad.read_h5ad(RESOURCES / "pancreas.h5ad")[:300]
    np.testing.assert_array_equal(counts.X.toarray(), source.X.toarray())
    prep = ad.read_h5ad(tmp_path / "results/data/geo_pancreas/preprocessed.h5ad")
    assert prep.uns["livaebench"]["batch_key"] == "sample" and "counts" in prep.layers
    log = (tmp_path / "logs/fetch_geo/no_such_series.log").read_text().strip().splitlines()
    assert "GSE999777" in log[-1] and "no_such_series" in log[-1]
    assert not (tmp_path / "results/downloads/no_such_series").exists()
    assert not (tmp_path / "results/data/no_such_series").exists()


@pytest.mark.workflow
def test_bad_counts_stop_only_their_dataset(tmp_path):
    bad = ad.read_h5ad(RESOURCES / "pancreas.h5ad")[:200].copy()
    bad.X = bad.X.astype(np.float32) * 0.5  # fractional "counts": normalised data given as raw
    bad.write_h5ad(tmp_path / "halved.h5ad")
    registry = write_registry(tmp_path / "datasets.tsv", [
        dict(dataset="halved", modality="rna", source="file", path=tmp_path / "halved.h5ad", label_key="clusters"),
        dict(dataset="pancreas", modality="rna", source="file", path=RESOURCES / "pancreas.h5ad",
             label_key="clusters", max_cells=200),
        dict(dataset="wrong_label", modality="rna", source="file", path=RESOURCES / "pancreas.h5ad",
             label_key="celltype", max_cells=200),
    ])
    config = write_config(tmp_path, datasets=str(registry), methods=["pca"])
    result = snakemake(tmp_path, config, "--cores", "2", "--keep-going",
                       *[f"results/embeddings/{d}/pca/seed0.h5ad" for d in ("halved", "pancreas", "wrong_label")])
    assert result.returncode != 0
    assert (tmp_path / "results/embeddings/pancreas/pca/seed0.h5ad").is_file()
    for dataset, words in [("halved", ["fractional", "halved.h5ad"]), ("wrong_label", ["celltype", "pancreas.h5ad"])]:
        assert not (tmp_path / f"results/data/{dataset}").exists() or not any(
            (tmp_path / f"results/data/{dataset}").iterdir())
        last = (tmp_path / f"logs/assemble_counts/{dataset}.log").read_text().strip().splitlines()[-1]
        assert "ERROR" in last and dataset in last and "Fix:" in last
        assert all(word in last for word in words), last
        assert last.split("ERROR ", 1)[1] in result.stderr  # the same one line on the console


def test_only_the_downloads_are_local_rules(repo):
    """On a cluster the downloads stay on the submit host (compute nodes often have no internet), and so does the
    cost forecast: it is asked for before submitting and reads only small tables."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(snakefile=repo / "Snakefile", workdir=repo, resource_settings=ResourceSettings(),
                                config_settings=ConfigSettings(config={"methods": ["pca"]}))
        # Snakemake exposes the localrules set only as this attribute.
        assert workflow._workflow._localrules == {"fetch_geo", "list_geo_files", "geo_files", "forecast"}
