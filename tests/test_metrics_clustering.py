"""Clustering metrics against hand formulas on small data (docs/methods.md §3.1)."""
from __future__ import annotations

from math import comb

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from livaebench.metrics import clustering as clu


def _blobs(seed=0, n_per=40, k=4, d=6, spread=12.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * spread
    y = np.repeat(np.arange(k), n_per)
    return centers[y] + rng.normal(size=(len(y), d)), y


def test_cor_by_hand():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 200))
    a -= a.mean()
    b -= b.mean()
    b -= a * (a @ b) / (a @ a)  # exactly uncorrelated with a
    # dims (a, a, b): |r| = 1 for the pair of a's (counted twice), 0 otherwise → 2 / 3
    assert clu.coupling_degree(np.c_[a, a, b]) == pytest.approx(2 / 3, abs=1e-12)
    # (a, −a, 2a): every off-diagonal |r| = 1 → 6 / 3
    assert clu.coupling_degree(np.c_[a, -a, 2 * a]) == pytest.approx(2.0, abs=1e-12)
    # a constant dimension couples to nothing but still counts in d: (a, a, const) → 2 / 3
    assert clu.coupling_degree(np.c_[a, a, np.ones(200)]) == pytest.approx(2 / 3, abs=1e-12)
    # outside its domain COR is undefined, not 0: one dimension couples to nothing, two cells give |r| = 1
    with pytest.raises(ValueError, match=r"needs >= 2 latent dimensions \(latent has 1\)"):
        clu.coupling_degree(a[:, None])
    with pytest.raises(ValueError, match=r"needs >= 3 cells \(has 2\)"):
        clu.coupling_degree(np.c_[a, b][:2])


def _ari_by_hand(y, p):
    """Hubert–Arabie ARI from the contingency table."""
    _, yi = np.unique(y, return_inverse=True)
    _, pi = np.unique(p, return_inverse=True)
    table = np.zeros((yi.max() + 1, pi.max() + 1), dtype=int)
    np.add.at(table, (yi, pi), 1)
    index = sum(comb(int(v), 2) for v in table.ravel())
    rows = sum(comb(int(v), 2) for v in table.sum(axis=1))
    cols = sum(comb(int(v), 2) for v in table.sum(axis=0))
    expected = rows * cols / comb(len(y), 2)
    return (index - expected) / ((rows + cols) / 2 - expected)


def test_ari_is_the_adjusted_rand_index_not_ami():
    y = np.array([0] * 10 + [1] * 10 + [2] * 10)
    p = np.array([0] * 8 + [1] * 4 + [2] * 9 + [0] * 9)
    got = clu.label_agreement(y, p)
    assert got["ARI"] == pytest.approx(_ari_by_hand(y, p), abs=1e-12)
    assert abs(got["ARI"] - got["AMI"]) > 0.01  # the authors reported AMI under the name ARI
    perfect = clu.label_agreement(y, 5 - y)  # a relabelling is still perfect
    assert perfect == pytest.approx({"NMI": 1.0, "ARI": 1.0, "AMI": 1.0})


def _silhouette_by_hand(z, p):
    d = cdist(z, z)
    s = []
    for i in range(len(z)):
        same = (p == p[i])
        same[i] = False
        a = d[i, same].mean()
        b = min(d[i, p == c].mean() for c in np.unique(p) if c != p[i])
        s.append((b - a) / max(a, b))
    return float(np.mean(s))


def _ch_by_hand(z, p):
    mu = z.mean(axis=0)
    cs = np.unique(p)
    between = sum((p == c).sum() * np.sum((z[p == c].mean(axis=0) - mu) ** 2) for c in cs)
    within = sum(np.sum((z[p == c] - z[p == c].mean(axis=0)) ** 2) for c in cs)
    return between / within * (len(z) - len(cs)) / (len(cs) - 1)


def _db_by_hand(z, p):
    cs = np.unique(p)
    cent = np.array([z[p == c].mean(axis=0) for c in cs])
    scatter = np.array([np.linalg.norm(z[p == c] - cent[i], axis=1).mean() for i, c in enumerate(cs)])
    worst = [max((scatter[i] + scatter[j]) / np.linalg.norm(cent[i] - cent[j]) for j in range(len(cs)) if j != i)
             for i in range(len(cs))]
    return float(np.mean(worst))


def test_partition_quality_against_hand_formulas():
    z, _ = _blobs(1, n_per=25, k=3, spread=2.0)  # overlapping blobs: non-trivial scores
    p = clu.kmeans_labels(z, 3, seed=0)
    got, reasons = clu.partition_quality(z, p, seed=0)
    assert reasons == {}
    assert got["ASW"] == pytest.approx(_silhouette_by_hand(z, p), abs=1e-10)
    assert got["CAL"] == pytest.approx(_ch_by_hand(z, p), rel=1e-10)
    assert got["DAV"] == pytest.approx(_db_by_hand(z, p), rel=1e-10)
    nan, why = clu.partition_quality(z, np.zeros(len(z), dtype=int), seed=0)
    assert all(np.isnan(v) for v in nan.values()) and "1 cluster" in why["ASW"]


def test_kmeans_and_leiden_recover_separated_blobs_deterministically():
    z, y = _blobs(2)
    km = clu.kmeans_labels(z, 4, seed=3)
    assert clu.label_agreement(y, km)["ARI"] == 1.0
    np.testing.assert_array_equal(km, clu.kmeans_labels(z, 4, seed=3))
    ld = clu.leiden_labels(z, seed=3)
    assert clu.label_agreement(y, ld)["ARI"] == 1.0
    np.testing.assert_array_equal(ld, clu.leiden_labels(z, seed=3))


def test_majority_relabel_by_hand():
    pre = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    post = np.array([5, 5, 7, 7, 5, 9, 9, 7, 7])  # cluster 2 ties 9:7 2-2 → smallest label 7
    np.testing.assert_array_equal(clu._majority_relabel(pre, post), [5, 5, 5, 5, 5, 7, 7, 7, 7])


def test_pipelines_reward_mixed_batches_over_separated_ones():
    """Same cell types in two batches; mixed: batches overlap; separated: batch 1 moved far away.

    In the mixed embedding the per-batch clusters and the pooled clusters agree (ARI = 1 for all four
    pipelines). In the separated one the pooled K-means with k = 3 cannot give each type one cluster
    (six blobs) and Leiden gives each batch its own clusters, so every pipeline loses accuracy.
    """
    z, y = _blobs(4, n_per=30, k=3, d=5, spread=10.0)
    z = np.vstack([z, z + np.random.default_rng(5).normal(size=z.shape) * 0.5])
    y = np.concatenate([y, y])
    batches = np.repeat(["a", "b"], len(y) // 2)

    def run(emb):
        post = {"K": clu.kmeans_labels(emb, 3, seed=0), "L": clu.leiden_labels(emb, seed=0)}
        return clu.batch_pipelines(emb, y, batches, post, seed=0)

    mixed = run(z)
    assert set(mixed) == {f"{p}_{s}" for p in ("KK", "KL", "LK", "LL") for s in ("ARI", "NMI")}
    assert all(v == pytest.approx(1.0) for v in mixed.values())
    separated = z.copy()
    separated[batches == "b"] += 200.0
    sep = run(separated)
    assert max(v for k, v in sep.items() if k.endswith("_ARI")) < 0.9
