"""Distance correlation and co-ranking against independent computations on small data.

The reference co-ranking matrix is built the slow, literal way: for every ordered pair, count the
cells that are closer (or equally close with a smaller index), then tabulate Q_ab. sklearn's
trustworthiness validates that reference (same rank convention, nearest neighbour = rank 1), and the
library's histogram-based Q_NX / LCMC / K_max / Q_local / Q_global must match it exactly.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr
from sklearn.manifold import trustworthiness

from livaebench.metrics.embedding_quality import (
    coranking_scores,
    coranking_scores_from_histogram,
    distance_correlations,
    max_rank_histograms,
)


def brute_ranks(x: np.ndarray) -> np.ndarray:
    """R[i, j] = 1 + #{k ≠ i : d_ik < d_ij or (d_ik = d_ij and k < j)}; R[i, i] = 0."""
    d = squareform(pdist(x, metric="sqeuclidean"))
    n = len(x)
    r = np.zeros((n, n), dtype=int)
    for i in range(n):
        for j in range(n):
            if i != j:
                closer = (d[i] < d[i, j]) | ((d[i] == d[i, j]) & (np.arange(n) < j))
                closer[i] = False
                r[i, j] = 1 + closer.sum()
    return r


def brute_coranking_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Q[a-1, b-1] = #{(i, j): rank of j around i is a in x and b in y}, an (n-1) × (n-1) matrix."""
    rx, ry = brute_ranks(x), brute_ranks(y)
    n = len(x)
    q = np.zeros((n - 1, n - 1), dtype=int)
    for i in range(n):
        for j in range(n):
            if i != j:
                q[rx[i, j] - 1, ry[i, j] - 1] += 1
    return q


def q_nx_from_matrix(q: np.ndarray) -> np.ndarray:
    n = q.shape[0] + 1
    return np.array([q[:k, :k].sum() / (k * n) for k in range(1, n - 1)])


def trustworthiness_from_matrix(q: np.ndarray, k: int) -> float:
    """Trustworthiness from the co-ranking matrix: intrusions (b ≤ K, a > K) weighted by a − K."""
    n = q.shape[0] + 1
    a = np.arange(1, n)[:, None]
    penalty = (q * (a - k))[k:, :k].sum()
    return 1.0 - 2.0 / (n * k * (2 * n - 3 * k - 1)) * penalty


def _pair(seed: int, n: int = 45, d: int = 6):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = x[:, :2] @ rng.normal(size=(2, 2)) + 0.4 * rng.normal(size=(n, 2))
    return x, y


