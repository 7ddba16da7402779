"""Embedding quality of a 2-D view (UMAP, t-SNE) against the latent it was computed from.

Two families (docs/methods.md §3.2):

* distance correlation: Spearman correlation between the upper triangles of the two pairwise
  Euclidean distance matrices (ties get average ranks, as in scipy's ``spearmanr``);
* co-ranking (Lee & Verleysen) with the textbook ranks: ρ_ij is the rank of j among i's neighbours in
  the latent, nearest neighbour = 1; r_ij the same in the view. Q_NX(K) = (1/(K n)) Σ_{a≤K, b≤K} Q_ab,
  LCMC(K) = Q_NX(K) − K/(n−1), K_max = argmax LCMC, Q_local / Q_global the means of Q_NX on either
  side of K_max (K = 1..n−2).

Cost. The co-ranking matrix itself is never built: Σ_{a≤K, b≤K} Q_ab counts the pairs whose larger
rank max(ρ_ij, r_ij) is ≤ K, so one histogram of max(ρ, r) over all ordered pairs gives Q_NX(K) for
every K as a cumulative sum. Ranks are computed a block of rows at a time (``cdist`` on the block,
argsort per row), so memory is O(block × n) and time O(n² log n). The distance correlation needs global
ranks of n(n−1)/2 distances: ~1.2 GB transient at n = 10,000, which is why the panel computes both
families on the same seeded subsample of at most ``max_cells`` cells.

Ties. Ranks are the positions in a *stable* sort of the distances: equally distant neighbours are
ordered by cell index, and a cell is always its own rank 0 (a duplicated cell does not displace it).

Speed. Sorting (key, index) pairs packed into one uint64 is several times faster than ``argsort``
(numpy sorts plain integers with SIMD code). The key is an order-preserving integer image of the
distance truncated to the bits the index leaves free: per row, the float64 bit pattern (50 bits at
10,000 cells, ~11 significant digits); for the n(n−1)/2 distances of the distance correlation, a
fixed-point map of [min, max] (38 bits at 10,000 cells, steps of 4e-12 of the range). Distinct
distances that share a key would come out in index order, so every such collision is re-sorted by
the exact value: the ranks equal those of a stable sort of the exact distances.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist, pdist

from .requirements import Requirement

# Rows per block are chosen so that one block holds about this many distances per space.
_BLOCK_ENTRIES = 2_000_000

# What each score of a view needs (requirements.py; docs/methods.md §3.7), by metric suffix; the panel
# adds the view's obsm key. Cells = the co-ranking subsample. The latent's dimension does not matter:
# a 2-D latent is still re-embedded by UMAP / t-SNE, so no score is fixed by construction.
_CORANKING = Requirement(min_cells=4, cells="dre", why="K = 1..n − 2 must hold a K_max and a K above it")
REQUIREMENTS: dict[str, Requirement] = {
    "dcorr": Requirement(min_cells=3, cells="dre", why="a rank correlation of 3 or more pairwise distances"),
    "qlocal": _CORANKING, "qglobal": _CORANKING, "overall": _CORANKING, "kmax": _CORANKING,
}


def _as_float64(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if x.ndim != 2 or not np.isfinite(x).all():
        raise ValueError("coordinates must be a finite 2-D array (cells × dimensions)")
    return x


def _sq_distances(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances from the cells ``rows`` to every cell (float64, len(rows) × n).

    Every pair is computed directly (no Gram-matrix shortcut), so identical cells get bit-identical
    distances and ties are real ties. Few dimensions: elementwise numpy; more: scipy's cdist.
    """
    if x.shape[1] > 4:
        return cdist(x[rows], x, metric="sqeuclidean")
    d = np.subtract.outer(x[rows, 0], x[:, 0])
    d *= d
    for k in range(1, x.shape[1]):
        t = np.subtract.outer(x[rows, k], x[:, k])
        t *= t
        d += t
    return d


def _index_bits(m: int) -> int:
    return max(1, int(m - 1).bit_length())


def _pack_keys(d: np.ndarray, idx_bits: int) -> np.ndarray:
    """Overwrite non-negative float64 ``d`` (last axis = candidates) with packed uint64 (key, index).

    The float64 bit pattern of x >= 0 is below 2**63 and increases with x; shifting it right by
    idx_bits - 1 keeps its top 64 - idx_bits bits, and +1 reserves key 0 for the cell itself.
    """
    p = d.view(np.uint64)
    p >>= np.uint64(idx_bits - 1)
    p += np.uint64(1)
    p <<= np.uint64(idx_bits)
    p |= np.arange(d.shape[-1], dtype=np.uint64)
    return p


