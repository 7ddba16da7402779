"""iLISI: the vectorised implementation against scib-metrics, and on batch-mixed vs batch-separated data."""
from __future__ import annotations

import numpy as np
import pytest

from livaebench.metrics.batch import _perplexity_weights, ilisi, knn, lisi_per_cell


def _three_batches(seed=0, n=600, shift=0.0):
    rng = np.random.default_rng(seed)
    b = rng.integers(0, 3, n)
    z = rng.normal(size=(n, 5))
    z[:, 0] += b * shift
    return z, b


def test_batch_mixed_vs_batch_separated():
    mixed, b = _three_batches(1)
    scaled, raw, per_cell = ilisi(mixed, b)
    # batches drawn from one distribution: ~1/3 of each around every cell; with ~30 effective
    # neighbours the sampling noise keeps the median LISI a little below 3
    assert scaled > 0.75 and 2.5 < raw <= 3.0
    separated, b = _three_batches(1, shift=50.0)
    scaled, raw, per_cell = ilisi(separated, b)
    assert scaled == pytest.approx(0.0, abs=1e-6) and np.allclose(per_cell, 1.0)
    partly, b = _three_batches(1, shift=1.5)
    assert 0.0 < ilisi(partly, b)[0] < ilisi(mixed, b)[0]


def test_perplexity_is_reached():
    z, _ = _three_batches(2)
    dist, _ = knn(z, 90)
    p = _perplexity_weights(dist, 30.0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    entropy = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1)
    np.testing.assert_allclose(entropy, np.log(30.0), atol=1e-4)


def test_knn_excludes_the_cell_itself_even_with_duplicates():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(50, 3))
    z[10:20] = z[10]  # ten identical cells
    dist, idx = knn(z, 12)
    assert dist.shape == idx.shape == (50, 12)
    assert not (idx == np.arange(50)[:, None]).any()
    assert np.all(np.diff(dist, axis=1) >= 0)


def test_single_batch_is_rejected():
    z, _ = _three_batches(4, n=100)
    with pytest.raises(ValueError, match="at least 2 batches"):
        ilisi(z, np.zeros(100))


def test_matches_scib_metrics():
    scib = pytest.importorskip("scib_metrics", reason="scib-metrics (and jax) not installed: comparison skipped")
    from scib_metrics.nearest_neighbors import NeighborsResults

    z, b = _three_batches(5, n=500, shift=0.8)
    dist, idx = knn(z, 90)
    n = len(z)
    # scib expects the cell itself among the neighbours and masks it out of the weights
    nr = NeighborsResults(indices=np.hstack([np.arange(n)[:, None], idx]),
                          distances=np.hstack([np.zeros((n, 1)), dist]))
    ref_cells = np.asarray(scib.lisi_knn(nr, b, perplexity=30))
    ours = lisi_per_cell(dist, idx, b, 3, perplexity=30)
    np.testing.assert_allclose(ours, ref_cells, rtol=2e-4)
    scaled, raw, _ = ilisi(z, b)
    assert scaled == pytest.approx(float(scib.ilisi_knn(nr, b, perplexity=30)), abs=1e-4)
    assert raw == pytest.approx(float(np.median(ref_cells)), abs=2e-4)
