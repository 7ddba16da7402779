"""The 2-D views' kNN graph on datasets large enough for scanpy's approximate search (>= 8,192 cells)."""
from __future__ import annotations

import anndata as ad
import numpy as np
from sklearn.neighbors import NearestNeighbors

from livaebench.embedding import APPROXIMATE_KNN_FROM, neighbors
from livaebench.runtime import enable_numba_cache


def test_large_dataset_gets_a_knn_graph_close_to_the_exact_one():
    """From 8,192 cells scanpy switches to pynndescent, whose csr_array result scanpy 1.11 could not read
    with scipy 1.17 (every large dataset failed); the graph must exist and match the exact neighbours."""
    enable_numba_cache()
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6.0, size=(8, 5))
    x = (centres[rng.integers(0, 8, APPROXIMATE_KNN_FROM + 100)] + rng.normal(size=(APPROXIMATE_KNN_FROM + 100, 5)))
    view = ad.AnnData(x.astype(np.float32))
    neighbors(view, use_rep="X", n_neighbors=10, seed=0, threads=2)
    dist = view.obsp["distances"].tocsr()
    assert dist.shape == (view.n_obs, view.n_obs) and np.all(np.diff(dist.indptr) >= 9)
    exact = NearestNeighbors(n_neighbors=10).fit(x).kneighbors(x, return_distance=False)[:, 1:]
    recall = []
    for i, e in enumerate(exact):
        row = dist.getrow(i)
        found = row.indices[(row.indices != i)][np.argsort(row.data[row.indices != i], kind="stable")[:9]]
        recall.append(len(set(found) & set(e)) / 9)
    assert np.mean(recall) > 0.9


def test_tsne_affinities_use_the_exact_neighbours_below_the_approximate_threshold():
    """openTSNE alone would use Annoy from 1,000 cells; below 8,192 every cell's 3 x perplexity exact
    nearest neighbours must carry its t-SNE affinities (the row's non-zeros of P, which also holds the
    cells that have it as a neighbour)."""
    import openTSNE

    from livaebench.embedding import tsne_affinities

    rng = np.random.default_rng(1)
    x = (rng.normal(scale=4.0, size=(6, 5))[rng.integers(0, 6, 1100)] + rng.normal(size=(1100, 5))).astype(np.float32)
    aff = tsne_affinities(x, seed=0, perplexity=30)
    assert isinstance(aff.knn_index, openTSNE.nearest_neighbors.Sklearn)
    exact = NearestNeighbors(n_neighbors=91).fit(x).kneighbors(x, return_distance=False)
    p = aff.P.tocsr()
    for i in range(x.shape[0]):
        assert set(exact[i][exact[i] != i][:90]) <= set(p.indices[p.indptr[i]:p.indptr[i + 1]])
