"""The latent file of a run (``results/models/{dataset}/{method}/seed{seed}/latent.npz``): the arrays a method
returned, or a failure record, and the run's convergence records. numpy only, so that the failure records
(``livaebench.failures``) and the scripts that only read latents do not load anndata."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np


# latent.npz entry holding the run's convergence records (JSON text), kept apart from the arrays
CONVERGENCE_KEY = "convergence"


def save_latents(path: str | Path, embeddings: dict[str, np.ndarray], convergence: list | None = None) -> None:
    """Write the arrays a method returned as one .npz, atomically (no partial file on failure).

    ``convergence``: the run's convergence records (``registry.CONVERGENCE_FILE``; [] for a non-iterative
    method), stored as JSON text so that they travel with the latents to the embedding and the metrics.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(embeddings)
    if convergence is not None:
        arrays[CONVERGENCE_KEY] = np.array(json.dumps(convergence, default=float))
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_latents(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a latent file (or a failure record's ``status`` and ``reason``), without the records."""
    with np.load(path) as data:
        return {key: data[key] for key in data.files if key != CONVERGENCE_KEY}


def load_convergence(path: str | Path) -> list[dict] | None:
    """The convergence records of a latent file; None when it has none (a failure record, an older file)."""
    with np.load(path) as data:
        if CONVERGENCE_KEY not in data.files:
            return None
        return parse_convergence(str(data[CONVERGENCE_KEY]))


def parse_convergence(text: str | None) -> list[dict] | None:
    """Records from their JSON text (as ``latent.npz`` and the embedding's ``uns`` keep them); None if absent."""
    if text is None or not str(text).strip():
        return None
    records = json.loads(str(text))
    return list(records) if isinstance(records, list) else None
