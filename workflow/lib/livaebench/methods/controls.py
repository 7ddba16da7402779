"""Control methods: trivial embeddings that fix the two ends of every metric's scale (docs/methods.md §8).

Open Problems' dimensionality-reduction task scales its metrics between a negative control (a random
embedding, ``random_features``) and positive controls (the original features, ``true_features``; a
diffusion map of the data, ``spectral_features``). The controls here follow that idea for this study's
metric categories (``livaebench.summary.CATEGORY_CONTROLS`` says which control anchors which category):

* ``ctrl_random`` (negative): i.i.d. standard Gaussian cells x ``latent_dim``, seeded; no structure at all.
* ``ctrl_shuffled`` (negative for clustering): the PCA scores of the cells (``latent_dim`` components) with the
  rows permuted (seeded): a real embedding's distribution and spectrum, but no cell keeps its own coordinates
  (the geometry metrics cannot see a permutation, so it anchors only the label-based category).
* ``ctrl_labels`` (positive for clustering, batch removal and geometry): the cell labels one-hot (one column per
  label) plus Gaussian noise of standard deviation ``noise`` (so distances within a label are not all zero),
  padded with noise columns up to ``latent_dim``; the embedding a perfect biology-only method would return.
* ``ctrl_pca`` (positive for the geometry categories, negative for batch removal): PCA of the
  whole preprocessed matrix with ``n_components`` (default 50) components, Open Problems' "true features"
  at a size the metrics can afford; it is also the unintegrated embedding of scIB's batch scores.

Controls are never a comparison's reference or baseline (``livaebench.comparisons.check_comparisons``), and
every table and figure of the summary marks them. They run by default (config ``summary.controls``).
"""
from __future__ import annotations

import numpy as np

from .registry import Deviation, FitContext, Origin, Resources, register

FAMILY = "control"
NEGATIVE, POSITIVE = "negative", "positive"
# method -> its role; livaebench.summary decides per category which of them anchors the scale
CONTROLS: dict[str, str] = {"ctrl_random": NEGATIVE, "ctrl_shuffled": NEGATIVE, "ctrl_labels": POSITIVE,
                            "ctrl_pca": POSITIVE}
NEEDS_LABELS = frozenset({"ctrl_labels"})  # not run on a dataset without a label column

_CHEAP = Resources(mem_mb_base=800, bytes_per_value=8, runtime_min_base=5, runtime_min_per_kcell=0.1)
OPEN_PROBLEMS = "Open Problems, task_dimensionality_reduction (control methods)"
OP_URL = "https://github.com/openproblems-bio/task_dimensionality_reduction"


def _dense(ctx: FitContext) -> np.ndarray:
    data = ctx.adata.X
    data = data.toarray() if hasattr(data, "toarray") else np.asarray(data)
    return np.asarray(data, dtype=np.float32)  # PCA of float32 as the classical methods; half the memory


def _pca_scores(ctx: FitContext, n_components: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    data = _dense(ctx)
    n_components = max(1, min(int(n_components), min(data.shape) - 1))
    return PCA(n_components=n_components, svd_solver="arpack", random_state=ctx.seed).fit_transform(data)


def run_random(ctx: FitContext) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(ctx.seed)
    return {"X_latent": rng.standard_normal((ctx.adata.n_obs, int(ctx.params["latent_dim"])))}


def run_shuffled(ctx: FitContext) -> dict[str, np.ndarray]:
    scores = _pca_scores(ctx, ctx.params["latent_dim"])
    return {"X_latent": scores[np.random.default_rng(ctx.seed).permutation(len(scores))]}


def run_labels(ctx: FitContext) -> dict[str, np.ndarray]:
    from ..errors import InputError

    key = ctx.adata.uns["livaebench"].get("label_key") or ""
    if not key or key not in ctx.adata.obs:
        raise InputError(f"dataset '{ctx.dataset}', method '{ctx.method}'", "the dataset has no label column",
                         "give the dataset a label_key (or pseudo:kmeans) in the registry, or turn the controls off")
    codes = np.asarray(ctx.adata.obs[key].astype("category").cat.codes)
    one_hot = np.eye(codes.max() + 1)[codes]
    width = max(one_hot.shape[1], int(ctx.params["latent_dim"]))
    latent = np.zeros((len(codes), width))
    latent[:, :one_hot.shape[1]] = one_hot
    # noise on every column (also the padding): no two cells coincide, and no column is constant
    latent += float(ctx.params["noise"]) * np.random.default_rng(ctx.seed).standard_normal(latent.shape)
    return {"X_latent": latent}


def run_pca(ctx: FitContext) -> dict[str, np.ndarray]:
    return {"X_latent": _pca_scores(ctx, ctx.params["n_components"])}


_NO_TRAINING = "no training (a fixed transformation of the input)"
register("ctrl_random", FAMILY, run_random, {"latent_dim": 10}, resources=_CHEAP,
         description="negative control: random Gaussian embedding",
         origin=Origin(OPEN_PROBLEMS + ": random_features", OP_URL, {}, budget=_NO_TRAINING),
         deviations=(Deviation("dimensions", "latent_dim (10) Gaussian dimensions", "2 Gaussian dimensions",
                               "the metrics here score the latent, which every method gives in latent_dim "
                               "dimensions", "none"),))
register("ctrl_shuffled", FAMILY, run_shuffled, {"latent_dim": 10}, resources=_CHEAP,
         description="negative control: PCA scores permuted across cells",
         origin=Origin("this study (Open Problems has no shuffled control in this task)", OP_URL, {},
                       budget=_NO_TRAINING))
register("ctrl_labels", FAMILY, run_labels, {"latent_dim": 10, "noise": 0.1}, resources=_CHEAP,
         description="positive control (clustering, batch): one-hot labels + noise",
         origin=Origin("this study (as scIB / Open Problems batch integration's label-based positive controls)",
                       OP_URL, {}, budget=_NO_TRAINING))
register("ctrl_pca", FAMILY, run_pca, {"n_components": 50}, resources=_CHEAP,
         description="positive control (embedding, intrinsic): PCA of the whole matrix, 50 components",
         origin=Origin(OPEN_PROBLEMS + ": true_features", OP_URL, {}, budget=_NO_TRAINING),
         deviations=(Deviation("n_components", "PCA, 50 components of the preprocessed matrix",
                               "the first 1,000 raw features (true_features)",
                               "the distance and co-ranking metrics are O(n^2) in the latent's dimension too; 50 "
                               "principal components keep nearly all of the structure of the preprocessed matrix",
                               "none"),))