@pytest.mark.parametrize("seed", [0, 1])
def test_reference_matrix_reproduces_sklearn_trustworthiness(seed):
    x, y = _pair(seed)
    q = brute_coranking_matrix(x, y)
    for k in (1, 3, 7, 15):
        assert trustworthiness_from_matrix(q, k) == pytest.approx(trustworthiness(x, y, n_neighbors=k), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_histogram_qnx_equals_block_sums_of_brute_matrix(seed):
    x, y = _pair(seed)
    q = brute_coranking_matrix(x, y)
    ref = q_nx_from_matrix(q)
    # small blocks so that the block loop runs many times
    hist = max_rank_histograms(x, [y], block_rows=4)[0]
    scores = coranking_scores_from_histogram(hist)
    np.testing.assert_allclose(scores.q_nx, ref, rtol=0, atol=1e-15)
    n = len(x)
    k = np.arange(1, n - 1)
    lcmc = ref - k / (n - 1)
    k_max = int(k[np.argmax(lcmc)])
    assert scores.k_max == k_max
    assert scores.q_local == pytest.approx(ref[:k_max].mean(), abs=1e-14)
    assert scores.q_global == pytest.approx(ref[k_max:].mean(), abs=1e-14)


def test_ties_follow_stable_index_order():
    """Integer coordinates give exact ties (duplicated cells included) in both spaces."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=(40, 4)).astype(float)
    x[7] = x[2]
    x[30] = x[2]
    y = rng.integers(0, 4, size=(40, 2)).astype(float)
    y[11] = y[5]
    q = brute_coranking_matrix(x, y)
    hist = max_rank_histograms(x, [y], block_rows=6)[0]
    np.testing.assert_allclose(coranking_scores_from_histogram(hist).q_nx, q_nx_from_matrix(q), atol=1e-15)


def test_several_views_share_the_latent_ranks():
    x, y1 = _pair(4)
    _, y2 = _pair(5)
    h1, h2 = max_rank_histograms(x, [y1, y2], block_rows=9)
    np.testing.assert_array_equal(h1, max_rank_histograms(x, [y1])[0])
    np.testing.assert_array_equal(h2, max_rank_histograms(x, [y2])[0])


def test_textbook_ranks_by_hand():
    """Four cells on a line, worked out by hand: nearest neighbour = rank 1.

    latent 0, 1, 3, 7 and view 0, 1, 3, 4: every nearest neighbour is kept except that of the third
    cell (1 in the latent, 4 in the view), so Q_NX(1) = 3 / (1 · 4); the 2-neighbourhoods agree in
    2 + 2 + 1 + 2 = 7 pairs, Q_NX(2) = 7 / (2 · 4). LCMC = (3/4 − 1/3, 7/8 − 2/3), so K_max = 1.
    """
    x = np.array([[0.0, 0], [1, 0], [3, 0], [7, 0]])
    y = np.array([[0.0, 0], [1, 0], [3, 0], [4, 0]])
    s = coranking_scores(x, y)
    np.testing.assert_allclose(s.q_nx, [0.75, 0.875])
    assert s.k_max == 1
    assert s.q_local == pytest.approx(0.75)
    assert s.q_global == pytest.approx(0.875)
    # A histogram with K_max = n − 2 (here Q_NX = 1/4, 6/8) leaves no K for Q_global: NaN, not a number.
    t = coranking_scores_from_histogram(np.array([0, 1, 5, 6]))
    assert t.k_max == 2 and np.isnan(t.q_global)


def test_identical_view_is_perfect_and_random_view_is_chance():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 2))
    s = coranking_scores(x, x * 3.0 + 1.0)  # similarity transform: same ranks
    np.testing.assert_allclose(s.q_nx, 1.0)
    assert s.k_max == 1 and s.q_local == 1.0 and s.q_global == 1.0
    r = coranking_scores(x, rng.normal(size=(300, 2)))
    k = np.arange(1, 299)
    # an unrelated view keeps a neighbour as often as chance: Q_NX(K) ≈ K / (n - 1)
    assert np.abs(r.q_nx - k / 299).max() < 0.1


@pytest.mark.parametrize("integer", [False, True])
def test_distance_correlation_equals_scipy_spearman(integer):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(120, 8))
    y = x[:, :2] + rng.normal(size=(120, 2))
    if integer:  # exact ties in both spaces, duplicates included
        x, y = np.round(x), np.round(y * 2)
        x[5] = x[9]
    ref = spearmanr(pdist(x), pdist(y)).statistic
    (got,) = distance_correlations(x, [y])
    assert got == pytest.approx(ref, abs=1e-12)


def test_distance_correlation_of_a_similarity_transform_is_one():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(200, 2))
    rot = np.array([[0.6, -0.8], [0.8, 0.6]])
    got = distance_correlations(x, [x @ rot * 5.0 - 2.0, -x])
    np.testing.assert_allclose(got, 1.0, atol=1e-12)


def test_many_near_equal_distances_are_ranked_exactly():
    """Distances that agree to ~10 digits share a packed sort key and must be re-ranked exactly."""
    rng = np.random.default_rng(9)
    base = rng.normal(size=(150, 3))
    x = base + 1e-9 * rng.normal(size=base.shape)
    x = np.vstack([x, base[:20] + 1e-11])  # near-duplicates of 20 cells
    y = x[:, :2] + 0.5 * rng.normal(size=(len(x), 2))
    (got,) = distance_correlations(x, [y])
    assert got == pytest.approx(spearmanr(pdist(x, "sqeuclidean"), pdist(y, "sqeuclidean")).statistic, abs=1e-12)


@pytest.mark.parametrize("n", [3, 4, 6, 11, 40])
def test_tiny_inputs_match_the_references(n):
    """Few cells leave the sort keys most of the 64 bits: no overflow into the index bits."""
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 3)) * 1e3
    y = rng.normal(size=(n, 2))
    (got,) = distance_correlations(x, [y])
    assert got == pytest.approx(spearmanr(pdist(x), pdist(y)).statistic, abs=1e-12)
    if n >= 4:
        np.testing.assert_allclose(coranking_scores(x, y).q_nx, q_nx_from_matrix(brute_coranking_matrix(x, y)),
                                   atol=1e-15)


def test_non_finite_coordinates_are_rejected():
    x = np.ones((5, 2))
    x[2, 0] = np.inf
    with pytest.raises(ValueError, match="finite"):
        distance_correlations(x, [np.ones((5, 2))])
