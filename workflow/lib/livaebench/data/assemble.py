"""From a registry row to the validated raw-count AnnData of ``results/data/{dataset}/counts.h5ad``."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..labels import observed_label_key
from .geo import assemble_geo, extract_limits
from .io import read_counts, validate_counts


def subsample_cells(adata, max_cells: int | None, seed: int, log: logging.Logger | None = None):
    """Seeded subsample of at most ``max_cells`` cells (kept in their original order)."""
    if not max_cells or adata.n_obs <= max_cells:
        return adata
    rows = np.sort(np.random.default_rng(seed).choice(adata.n_obs, int(max_cells), replace=False))
    if log:
        log.info(f"subsampled {max_cells} of {adata.n_obs} cells (seed {seed}, registry max_cells)")
    return adata[rows].copy()


def assemble_counts(row: dict, source_path: str | Path, *, seed: int = 0, log: logging.Logger | None = None,
                    geo: dict | None = None):
    """Read a dataset as its registry row describes (local file or GEO download folder) and validate it.

    ``geo`` is the workflow's ``geo:`` config; its archive caps apply to GEO downloads.
    """
    dataset = row["dataset"]
    if row["source"] == "geo":
        adata = assemble_geo(source_path, dataset=dataset, orientation=row.get("orientation") or "auto",
                             **extract_limits(geo or {}))
    else:
        adata = read_counts(source_path, dataset=dataset, orientation=row.get("orientation") or "auto")
    label_key = observed_label_key(row.get("label_key", ""))  # pseudo-labels come at preprocessing
    adata = validate_counts(adata, dataset=dataset, source=str(source_path),
                            label_key=label_key, batch_key=row.get("batch_key", ""))
    adata = subsample_cells(adata, int(row["max_cells"]) if row.get("max_cells") else None, seed, log)
    adata.uns["livaebench"] = {"dataset": dataset, "modality": row["modality"],
                               "label_key": label_key, "batch_key": row.get("batch_key", "")}
    if log:
        log.info(f"{dataset}: {adata.n_obs} cells x {adata.n_vars} features from {source_path}")
    return adata
