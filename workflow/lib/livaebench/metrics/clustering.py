"""Clustering metrics of a latent space (docs/methods.md §3.1; pipelines §3.5), Leiden, and the multi-batch pipelines.

- K-means on Z with k = number of label categories (n_init 10, seeded) → ŷ; NMI (arithmetic
  normalisation), ARI (the real adjusted Rand index) and AMI against the labels; ASW, CAL, DAV of ŷ on Z.
- COR, the coupling degree of the latent dimensions.
- Leiden (scanpy, igraph flavour) on the exact 15-nearest-neighbour graph of Z as an alternative clusterer.
- The four pre/post pipelines K–K, K–L, L–K, L–L of the paper's multi-batch study (see
  ``batch_pipelines`` for what "pre" and "post" mean here).
"""
from __future__ import annotations

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_mutual_info_score,
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    normalized_mutual_info_score,
    silhouette_score,
)

from .requirements import Domain, Requirement

# The silhouette is O(n²); beyond this many cells it is computed on a seeded subsample of this size.
SILHOUETTE_MAX_CELLS = 20_000
SILHOUETTE_WORKING_MB = 128
LEIDEN_NEIGHBORS = 15
LEIDEN_RESOLUTION = 1.0
PIPELINES = ("KK", "KL", "LK", "LL")

# What each metric needs to be defined (requirements.py; docs/methods.md §3.7). The panel checks these
# before computing; a partition that comes out degenerate anyway is caught afterwards (partition_quality).
_AGREEMENT = Requirement(
    min_label_categories=2, cells="labelled",
    why="agreement with a single label category is 0 or 1 whatever the embedding")
_PARTITION = Requirement(
    min_clusters=2, min_cells=3,
    why="silhouette, Calinski–Harabasz and Davies–Bouldin compare 2..n − 1 clusters")
_LEIDEN = Requirement(
    min_label_categories=2, min_cells=3,
    why="as NMI/ARI; a kNN graph needs 3 cells")
REQUIREMENTS: dict[str, Requirement] = {
    "NMI": _AGREEMENT, "ARI": _AGREEMENT, "AMI": _AGREEMENT,
    "ASW": _PARTITION, "CAL": _PARTITION, "DAV": _PARTITION,
    "COR": Requirement(min_dims=2, min_cells=3,
                       why="a correlation between latent dimensions needs two of them; with 2 cells every r is ±1"),
    "leiden_NMI": _LEIDEN, "leiden_ARI": _LEIDEN,
    **{f"{p}_{s}": Requirement(min_label_categories=2, min_batches=2,
                               why="clusters of several batches scored against labels")
       for p in PIPELINES for s in ("ARI", "NMI")},
}


def coupling_degree(z: np.ndarray) -> float:
    """COR = (1/d) Σ_{i≠j} |r_ij|, r the Pearson correlation between latent dimensions.

    A constant dimension has no defined correlation; it is counted as uncorrelated (r = 0), since it
    couples to nothing, and d still counts it. Outside ``REQUIREMENTS['COR']`` (d < 2 or fewer than 3
    cells) it raises ValueError.
    """
    z = np.asarray(z, dtype=np.float64)
    unmet = REQUIREMENTS["COR"].unmet(Domain(dims=z.shape[1], cells={"all": len(z)}))
    if unmet:
        raise ValueError(f"COR {unmet}")
    d = z.shape[1]
    sd = z.std(axis=0)
    live = sd > 0
    total = 0.0
    if live.sum() >= 2:
        r = np.corrcoef(z[:, live], rowvar=False)
        total = float(np.abs(r).sum() - np.trace(np.abs(r)))
    return total / d


def kmeans_labels(z: np.ndarray, k: int, seed: int) -> np.ndarray:
    k = int(min(k, len(z)))
    if k <= 1:
        return np.zeros(len(z), dtype=np.int64)
    km = KMeans(n_clusters=k, n_init=10, random_state=seed)
    return km.fit_predict(np.asarray(z, dtype=np.float64)).astype(np.int64)


def leiden_labels(z: np.ndarray, seed: int, n_neighbors: int = LEIDEN_NEIGHBORS,
                  resolution: float = LEIDEN_RESOLUTION) -> np.ndarray:
    """Leiden clusters of the cells of ``z`` on scanpy's UMAP-weighted kNN graph.

    The neighbours are exact (scikit-learn), so the graph does not depend on an approximate search;
    scanpy's default switches to pynndescent above 4,096 cells.
    """
    n = len(z)
    if n < 3:
        return np.zeros(n, dtype=np.int64)
    import anndata as ad
    import scanpy as sc

    a = ad.AnnData(np.zeros((n, 0), dtype=np.float32))
    a.obsm["X_z"] = np.asarray(z, dtype=np.float32)
    sc.pp.neighbors(a, use_rep="X_z", n_neighbors=min(n_neighbors, n - 1), transformer="sklearn",
                    random_state=seed)
    sc.tl.leiden(a, resolution=resolution, flavor="igraph", n_iterations=2, directed=False,
                 random_state=seed)
    return a.obs["leiden"].astype(int).to_numpy(dtype=np.int64)


