"""Shared fixtures: paths of the repository and of the real shipped datasets."""
from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from geo_server import add_real_soft, build_constructed_series, serve
from livaebench.data.preprocess import preprocess

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "resources"

# Tests share 2 cores: keep numeric libraries to one thread each (torch jobs included).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets shipped with the project in resources/ (licence notes in resources/README.md)."""
    return RESOURCES


@pytest.fixture(scope="session")
def tiny_rna(shared_data):
    """300 real pancreas cells (seeded draw), 200 HVGs, through the project's preprocessing."""
    raw = ad.read_h5ad(shared_data / "pancreas.h5ad")
    rows = np.sort(np.random.default_rng(0).choice(raw.n_obs, 300, replace=False))
    return preprocess(raw[rows].copy(), dataset="pancreas", modality="rna", label_key="clusters",
                      n_features=200, min_genes=50)


@pytest.fixture(scope="session")
def tiny_atac(shared_data):
    raw = ad.read_h5ad(shared_data / "atac_bmmc.h5ad")
    rows = np.sort(np.random.default_rng(0).choice(raw.n_obs, 200, replace=False))
    return preprocess(raw[rows].copy(), dataset="atac_bmmc", modality="atac", label_key="cell_type",
                      n_features=300)


@pytest.fixture(scope="session")
def pancreas(shared_data):
    """The real pancreas counts (read-only: tests copy before changing anything)."""
    return ad.read_h5ad(shared_data / "pancreas.h5ad")


@pytest.fixture(scope="session")
def cellbench(shared_data):
    return ad.read_h5ad(shared_data / "cellbench.h5ad")


@pytest.fixture(scope="session")
def atac(shared_data):
    return ad.read_h5ad(shared_data / "atac_bmmc.h5ad")


GEO_SERIES = "GSE999001"  # the constructed series served by the `geo` fixture (see tests/test_geo.py)
GEO_CELLS_PER_SAMPLE = 100


@pytest.fixture(scope="session")
def geo(tmp_path_factory, shared_data):
    """A real HTTP server on 127.0.0.1 serving a GEO-like tree: the constructed GSE999001 and the real
    GSE105845 family SOFT."""
    root = tmp_path_factory.mktemp("geo_root")
    build_constructed_series(root, shared_data / "pancreas.h5ad", GEO_SERIES, n_samples=2,
                             cells_per_sample=GEO_CELLS_PER_SAMPLE)
    add_real_soft(root, REPO / "tests" / "data" / "geo" / "GSE105845_family.soft", "GSE105845")
    with serve(root) as srv:
        srv.root = root
        yield srv


@pytest.fixture
def site(tmp_path):
    """A fresh, empty GEO-like server per test (tests publish and change the files it serves)."""
    root = tmp_path / "root"
    with serve(root) as srv:
        srv.root = root
        yield srv


@pytest.fixture
def server(geo):
    """The GEO server with no injected faults and an empty request log."""
    geo.faults.clear()
    geo.requests.clear()
    return geo


# `pytest -n auto --dist loadfile` (the README's test command) hands whole files to the workers in collection
# order, two to each worker at the start. The longest files (measured with --durations) go first, then every
# other file that runs real workflows, clusters or installs, then the rest, so that no long file starts last and
# leaves one worker running alone at the end. The end-to-end run (test_workflow.py, 320-390 s on one core) is
# queued with the shorter of the next files; the SLURM test mostly waits for its cluster. Within a file the
# order is unchanged.
LONGEST_FILES = ("test_workflow.py", "test_slurm.py", "test_embedding.py", "test_readme_replay.py", "test_planning.py")
SLOW_MARKERS = ("slurm", "replay", "workflow")


def pytest_collection_modifyitems(config, items):
    slow_files = {item.path for item in items if any(item.get_closest_marker(m) for m in SLOW_MARKERS)}

    def rank(item):
        if item.path.name in LONGEST_FILES:
            return LONGEST_FILES.index(item.path.name)
        return len(LONGEST_FILES) + (item.path not in slow_files)

    items.sort(key=rank)  # stable
