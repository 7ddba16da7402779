"""Run the real workflow (snakemake CLI) in a scratch directory on a test registry."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "resources"
REGISTRY_COLUMNS = ["dataset", "modality", "source", "accession", "path", "label_key", "batch_key", "pattern",
                    "max_cells"]


def write_registry(path: Path, rows: list[dict]) -> Path:
    lines = ["\t".join(REGISTRY_COLUMNS)]
    lines += ["\t".join(str(row.get(col, "")) for col in REGISTRY_COLUMNS) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def shipped_rows(max_cells: int) -> list[dict]:
    """The three shipped datasets, subsampled to ``max_cells`` cells each."""
    return [
        dict(dataset="pancreas", modality="rna", source="file", path=RESOURCES / "pancreas.h5ad",
             label_key="clusters", max_cells=max_cells),
        dict(dataset="cellbench", modality="rna", source="file", path=RESOURCES / "cellbench.h5ad",
             label_key="cell_line", batch_key="batch", max_cells=max_cells),
        dict(dataset="atac_bmmc", modality="atac", source="file", path=RESOURCES / "atac_bmmc.h5ad",
             label_key="cell_type", batch_key="Group", max_cells=max_cells),
    ]


def write_config(workdir: Path, **overrides) -> Path:
    """The default config with the given keys replaced, written into ``workdir``."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(overrides)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# Under `pytest -n N` (pytest-xdist) each of the N workers is one core's share of the machine, so a workflow a
# test starts there gets one core: the workers together never run more threads than there are cores.
WORKER_CORES = 1 if os.environ.get("PYTEST_XDIST_WORKER") else None


def cap_cores(args) -> list[str]:
    """Snakemake arguments with ``--cores N`` lowered to this test process's share of the machine."""
    args = [str(a) for a in args]
    if WORKER_CORES is not None:
        for i in range(len(args) - 1):
            if args[i] == "--cores":
                args[i + 1] = str(min(int(args[i + 1]), WORKER_CORES))
    return args


def snakemake(workdir: Path, configfile: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(configfile), *cap_cores(args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def ci_root(root: Path) -> Path:
    """A scratch copy of the CI test configuration: ``root/.test/config`` from the repository's ``.test/``, and
    ``root/resources`` the repository's (the .test registry reads ``../resources/``). Run it from ``root``
    with ``--directory .test``, as the snakemake-workflows catalogue does; returns ``root/.test``."""
    import shutil

    shutil.copytree(REPO / ".test" / "config", root / ".test" / "config")
    (root / "resources").symlink_to(RESOURCES)
    return root / ".test"
