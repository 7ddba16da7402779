"""LSI, the standard linear baseline for scATAC-seq (docs/methods.md §7).

Origin: Signac's ``RunTFIDF`` + ``RunSVD`` (Stuart et al. 2021, Nat. Methods 18:1333); ArchR's
iterative LSI is the alternative the depth rule below borrows from. Latent semantic indexing =
truncated SVD of the (uncentred) TF-IDF matrix. The TF-IDF is the one the project's preprocessing
already computed (paper eq. 21: ``layers['lognorm']``, which for ATAC holds the same values as ``.X``,
kept sparse), so nothing is recomputed here.

SVD: scikit-learn ``TruncatedSVD`` (randomized, seeded) with ``latent_dim + 1`` components. The first
LSI component of ATAC data usually tracks sequencing depth rather than biology, which is why Signac
users leave it out and ArchR drops depth-correlated components. The rule used here: drop the first
component when |Spearman correlation| between its cell scores and the cell's library size (the
raw counts of the selected peaks) exceeds ``depth_cor_cutoff`` (0.5); then keep the first
``latent_dim`` of the remaining components. Only the first component is tested (Signac's practice;
ArchR tests every component, with a cutoff of 0.75).

Cell scores: Signac's default (``RunSVD(scale.embeddings = TRUE)``) standardises each kept component's
cell scores to mean 0 and standard deviation 1 (n − 1 denominator, R's ``sd``), and so does this method
by default (``scale_embeddings``). ``scale_embeddings: false`` returns U·Σ instead, the scores the other
linear baselines return; it keeps the singular values' decay, which the intrinsic metrics read (unscaled,
LSI's spectrum is far steeper than any neural embedding's). The differences from Signac are declared in
``DEVIATIONS``. Writes the ``loadings`` artifact: one row per peak, one column per kept component
(``LSI_<j>`` with j the component's rank in the SVD, so a dropped first component shows as a missing
``LSI_1``).
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .registry import Check, Deviation, FitContext, Origin, Resources, register

# One sparse TF-IDF and the randomized SVD's dense blocks (cells x (components + oversampling)).
RESOURCES = Resources(mem_mb_base=1000, bytes_per_value=8, runtime_min_base=5, runtime_min_per_kcell=0.2)


def standardize_scores(scores: np.ndarray) -> np.ndarray:
    """Each column to mean 0 and sample standard deviation 1 (Signac's scale.embeddings); a constant column -> 0."""
    sd = scores.std(axis=0, ddof=1) if scores.shape[0] > 1 else np.zeros(scores.shape[1])
    return (scores - scores.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


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
        latent = standardize_scores(latent)
    loadings = pd.DataFrame(svd.components_[keep].T, columns=[f"LSI_{j + 1}" for j in keep])
    loadings.insert(0, "feature", list(map(str, ctx.adata.var_names)))
    write_tsv_atomic(loadings, ctx.artifact_path("loadings"))
    return {"X_latent": np.asarray(latent, dtype=np.float32)}


ORIGIN = Origin(
    "Signac 1.x RunTFIDF + RunSVD (Stuart et al. 2021, Nat. Methods 18:1333); ArchR iterative LSI for the "
    "depth rule", "https://stuartlab.org/signac/reference/runsvd",
    {"latent_dim": 50, "scale_embeddings": True},
    budget="closed form: truncated SVD (irlba) of the TF-IDF, 50 components, each scaled to mean 0 / sd 1")
DEVIATIONS = (
    Deviation("latent_dim", "latent_dim (10, the benchmark's shared dimension)",
              "RunSVD computes 50 components; Signac's vignettes embed with components 2-30",
              "every method of the benchmark embeds into the same number of dimensions", "either"),
    Deviation("tf-idf", "the project's ATAC TF-IDF (paper eq. 21): log1p(tf · log(1 + n/n_g) · 1e4)",
              "RunTFIDF method 1: log1p(tf · n/Σ_cells x_g · 1e4)",
              "one TF-IDF for every ATAC method (the paper's preprocessing); LSI reads it as it is", "either"),
    Deviation("depth component rule", "drop component 1 when |Spearman(scores, library size)| > 0.5",
              "Signac: the user drops component 1 after DepthCor; ArchR: drop every component with |r| > 0.75",
              "an automatic rule is needed in a workflow; Signac's vignettes always drop component 1", "either"),
    Deviation("svd solver", "scikit-learn randomized TruncatedSVD (n_iter power iterations, seeded)",
              "irlba (tol 1e-5)", "the same leading singular vectors to the solvers' tolerance", "none"),
)

register("lsi", "atac", run, {"latent_dim": 10, "depth_cor_cutoff": 0.5, "n_iter": 5, "scale_embeddings": True},
         modalities=("atac",), artifacts=("loadings",), resources=RESOURCES,
         checks={"latent_dim": Check(minimum=1), "depth_cor_cutoff": Check(minimum=0, maximum=1),
                 "n_iter": Check(minimum=1)},
         description="LSI: truncated SVD of the TF-IDF, first component dropped when it tracks depth, "
                     "components standardised (Signac)",
         origin=ORIGIN, deviations=DEVIATIONS)
