"""Latent files and their 2-D views (UMAP, t-SNE), assembled into the embedding AnnData of the output contract."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import anndata as ad
import numpy as np

from .failures import FAILED, OK


def save_latents(path: str | Path, embeddings: dict[str, np.ndarray]) -> None:
    """Write the arrays a method returned as one .npz, atomically (no partial file on failure)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, **embeddings)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_latents(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


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
    sc.pp.neighbors(view, use_rep="X", n_neighbors=n_neighbors, random_state=seed)
    sc.tl.umap(view, random_state=seed)
    # openTSNE requires 3 * perplexity < n; small (test) datasets get the largest perplexity that fits.
    perplexity = min(perplexity, (latent.shape[0] - 1) / 3)
    tsne = openTSNE.TSNE(perplexity=perplexity, n_jobs=threads, random_state=seed, verbose=False).fit(latent)
    return {"X_umap": np.asarray(view.obsm["X_umap"], dtype=np.float32),
            "X_tsne": np.asarray(tsne, dtype=np.float32)}


def embedding_adata(prep: ad.AnnData, latents: dict[str, np.ndarray], views: dict[str, np.ndarray], *,
                    method: str, seed: int, failure: str | None = None) -> ad.AnnData:
    """The embedding file: cells with their annotations, the latent and its views in ``obsm``; no expression.

    A failed method's file has no ``obsm`` and ``uns['livaebench']`` says ``status: failed`` with the reason.
    """
    info = dict(prep.uns["livaebench"])
    obs = prep.obs.copy()
    emb = ad.AnnData(obs=obs)
    for key, value in {**latents, **views}.items():
        emb.obsm[key] = np.asarray(value, dtype=np.float32)
    status = {"status": OK} if failure is None else {"status": FAILED, "reason": failure}
    emb.uns["livaebench"] = {**info, "method": method, "seed": int(seed), **status}
    return emb
