"""Batch mixing: iLISI (docs/methods.md §3.4; paper eq. 20).

For each cell: its k = 90 nearest neighbours in Z (exact search, the cell itself excluded), Gaussian
weights p_j ∝ exp(−β d_j) on their Euclidean distances with β set by binary search so that the
perplexity exp(H(p)) is 30, and the inverse Simpson index 1 / Σ_b (Σ_{j in batch b} p_j)² of the batch
labels of the neighbours. The dataset score is the median over cells, reported scaled as
(median − 1)/(B − 1) in [0, 1] (higher = better mixed) and raw in [1, B].

The kernel, the search and the scaling follow scib-metrics (``scib_metrics.ilisi_knn``): β starts at 1
and is doubled/halved until bracketed, then bisected, until |H − log 30| < 1e-5 or 50 steps. Here the
search runs for all cells at once (vectorised over a cells × k array) in float64, and the distances of
each cell are shifted by their minimum first: the weights and the entropy are unchanged by that shift,
but exp(−β d) no longer underflows to 0 for far-apart cells (scib then returns a LISI of −1).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from .requirements import Requirement

N_NEIGHBORS = 90
PERPLEXITY = 30.0

# What iLISI needs (requirements.py; docs/methods.md §3.7): two batches, and a neighbourhood whose
# perplexity reaches the number of batches, since the median LISI never exceeds the perplexity.
REQUIREMENT = Requirement(
    min_batches=2, cells="batch", perplexity_reaches_batches=True,
    why="mixing needs 2 batches; the median LISI never exceeds the perplexity, so a perplexity below B "
        "caps the scaled score under 1")
REQUIREMENTS: dict[str, Requirement] = {"iLISI": REQUIREMENT, "iLISI_raw": REQUIREMENT,
                                        "iLISI_n{s}": REQUIREMENT}


def knn(z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of every cell among the others: (distances, indices), n × k.

    The query asks for k + 1 and drops the cell itself; when duplicates push the cell out of its own
    k + 1 list, the farthest column is dropped instead.
    """
    z = np.asarray(z, dtype=np.float64)
    n = len(z)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(z)
    dist, idx = nn.kneighbors(z)
    is_self = idx == np.arange(n)[:, None]
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True
    keep = ~is_self
    return dist[keep].reshape(n, k), idx[keep].reshape(n, k)


def _perplexity_weights(dist: np.ndarray, perplexity: float, tol: float = 1e-5,
                        max_steps: int = 50) -> np.ndarray:
    """Row-normalised weights exp(−β_i d_ij) with β_i per row giving entropy log(perplexity)."""
    d = dist - dist.min(axis=1, keepdims=True)
    n = len(d)
    target = np.log(perplexity)
    beta = np.ones(n)
    lo = np.full(n, -np.inf)
    hi = np.full(n, np.inf)

    def entropy_and_weights(rows, b):
        p = np.exp(-d[rows] * b[:, None])
        s = p.sum(axis=1)
        return np.log(s) + b * (d[rows] * p).sum(axis=1) / s, p / s[:, None]

    h, p = entropy_and_weights(slice(None), beta)
    active = np.abs(h - target) >= tol
    for _ in range(max_steps):
        a = np.flatnonzero(active)
        if a.size == 0:
            break
        b = beta[a]
        too_flat = h[a] > target  # entropy too high: sharpen the kernel (raise beta)
        lo[a] = np.where(too_flat, b, lo[a])
        hi[a] = np.where(too_flat, hi[a], b)
        beta[a] = np.where(
            too_flat,
            np.where(np.isinf(hi[a]), b * 2.0, (b + hi[a]) / 2.0),
            np.where(np.isinf(lo[a]), b / 2.0, (b + lo[a]) / 2.0),
        )
        h[a], p[a] = entropy_and_weights(a, beta[a])
        active[a] = np.abs(h[a] - target) >= tol
    return p


def lisi_per_cell(dist: np.ndarray, idx: np.ndarray, codes: np.ndarray, n_codes: int,
                  perplexity: float = PERPLEXITY) -> np.ndarray:
    """Inverse Simpson index of ``codes`` (integers 0..n_codes-1) around each cell, from its kNN."""
    p = _perplexity_weights(np.asarray(dist, dtype=np.float64), perplexity)
    neigh = codes[idx]
    share = np.stack([(p * (neigh == c)).sum(axis=1) for c in range(n_codes)], axis=1)
    return 1.0 / (share**2).sum(axis=1)


def ilisi(z: np.ndarray, batches, n_neighbors: int = N_NEIGHBORS,
          perplexity: float = PERPLEXITY) -> tuple[float, float, np.ndarray]:
    """(scaled iLISI, raw median iLISI, per-cell LISI) of the batch labels ``batches`` on ``z``.

    Needs at least 2 batches (raises ValueError otherwise). With fewer than n_neighbors + 1 cells the
    neighbourhood is all other cells and the perplexity at most a third of it.
    """
    codes = np.asarray(pd.Categorical(np.asarray(batches)).codes)
    if (codes < 0).any():
        raise ValueError("batch labels contain missing values; drop those cells first")
    n_b = int(codes.max()) + 1 if codes.size else 0
    if n_b < 2:
        raise ValueError(f"iLISI needs at least 2 batches, got {n_b}")
    k = min(n_neighbors, len(z) - 1)
    dist, idx = knn(z, k)
    # With fewer neighbours than 3 × perplexity the target entropy may be out of reach; scale it down
    # the way scib-metrics chooses its default (k / 3).
    per_cell = lisi_per_cell(dist, idx, codes, n_b, perplexity=min(perplexity, k / 3.0))
    raw = float(np.median(per_cell))
    return (raw - 1.0) / (n_b - 1.0), raw, per_cell
