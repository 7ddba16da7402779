"""Job resources from the method contract and the size of the dataset a job reads.

Snakemake evaluates a rule's resource functions when a job is about to run, so the preprocessed
file exists then and its shape is read from the HDF5 header (no matrix is loaded). While planning
(dry runs) it does not exist yet: the estimate falls back to the registry's ``max_cells`` or a
typical dataset size.
"""
from __future__ import annotations

from pathlib import Path

FALLBACK_SHAPE = (20_000, 5_000)  # cells x features assumed before the preprocessed file exists


def h5ad_shape(path: str | Path) -> tuple[int, int] | None:
    """(n_obs, n_vars) of an .h5ad from its header, or None when it cannot be read."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            x = handle["X"]
            shape = x.attrs["shape"] if isinstance(x, h5py.Group) else x.shape
            return int(shape[0]), int(shape[1])
    except (OSError, KeyError, ValueError):
        return None


def dataset_shape(path: str | Path | None, max_cells: int | None = None) -> tuple[int, int]:
    shape = h5ad_shape(path) if path and Path(path).is_file() else None
    if shape is not None:
        return shape
    return (min(max_cells, FALLBACK_SHAPE[0]) if max_cells else FALLBACK_SHAPE[0]), FALLBACK_SHAPE[1]


def train_resources(method, input_path: str | Path | None, attempt: int = 1,
                    max_cells: int | None = None) -> dict[str, int]:
    """mem_mb and runtime (minutes) of one training job of ``method`` (a registry ``Method``)."""
    n_cells, n_features = dataset_shape(input_path, max_cells)
    return method.resources(n_cells, n_features, attempt)