def label_agreement(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """NMI, ARI and AMI of a predicted partition against ground-truth labels (same cells)."""
    return {
        "NMI": float(normalized_mutual_info_score(y, pred, average_method="arithmetic")),
        "ARI": float(adjusted_rand_score(y, pred)),
        "AMI": float(adjusted_mutual_info_score(y, pred)),
    }


def partition_quality(z: np.ndarray, pred: np.ndarray, seed: int) -> tuple[dict[str, float], dict[str, str]]:
    """ASW, CAL, DAV of ``pred`` on ``z``; NaN with a reason when the partition has < 2 or n clusters."""
    z = np.asarray(z, dtype=np.float64)
    k = len(np.unique(pred))
    if not 2 <= k <= len(z) - 1:
        reason = f"K-means gave {k} cluster(s) for {len(z)} cells; ASW/CAL/DAV need 2..n-1 clusters"
        return {m: float("nan") for m in ("ASW", "CAL", "DAV")}, {m: reason for m in ("ASW", "CAL", "DAV")}
    sample = SILHOUETTE_MAX_CELLS if len(z) > SILHOUETTE_MAX_CELLS else None
    # sklearn computes the silhouette in distance blocks of `working_memory` MB (default 1024); small
    # blocks were 3x faster at 10,000 cells here (fresh memory is slow to touch) and cap the peak RSS.
    with sklearn.config_context(working_memory=SILHOUETTE_WORKING_MB):
        asw = silhouette_score(z, pred, sample_size=sample, random_state=seed)
    scores = {
        "ASW": float(asw),
        "CAL": float(calinski_harabasz_score(z, pred)),
        "DAV": float(davies_bouldin_score(z, pred)),
    }
    return scores, {}


def _majority_relabel(pre: np.ndarray, post: np.ndarray) -> np.ndarray:
    """Each cell gets the post cluster holding most cells of its pre cluster (ties: smallest label)."""
    pre_codes, pre_inv = np.unique(pre, return_inverse=True)
    post_codes, post_inv = np.unique(post, return_inverse=True)
    counts = np.bincount(pre_inv * len(post_codes) + post_inv,
                         minlength=len(pre_codes) * len(post_codes)).reshape(len(pre_codes), len(post_codes))
    return post_codes[np.argmax(counts, axis=1)][pre_inv]


def batch_pipelines(z: np.ndarray, y: np.ndarray, batches: np.ndarray, post: dict[str, np.ndarray],
                    seed: int) -> dict[str, float]:
    """ARI and NMI of the pipelines K–K, K–L, L–K, L–L (pre clusterer, post clusterer).

    The paper names the pipelines by the clusterer used "pre- and post-integration" and defines no
    more. Here, with only the embedding at hand:
    - pre-integration = each batch clustered on its own (K-means with k = the number of label
      categories present in that batch, or Leiden), as one would analyse the batches separately;
    - post-integration = the pooled embedding clustered once (``post['K']``: K-means, ``post['L']``:
      Leiden; the panel passes its main clusterings, so nothing is recomputed);
    - result = each per-batch cluster relabelled with the post cluster that holds most of its cells.
    A per-batch cluster can thus be merged with its counterparts in other batches only if the
    embedding puts them together, which is what the pipelines probe. Cost: one clustering per batch.

    ``y`` holds the labels (cells without a label already removed by the caller, here and in ``z``,
    ``batches`` and ``post``).
    """
    y = np.asarray(y)
    batches = np.asarray(batches)
    # Per-batch clusters get globally distinct integer codes: a batch's labels are offset past the
    # codes used by the batches before it.
    pre = {"K": np.empty(len(z), dtype=np.int64), "L": np.empty(len(z), dtype=np.int64)}
    offset = {"K": 0, "L": 0}
    for b in np.unique(batches):
        idx = np.flatnonzero(batches == b)
        k_b = len(np.unique(y[idx]))
        for p, labels in (("K", kmeans_labels(z[idx], k_b, seed)), ("L", leiden_labels(z[idx], seed))):
            pre[p][idx] = labels + offset[p]
            offset[p] += int(labels.max()) + 1
    out = {}
    for p in ("K", "L"):
        for q in ("K", "L"):
            scores = label_agreement(y, _majority_relabel(pre[p], np.asarray(post[q])))
            out[f"{p}{q}_ARI"] = scores["ARI"]
            out[f"{p}{q}_NMI"] = scores["NMI"]
    return out
