"""Latent files and their 2-D views (UMAP, t-SNE), assembled into the embedding AnnData of the output contract."""
from __future__ import annotations

import json

import anndata as ad
import numpy as np

from .failures import FAILED, OK
# the latent file's reading and writing live in .latents (numpy only); kept importable from here
from .latents import CONVERGENCE_KEY, load_convergence, load_latents, parse_convergence, save_latents  # noqa: F401


# scanpy switches from an exact kNN search to pynndescent at this many cells (its own rule, kept)
APPROXIMATE_KNN_FROM = 8192


def _sparse_matrix_knn(n_obs: int, n_neighbors: int, seed: int, threads: int):
    """pynndescent's kNN transformer, configured as scanpy configures it, returning a ``csr_matrix``.

    scanpy 1.11 reads the result with ``.getnnz(axis=1)``, which scipy >= 1.17 no longer has on the
    ``csr_array`` that pynndescent 0.7 returns: every dataset of 8,192 cells or more failed in
    ``sc.pp.neighbors``. Converting the result keeps scanpy's own approximate search and numbers.
    """
    import numba
    import scipy.sparse as sp
    from pynndescent import PyNNDescentTransformer

    class SparseMatrixKNN(PyNNDescentTransformer):
        def transform(self, X, y=None):
            return sp.csr_matrix(super().transform(X))

        def fit_transform(self, X, y=None, **fit_params):
            return sp.csr_matrix(super().fit_transform(X, y, **fit_params))

    # UMAP's defaults for n_trees / n_iters, exactly what scanpy passes for a large dataset
    return SparseMatrixKNN(n_neighbors=n_neighbors, metric="euclidean", metric_kwds={}, random_state=seed,
                           n_jobs=max(1, min(threads, numba.config.NUMBA_NUM_THREADS)), n_trees=min(64, 5 + round(n_obs**0.5 / 20.0)),
                           n_iters=max(5, round(np.log2(n_obs))))


def neighbors(adata: ad.AnnData, *, n_neighbors: int, seed: int, threads: int = 1, **kwargs) -> None:
    """``sc.pp.neighbors`` (Euclidean) that also works from 8,192 cells on (see :func:`_sparse_matrix_knn`).

    Below that size scanpy's exact search is used unchanged.
    """
    import scanpy as sc

    transformer = None
    if adata.n_obs >= APPROXIMATE_KNN_FROM:
        transformer = _sparse_matrix_knn(adata.n_obs, n_neighbors, seed, threads)
    sc.pp.neighbors(adata, n_neighbors=n_neighbors, random_state=seed, transformer=transformer, **kwargs)


def tsne_affinities(latent: np.ndarray, *, seed: int, perplexity: float = 30.0, threads: int = 1):
    """t-SNE's perplexity-based affinities of a latent (openTSNE), on exact neighbours below
    ``APPROXIMATE_KNN_FROM`` cells, as the UMAP graph.

    openTSNE's own rule switches to Annoy's approximate search at 1,000 cells; below 8,192 the exact search
    is both faster (0.17 s instead of 1.2 s on 3,696 cells, 1 thread) and exact. openTSNE requires
    3 * perplexity < n: small (test) datasets get the largest perplexity that fits.
    """
    import openTSNE

    perplexity = min(perplexity, (latent.shape[0] - 1) / 3)
    method = "exact" if latent.shape[0] < APPROXIMATE_KNN_FROM else "auto"
    return openTSNE.affinity.PerplexityBasedNN(latent, perplexity=perplexity, method=method, n_jobs=threads,
                                               random_state=seed, verbose=False)


def umap_tsne(latent: np.ndarray, *, seed: int, n_neighbors: int = 15, perplexity: float = 30.0,
              threads: int = 1) -> dict[str, np.ndarray]:
    """UMAP (scanpy: kNN graph on the latent, then UMAP) and t-SNE of one latent.

    t-SNE uses openTSNE's FFT-accelerated gradients: 2-3x faster than scikit-learn's Barnes-Hut at the
    same perplexity, and deterministic for a given seed.
    """
    import openTSNE
    import scanpy as sc

    latent = np.ascontiguousarray(latent, dtype=np.float32)
    view = ad.AnnData(latent)
    n_neighbors = min(n_neighbors, latent.shape[0] - 1)
    neighbors(view, use_rep="X", n_neighbors=n_neighbors, seed=seed, threads=threads)
    sc.tl.umap(view, random_state=seed)
    affinities = tsne_affinities(latent, seed=seed, perplexity=perplexity, threads=threads)
    tsne = openTSNE.TSNE(n_jobs=threads, random_state=seed, verbose=False).fit(latent, affinities=affinities)
    return {"X_umap": np.asarray(view.obsm["X_umap"], dtype=np.float32),
            "X_tsne": np.asarray(tsne, dtype=np.float32)}


def embedding_adata(prep: ad.AnnData, latents: dict[str, np.ndarray], views: dict[str, np.ndarray], *,
                    method: str, seed: int, failure: str | None = None,
                    convergence: list | None = None) -> ad.AnnData:
    """The embedding file: cells with their annotations, the latent and its views in ``obsm``; no expression.

    A failed method's file has no ``obsm`` and ``uns['livaebench']`` says ``status: failed`` with the reason.
    ``uns['livaebench']['convergence']``: the run's convergence records as JSON text, when the latents had them.
    """
    info = dict(prep.uns["livaebench"])
    obs = prep.obs.copy()
    emb = ad.AnnData(obs=obs)
    for key, value in {**latents, **views}.items():
        emb.obsm[key] = np.asarray(value, dtype=np.float32)
    status = {"status": OK} if failure is None else {"status": FAILED, "reason": failure}
    emb.uns["livaebench"] = {**info, "method": method, "seed": int(seed), **status}
    if convergence is not None:
        emb.uns["livaebench"]["convergence"] = json.dumps(convergence, default=float)
    return emb
