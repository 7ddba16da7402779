"""From a registry row to the validated raw-count AnnData of ``results/data/{dataset}/counts.h5ad``."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..labels import observed_label_key
from .geo import assemble_geo, extract_limits
from .io import read_counts, validate_counts


def stratified_rows(strata: np.ndarray, n_keep: int, seed: int) -> np.ndarray:
    """Row indices (sorted) of a seeded subsample of ``n_keep`` rows, each stratum kept in proportion.

    Each stratum gets the floor of its proportional share, and the rows left over go to the strata with
    the largest remainders (Hamilton's method; ties by stratum order), so the sizes sum to ``n_keep``
    exactly and every stratum is within one cell of its proportional share.
    """
    names, codes, sizes = np.unique(strata, return_inverse=True, return_counts=True)
    share = sizes * (n_keep / len(strata))
    quota = np.floor(share).astype(int)
    leftover = n_keep - int(quota.sum())
    quota[np.argsort(-(share - quota), kind="stable")[:leftover]] += 1
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(codes == k), quota[k], replace=False) for k in range(len(names))]
    return np.sort(np.concatenate(picked))


def subsample_cells(adata, max_cells: int | None, seed: int, log: logging.Logger | None = None,
                    strata_keys: tuple[str, ...] = ()):
    """Seeded subsample of at most ``max_cells`` cells (kept in their original order), stratified by the
    ``obs`` columns ``strata_keys`` (label and batch) so that the subsample keeps their proportions."""
    if not max_cells or adata.n_obs <= max_cells:
        return adata
    keys = [k for k in strata_keys if k and k in adata.obs]
    strata = (adata.obs[keys].astype(str).agg("|".join, axis=1).to_numpy() if keys
              else np.zeros(adata.n_obs, dtype=int))
    rows = stratified_rows(strata, int(max_cells), seed)
    if log:
        by = f"stratified by {', '.join(keys)}" if keys else "not stratified: no label or batch column yet"
        log.info(f"subsampled {max_cells} of {adata.n_obs} cells (seed {seed}, registry max_cells, {by})")
    return adata[rows].copy()


def assemble_counts(row: dict, source_path: str | Path, *, seed: int = 0, log: logging.Logger | None = None,
                    geo: dict | None = None):
    """Read a dataset as its registry row describes (local file or GEO download folder) and validate it.

    ``geo`` is the workflow's ``geo:`` config; its archive caps apply to GEO downloads.
    """
    dataset = row["dataset"]
    if row["source"] == "geo":
        adata = assemble_geo(source_path, dataset=dataset, orientation=row.get("orientation") or "auto",
                             pattern=row.get("pattern") or "auto", samples=row.get("samples") or "",
                             **extract_limits(geo or {}))
    else:
        adata = read_counts(source_path, dataset=dataset, orientation=row.get("orientation") or "auto")
    label_key = observed_label_key(row.get("label_key", ""))  # pseudo-labels come at preprocessing
    adata = validate_counts(adata, dataset=dataset, source=str(source_path),
                            label_key=label_key, batch_key=row.get("batch_key", ""))
    adata = subsample_cells(adata, int(row["max_cells"]) if row.get("max_cells") else None, seed, log,
                            strata_keys=(label_key, row.get("batch_key", "")))
    adata.uns["livaebench"] = {"dataset": dataset, "modality": row["modality"],
                               "label_key": label_key, "batch_key": row.get("batch_key", "")}
    if log:
        log.info(f"{dataset}: {adata.n_obs} cells x {adata.n_vars} features from {source_path}")
    return adata
