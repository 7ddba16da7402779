"""LSI, the standard linear baseline for scATAC-seq (docs/methods.md §7).

Latent semantic indexing = truncated SVD of the (uncentred) TF-IDF matrix. The TF-IDF is the one the
project's preprocessing already computed (paper eq. 21: ``layers['lognorm']``, which for ATAC holds
the same values as ``.X``, kept sparse), so nothing is recomputed here.

SVD: scikit-learn ``TruncatedSVD`` (randomized, seeded) with ``latent_dim + 1`` components. The first
LSI component of ATAC data usually tracks sequencing depth rather than biology, which is why Signac
users leave it out and ArchR drops depth-correlated components. The rule used here: drop the first
component when |Spearman correlation| between its cell scores and the cell's library size (the
raw counts of the selected peaks) exceeds ``depth_cor_cutoff`` (0.5); then keep the first
``latent_dim`` of the remaining components. Only the first component is tested (Signac's practice;
ArchR tests every component, with a cutoff of 0.75).

Simplifications: no feature filtering beyond preprocessing, and the cell scores are U·Σ as the other
linear baselines return them; Signac and ArchR by default also standardise each component, which
``scale_embeddings: true`` does (it flattens the eigenvalue spectrum the intrinsic metrics read).
Writes the ``loadings`` artifact: one row per peak, one column per kept component (``LSI_<j>`` with j
the component's rank in the SVD, so a dropped first component shows as a missing ``LSI_1``).
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .registry import Check, FitContext, Resources, register

# One sparse TF-IDF and the randomized SVD's dense blocks (cells x (components + oversampling)).
RESOURCES = Resources(mem_mb_base=1000, bytes_per_value=8, runtime_min_base=5, runtime_min_per_kcell=0.2)


def run(ctx: FitContext) -> dict[str, np.ndarray]:
    import pandas as pd
    import scipy.sparse as sp
    from scipy.stats import spearmanr
    from sklearn.decomposition import TruncatedSVD

    from ..results import write_tsv_atomic

    p = ctx.params
    latent_dim = int(p["latent_dim"])
    where = f"dataset '{ctx.dataset}', method '{ctx.method}'"
    n_cells, n_peaks = ctx.adata.n_obs, ctx.adata.n_vars
    if latent_dim + 1 >= min(n_cells, n_peaks):
        raise InputError(where, f"{latent_dim + 1} SVD components need more than {min(n_cells, n_peaks)} "
                         f"{'cells' if n_cells <= n_peaks else 'peaks'} ({n_cells} cells x {n_peaks} peaks)",
                         "lower latent_dim or use more cells and peaks")
    tfidf = ctx.adata.layers["lognorm"] if "lognorm" in ctx.adata.layers else ctx.adata.X
    tfidf = sp.csr_matrix(tfidf, dtype=np.float64) if sp.issparse(tfidf) else np.asarray(tfidf, dtype=np.float64)
    values = tfidf.data if sp.issparse(tfidf) else tfidf
    if not np.isfinite(values).all() or (values.size and values.min() < 0):
        raise InputError(where, "the TF-IDF input has negative or non-finite values",
                         "preprocess the raw peak counts with the project's ATAC preprocessing")
    library = np.asarray(ctx.adata.layers["counts"].sum(axis=1)).ravel()

    svd = TruncatedSVD(n_components=latent_dim + 1, algorithm="randomized", n_iter=int(p["n_iter"]),
                       random_state=ctx.seed)
    scores = svd.fit_transform(tfidf)
    rho = spearmanr(scores[:, 0], library).statistic if np.ptp(library) > 0 else 0.0
    rho = 0.0 if not np.isfinite(rho) else float(rho)
    drop_first = abs(rho) > float(p["depth_cor_cutoff"])
    keep = np.arange(1, latent_dim + 1) if drop_first else np.arange(latent_dim)
    ctx.log.info("%s/%s: first LSI component vs library size: Spearman %.3f -> %s", ctx.dataset, ctx.method, rho,
                 "dropped" if drop_first else "kept")
    latent = scores[:, keep]
    if p["scale_embeddings"]:
        sd = latent.std(axis=0, ddof=1)
        latent = (latent - latent.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    loadings = pd.DataFrame(svd.components_[keep].T, columns=[f"LSI_{j + 1}" for j in keep])
    loadings.insert(0, "feature", list(map(str, ctx.adata.var_names)))
    write_tsv_atomic(loadings, ctx.artifact_path("loadings"))
    return {"X_latent": np.asarray(latent, dtype=np.float32)}


register("lsi", "atac", run, {"latent_dim": 10, "depth_cor_cutoff": 0.5, "n_iter": 5, "scale_embeddings": False},
         modalities=("atac",), artifacts=("loadings",), resources=RESOURCES,
         checks={"latent_dim": Check(minimum=1), "depth_cor_cutoff": Check(minimum=0, maximum=1),
                 "n_iter": Check(minimum=1)},
         description="LSI: truncated SVD of the TF-IDF, first component dropped when it tracks depth")