def _row_orders(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Neighbour order of each cell in ``rows``: position p holds the index of the cell with rank p.

    Position 0 is the cell itself, so the nearest other cell has rank 1. Stable semantics (see the
    module docstring). Returns int64 (len(rows) × n).
    """
    n = x.shape[0]
    idx_bits = _index_bits(n)
    packed = _pack_keys(_sq_distances(x, rows), idx_bits)
    packed[np.arange(len(rows)), rows] = 0  # self first, whatever its distance to duplicates
    packed.sort(axis=1)
    same_key = (packed[:, 1:] ^ packed[:, :-1]) < np.uint64(1 << idx_bits)
    packed &= np.uint64((1 << idx_bits) - 1)
    order = packed.view(np.int64)
    # Rows where two candidates share a truncated key: re-sort them by the exact distances.
    for r in np.flatnonzero(same_key.any(axis=1)):
        d = _sq_distances(x, rows[r:r + 1])[0]
        d[rows[r]] = -1.0
        order[r] = np.argsort(d, kind="stable")
    return order


def max_rank_histograms(latent: np.ndarray, views: list[np.ndarray], block_rows: int | None = None) -> list[np.ndarray]:
    """For each view, the histogram h[v] = #{ordered pairs (i, j), i != j : max(rho_ij, r_ij) = v}.

    ``latent`` (n × d) gives rho, each view (n × d') gives r. The latent ranks of a block are computed
    once and shared by all views. Returns int64 arrays of length n (h[0] = 0).
    """
    z = _as_float64(latent)
    vs = [_as_float64(v) for v in views]
    n = z.shape[0]
    for v in vs:
        if v.shape[0] != n:
            raise ValueError(f"view has {v.shape[0]} rows, latent has {n}")
    if block_rows is None:
        block_rows = max(1, _BLOCK_ENTRIES // max(n, 1))
    hists = [np.zeros(n, dtype=np.int64) for _ in vs]
    rho = np.arange(1, n, dtype=np.int32)  # rho of the pair (i, order_z[i, p]) is p, p = 1..n-1
    for start in range(0, n, block_rows):
        rows = np.arange(start, min(start + block_rows, n))
        order_z = _row_orders(z, rows)[:, 1:]
        positions = np.broadcast_to(np.arange(n, dtype=np.int32), (len(rows), n))
        for v, hist in zip(vs, hists):
            rank_v = np.empty((len(rows), n), dtype=np.int32)
            np.put_along_axis(rank_v, _row_orders(v, rows), positions, axis=1)  # invert the permutation
            r = np.take_along_axis(rank_v, order_z, axis=1)  # r of the pairs in latent-rank order
            np.maximum(r, rho, out=r)
            hist += np.bincount(r.ravel(), minlength=n)
    return hists


@dataclass(frozen=True)
class CorankingScores:
    q_nx: np.ndarray  # Q_NX(K) for K = 1..n-2 (index K-1)
    lcmc: np.ndarray
    k_max: int
    q_local: float
    q_global: float


def coranking_scores_from_histogram(hist: np.ndarray) -> CorankingScores:
    """Q_NX, LCMC, K_max, Q_local, Q_global from the max-rank histogram of n cells (length n)."""
    n = len(hist)
    if n < 4:
        raise ValueError(f"co-ranking needs at least 4 cells, got {n}")
    k = np.arange(1, n - 1)  # K = 1..n-2
    within = np.cumsum(hist)[k]  # pairs with both ranks <= K = sum of the K × K block of Q
    q_nx = within / (k * float(n))
    lcmc = q_nx - k / (n - 1.0)
    k_max = int(k[np.argmax(lcmc)])  # first maximum
    q_local = float(q_nx[:k_max].mean())
    q_global = float(q_nx[k_max:].mean()) if k_max < n - 2 else float("nan")
    return CorankingScores(q_nx=q_nx, lcmc=lcmc, k_max=k_max, q_local=q_local, q_global=q_global)


def coranking_scores(latent: np.ndarray, view: np.ndarray) -> CorankingScores:
    """Co-ranking scores of one view against the latent (on every cell given: subsample beforehand)."""
    return coranking_scores_from_histogram(max_rank_histograms(latent, [view])[0])


def _condensed_pairs(k: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, j), i < j, of condensed (pdist) indices k for n points."""
    i_arr = np.arange(n - 1, dtype=np.int64)
    row_start = i_arr * n - i_arr * (i_arr + 1) // 2
    i = np.searchsorted(row_start, k, side="right") - 1
    return i, k - row_start[i] + i + 1


def _twice_average_ranks(x: np.ndarray, buf: np.ndarray, twice: np.ndarray) -> np.ndarray:
    """2 × (1-based average rank) of every pairwise squared distance of ``x`` (pdist order), as int32.

    Spearman's correlation is unchanged by the monotone map d -> d², so squared distances are ranked.
    Twice the average rank of a tie run over sorted positions a..b (1-based) is a + b, an integer, so the
    ranks are exact in integers and half the size of float64 ranks; they are written into ``twice``
    (int32 or int64, n(n-1)/2). ``buf`` (float64, n(n-1)/2) is the only other full-size array: the
    distances are written into it and overwritten in place by packed (key, index) integers. Callers
    reuse both arrays across views because touching fresh memory (page faults) costs more here than
    the arithmetic does.

    Keys are fixed-point (v - min) / (max - min) scaled to the bits the index leaves free, which uses
    every key bit on the observed range (a float bit pattern would waste most on the exponent), so
    collisions are rare; the pairs that collide are re-ranked by their exact distance, recomputed.
    """
    n = x.shape[0]
    m = buf.size
    pdist(x, metric="sqeuclidean", out=buf)
    lo, hi = float(buf.min()), float(buf.max())
    idx_bits = _index_bits(m)
    # Key bits beyond float64's 53-bit mantissa carry nothing, and 2**k - 1 must be exact in float64
    # so that the clamped key cannot spill into the sign-free top of the uint64.
    key_max = float((1 << min(64 - idx_bits, 52)) - 1)
    scale = key_max / (hi - lo) if hi > lo else 0.0
    packed = buf.view(np.uint64)
    step = 1 << 20  # 8 MB slices: temporaries stay in cache and in the allocator's heap
    for s in range(0, m, step):
        e = min(s + step, m)
        # floor((v - lo) * scale) is non-decreasing in v: every IEEE operation used here is monotone.
        key = np.minimum(np.floor((buf[s:e] - lo) * scale), key_max).astype(np.uint64)
        key <<= np.uint64(idx_bits)
        key |= np.arange(s, e, dtype=np.uint64)
        packed[s:e] = key
    packed.sort()
    # Collision runs (equal keys, adjacent after the sort), found a slice at a time.
    same_key_pos = []
    for s in range(0, m - 1, step):
        e = min(s + step, m - 1)
        hit = (packed[s + 1:e + 1] ^ packed[s:e]) < np.uint64(1 << idx_bits)
        same_key_pos.append(np.flatnonzero(hit) + s)  # same key at sorted positions p and p + 1
    same_key_pos = np.concatenate(same_key_pos)
    packed &= np.uint64((1 << idx_bits) - 1)
    order = packed.view(np.int64)
    dtype = twice.dtype
    for s in range(0, m, step):
        e = min(s + step, m)
        twice[order[s:e]] = np.arange(2 * s + 2, 2 * e + 1, 2, dtype=dtype)
    if same_key_pos.size:
        pos = np.union1d(same_key_pos, same_key_pos + 1)  # every sorted position inside a run
        run_start = np.ones(pos.size, dtype=bool)
        run_start[1:] = ~np.isin(pos[1:] - 1, same_key_pos)
        run_id = np.cumsum(run_start)
        idx = order[pos]
        i, j = _condensed_pairs(idx, n)
        vals = ((x[i] - x[j]) ** 2).sum(axis=1)
        sub = np.lexsort((idx, vals, run_id))  # exact value, then index (stable semantics)
        idx, vals = idx[sub], vals[sub]
        group_start = run_start.copy()
        group_start[1:] |= vals[1:] != vals[:-1]
        starts = np.flatnonzero(group_start)
        ends = np.append(starts[1:], pos.size)
        # Positions inside a run are consecutive, so a group spans pos[start]..pos[end - 1].
        group_value = (pos[starts] + 1 + pos[ends - 1] + 1).astype(dtype)
        twice[idx] = group_value[np.cumsum(group_start) - 1]
    return twice


def _dot_centered(a: np.ndarray, b: np.ndarray, center: float, chunk: int = 1 << 20) -> float:
    total = 0.0
    for s in range(0, a.size, chunk):
        total += float(np.dot(a[s:s + chunk] - center, b[s:s + chunk] - center))
    return total


def distance_correlations(latent: np.ndarray, views: list[np.ndarray]) -> list[float]:
    """Spearman correlation between the condensed distance matrices of the latent and each view.

    Equal to ``scipy.stats.spearmanr(pdist(latent), pdist(view))`` (average ranks for ties); the
    latent ranks are computed once. Memory: one float64 and two int32 arrays of n(n-1)/2 entries
    (0.8 GB at n = 10,000). The ranks are centred exactly (twice-ranks have mean m + 1) and the
    correlation is accumulated in float64 slices.
    """
    z = _as_float64(latent)
    n = z.shape[0]
    if n < 3:
        raise ValueError(f"distance correlation needs at least 3 cells, got {n}")
    m = n * (n - 1) // 2
    buf = np.empty(m, dtype=np.float64)
    rank_dtype = np.int32 if 2 * m < np.iinfo(np.int32).max else np.int64
    rz = _twice_average_ranks(z, buf, np.empty(m, dtype=rank_dtype))
    rv = np.empty(m, dtype=rank_dtype)
    center = rz.size + 1.0
    var_z = _dot_centered(rz, rz, center)
    out = []
    for v in views:
        v = _as_float64(v)
        if v.shape[0] != n:
            raise ValueError(f"view has {v.shape[0]} rows, latent has {n}")
        _twice_average_ranks(v, buf, rv)
        var_v = _dot_centered(rv, rv, center)
        denom = np.sqrt(var_z * var_v)
        out.append(_dot_centered(rz, rv, center) / denom if denom > 0 else float("nan"))
    return out
