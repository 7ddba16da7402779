"""Raw counts -> the preprocessed AnnData every method reads (docs/methods.md §1).

Output contract: ``.X`` dense float32 model input; ``.layers['counts']`` raw counts of the selected
features (CSR float32, the likelihood target); ``.layers['lognorm']`` non-negative normalized values (CSR
float32); ``.obs`` the input's columns for the kept cells; ``.uns['livaebench']`` = {dataset, modality,
label_key, batch_key, label_note}; ``.uns['preprocess']`` the parameters and what QC removed. With a
pseudo-label ``label_key`` (``pseudo:kmeans[:K]``, livaebench.labels) the labels are KMeans clusters of
``layers['lognorm']`` in ``.obs['pseudo_kmeans']``, ``label_key`` names that column, ``label_note`` says
"pseudo-labels (KMeans, k=K)" and ``.uns['pseudo_labels']`` holds the settings and cluster sizes.

Decisions where the specification leaves room (docs/methods.md §1.5) (all logged when they act):
- Library sizes (RNA normalize_total, ATAC term frequency) are taken over all features that pass QC,
  then the selected features are kept, as the usual scanpy workflow does.
- ``min_genes`` means "minimum detected features": genes for RNA (default 200), peaks for ATAC
  (default 1, i.e. only empty cells go: a few thousand peaks at ~1.5 % density leave ~75 peaks per
  cell, and a gene-style threshold would remove every cell).
- Cells left with no counts in the selected features are dropped: their library size for the count
  likelihood would be 0. The ATAC TF-IDF and the RNA z-scores are computed on the final cells.
- 10x matrices with several feature types keep the modality's own (RNA 'Gene Expression', ATAC
  'Peaks'); what was dropped is logged.
- Too small for the step: fewer than MIN_CELLS cells or MIN_FEATURES features (or the requested
  number, if smaller) after QC stop with one line. seurat_v3 (a loess fit of variance on mean) needs
  at least LOESS_MIN_CELLS cells and LOESS_MIN_GENES genes with non-zero variance, and its native code
  crashes the process below that; there, and whenever the fit fails, genes are ranked by the variance
  of their log-normalized values instead (logged as a WARNING, recorded in uns).
- QC that removes more than half of the cells is a WARNING with the fraction (a targeted panel of a few
  hundred genes against min_genes=200 is the typical case); so are a label column with one class and a
  batch column with one batch. Warnings are listed in ``uns['preprocess']['warnings']``.
"""
from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import InputError
from ..labels import (PSEUDO_COLUMN, PSEUDO_INPUT, as_categories, kmeans_pseudo_labels, observed_label_key,
                      parse_label_key, pseudo_label_options, pseudo_note)
from .io import select_modality_features, validate_counts

_log = logging.getLogger("livaebench.data")

MODALITIES = ("rna", "atac")
DEFAULT_N_FEATURES = {"rna": 5000, "atac": 10000}
DEFAULT_MIN_FEATURES = {"rna": 200, "atac": 1}
TARGET_SUM = 1e4
CLIP = 10.0
ATAC_FRACTION = (0.01, 0.95)  # highly variable peaks come from peaks open in 1 %-95 % of cells
MIN_CELLS = 10  # cells and features a dataset needs after QC (the default latent dimension is 10)
MIN_FEATURES = 10
LOESS_MIN_CELLS = 10  # below these, scanpy's seurat_v3 loess fails or crashes the process (segfault)
LOESS_MIN_GENES = 50
MOST_REMOVED = 0.5  # QC removing more than this fraction of the cells is a WARNING
DEFAULT_LATENT_DIM = 10  # k of ``pseudo:kmeans`` when no options are given (the workflow's default latent_dim)


class _Reporter:
    """Info lines and warnings to a Logger, a one-argument callable (warnings prefixed) or the module log."""

    def __init__(self, log):
        if log is None:
            log = _log
        if isinstance(log, logging.Logger):
            self.info, self._warn = log.info, log.warning
        else:
            self.info, self._warn = log, (lambda message: log(f"WARNING: {message}"))
        self.warnings: list[str] = []

    def __call__(self, message: str) -> None:
        self.info(message)

    def warning(self, message: str) -> None:
        self.warnings.append(message)
        self._warn(message)


def _row_scale(X: sp.csr_matrix, factors: np.ndarray) -> sp.csr_matrix:
    return sp.csr_matrix(sp.diags(factors) @ X)


def _subset(X: sp.csr_matrix, rows: np.ndarray | None = None, cols: np.ndarray | None = None) -> sp.csr_matrix:
    """``X[rows][:, cols]`` without copying the matrix when the selection keeps everything (at 100k cells
    each copy of the count matrix is gigabytes)."""
    if rows is not None and not (len(rows) == X.shape[0] and np.array_equal(rows, np.arange(X.shape[0]))):
        X = X[rows]
    if cols is not None and not (len(cols) == X.shape[1] and np.array_equal(cols, np.arange(X.shape[1]))):
        X = X[:, cols]
    return X


def lognormalize(counts: sp.csr_matrix, library: np.ndarray | None = None) -> sp.csr_matrix:
    """log1p(x / library * 1e4); ``library`` defaults to the row sums of ``counts``.

    Scaled in place on one float64 copy: x * (1e4 / l) entry by entry, the same single product per
    entry as a diagonal-matrix product, without its second copy.
    """
    out = sp.csr_matrix(counts, dtype=np.float64, copy=True)
    lib = np.asarray(out.sum(axis=1)).ravel() if library is None else np.asarray(library, dtype=np.float64)
    out.data *= np.repeat(TARGET_SUM / np.where(lib > 0, lib, 1.0), np.diff(out.indptr))
    np.log1p(out.data, out=out.data)
    return out


def zscore_clip(X: np.ndarray, clip: float = CLIP) -> np.ndarray:
    """Per-column z-score (sample s.d., ddof=1; constant columns become 0) clipped at +-clip."""
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    sd = X.std(axis=0, ddof=1) if X.shape[0] > 1 else np.zeros(X.shape[1])
    sd[sd == 0] = 1.0
    return np.clip((X - mean) / sd, -clip, clip)


def zscore_clip_sparse(X: sp.csr_matrix, clip: float = CLIP, block_bytes: int = 256 * 2**20) -> np.ndarray:
    """``zscore_clip(X.toarray())`` as float32, computed in column blocks of at most ``block_bytes``.

    Each column's statistics and values are computed exactly as on the whole dense matrix (a C-ordered
    block: numpy then reduces along axis 0 row after row, as on the whole matrix), so the result is the
    same to the bit (tested); only one float64
    block lives at a time instead of the whole matrix and its temporaries (4 GB each at 100k x 5000).
    """
    X = sp.csr_matrix(X, dtype=np.float64)  # column blocks sliced from the rows: no whole CSC copy
    out = np.empty(X.shape, dtype=np.float32)
    step = max(1, block_bytes // (8 * max(1, X.shape[0])))
    for start in range(0, X.shape[1], step):
        stop = min(start + step, X.shape[1])
        out[:, start:stop] = zscore_clip(X[:, start:stop].toarray(order="C"))
    return out


def tfidf(counts: sp.csr_matrix) -> sp.csr_matrix:
    """The paper's eq. 21 (docs/methods.md §1.2): log1p(x_ig / sum_g x_ig * log(1 + n / n_g) * 1e4); n_g = cells with peak g open."""
    counts = sp.csr_matrix(counts, dtype=np.float64)
    n = counts.shape[0]
    lib = np.asarray(counts.sum(axis=1)).ravel()
    n_g = np.bincount(counts.indices[counts.data > 0], minlength=counts.shape[1])
    idf = np.log1p(n / np.maximum(n_g, 1))  # n_g = 0 only where the column is all zero: value irrelevant
    out = _row_scale(counts, 1.0 / np.where(lib > 0, lib, 1.0)) @ sp.diags(idf)
    out = sp.csr_matrix(out)
    out.data = np.log1p(out.data * TARGET_SUM)
    return out


def _column_var(X: sp.csr_matrix) -> np.ndarray:
    mean = np.asarray(X.mean(axis=0)).ravel()
    sq = np.asarray(X.multiply(X).mean(axis=0)).ravel()
    return np.maximum(sq - mean**2, 0.0)


def _qc(counts: sp.csr_matrix, var_names: pd.Index, *, dataset: str, modality: str, min_genes: int,
        min_cells: int, max_mito_pct: float | None, say) -> tuple[np.ndarray, np.ndarray, dict]:
    """Boolean masks of the cells and features that pass QC, plus counts of what went."""
    n_feat = np.diff(counts.indptr)
    keep_cells = n_feat >= min_genes
    info = {"cells_below_min_genes": int((~keep_cells).sum())}
    if max_mito_pct is not None:
        if modality != "rna":
            say(f"{dataset}: max_mito_pct applies to RNA only; ignored for {modality}")
        else:
            mito = np.asarray(var_names.str.upper().str.startswith("MT-"))
            if not mito.any():
                say(f"{dataset}: no mitochondrial gene symbols (MT-/mt-) among the features; mito cap skipped")
            else:
                total = np.asarray(counts.sum(axis=1)).ravel()
                in_mito = np.asarray(counts[:, np.flatnonzero(mito)].sum(axis=1)).ravel()
                pct = 100.0 * in_mito / np.where(total > 0, total, 1.0)
                over = keep_cells & (pct > max_mito_pct)
                info["cells_above_mito_pct"] = int(over.sum())
                keep_cells &= ~over
    if not keep_cells.any():
        raise InputError(
            f"dataset '{dataset}'",
            f"no cell passes QC (min_genes={min_genes}"
            + (f", max_mito_pct={max_mito_pct}" if max_mito_pct is not None else "")
            + f"; the richest cell has {int(n_feat.max()) if n_feat.size else 0} detected features)",
            "lower min_genes (ATAC: min_peaks) or raise max_mito_pct, for this dataset in the registry or for "
            "all in the config's preprocess section",
        )
    indices = counts.indices if keep_cells.all() else _subset(counts, np.flatnonzero(keep_cells)).indices
    n_cells = np.bincount(indices, minlength=counts.shape[1])
    keep_feats = n_cells >= min_cells
    info["features_below_min_cells"] = int((~keep_feats).sum())
    if not keep_feats.any():
        raise InputError(f"dataset '{dataset}'",
                         f"no feature is detected in at least min_cells={min_cells} of the cells that pass QC",
                         "lower min_cells for this dataset in the registry, or in the config's preprocess section")
    say(f"{dataset}: QC keeps {int(keep_cells.sum())}/{counts.shape[0]} cells and "
        f"{int(keep_feats.sum())}/{counts.shape[1]} features (min_genes={min_genes}, min_cells={min_cells})")
    return keep_cells, keep_feats, info


def _select_rna(counts: sp.csr_matrix, var_names: pd.Index, n: int, say=None,
                dataset: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Indices of the top-n genes by scanpy's seurat_v3 (on raw counts) and their normalized variances.

    Where seurat_v3 cannot work (fewer than LOESS_MIN_CELLS cells or LOESS_MIN_GENES genes with non-zero
    variance: its loess fails, or crashes the process) or its fit fails, the genes are ranked by the
    variance of their log-normalized values instead; ``say.warning`` says so. Ties keep feature order.
    """
    say = say if isinstance(say, _Reporter) else _Reporter(say)
    n_cells = counts.shape[0]
    # non-negative integer counts: a gene varies iff its largest and smallest values differ (exact, and
    # without the float64 copies a variance would take)
    variable = int((counts.max(axis=0).toarray() != counts.min(axis=0).toarray()).sum()) if n_cells > 1 else 0
    reason = None
    if n_cells < LOESS_MIN_CELLS or variable < LOESS_MIN_GENES:
        reason = (f"it needs at least {LOESS_MIN_CELLS} cells and {LOESS_MIN_GENES} genes with non-zero "
                  f"variance, the data have {n_cells} and {variable}")
    else:
        import scanpy as sc  # costs seconds to import; only preprocessing needs it

        tmp = ad.AnnData(X=counts.astype(np.float32), var=pd.DataFrame(index=var_names))  # scanpy wants floats
        try:
            sc.pp.highly_variable_genes(tmp, flavor="seurat_v3", n_top_genes=n)
        except ValueError as exc:  # skmisc's loess: "svddc failed in l2fit", "near singularities", ...
            reason = f"its loess fit failed ({' '.join(str(exc).split())[:120]})"
        else:
            chosen = np.flatnonzero(tmp.var["highly_variable"].to_numpy())
            return chosen, tmp.var["variances_norm"].to_numpy()[chosen]
    say.warning(f"{dataset}: seurat_v3 highly variable genes not used: {reason}; genes ranked by the variance "
                "of their log-normalized values instead")
    score = _column_var(lognormalize(counts))
    chosen = np.sort(np.argsort(-score, kind="stable")[:n])
    return chosen, score[chosen]


def _select_atac(counts: sp.csr_matrix, n: int, say, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    frac = np.bincount(counts.indices, minlength=counts.shape[1]) / counts.shape[0]
    lo, hi = ATAC_FRACTION
    eligible = np.flatnonzero((frac >= lo) & (frac <= hi))
    if eligible.size == 0:
        raise InputError(f"dataset '{dataset}'", f"no peak is accessible in {lo:.0%}-{hi:.0%} of the cells",
                         "use a dataset with more cells or broader peaks")
    if eligible.size < n:
        say(f"{dataset}: {n} features requested but only {eligible.size} peaks are open in "
            f"{lo:.0%}-{hi:.0%} of cells; taking all {eligible.size}")
        n = eligible.size
    var = _column_var(tfidf(counts))
    order = np.argsort(-var[eligible], kind="stable")[:n]  # stable: ties keep feature order (reproducible)
    chosen = np.sort(eligible[order])
    return chosen, var[chosen]


def preprocess(adata: ad.AnnData, *, dataset: str, modality: str, label_key: str = "", batch_key: str = "",
               n_features: int | None = None, min_genes: int | None = None, min_cells: int = 3,
               max_mito_pct: float | None = None, pseudo_labels: dict | None = None, log=None) -> ad.AnnData:
    """QC, feature selection and normalization of a raw-count AnnData (docs/methods.md §1).

    ``n_features`` defaults to 5000 (RNA) / 10000 (ATAC) and is capped at what the data has (logged).
    ``min_genes`` is the minimum number of detected features per cell, default 200 for RNA and 1 for
    ATAC. ``log`` is a logging.Logger or a callable taking one string (warnings then start with
    "WARNING: "). The input is not modified.

    ``label_key`` may be a pseudo-label spec (``pseudo:kmeans`` or ``pseudo:kmeans:K``); ``pseudo_labels``
    then gives k, seed and n_init (``livaebench.labels.pseudo_label_options``; default: k from the spec, else
    DEFAULT_LATENT_DIM, seed 0).
    """
    say = _Reporter(log)
    pseudo = parse_label_key(label_key, f"dataset '{dataset}': label_key")
    if pseudo is not None:
        pseudo_labels = pseudo_labels or pseudo_label_options(label_key, latent_dim=DEFAULT_LATENT_DIM, seed=0)
    elif pseudo_labels:
        raise ValueError(f"{dataset}: pseudo_labels given but label_key {label_key!r} is not a pseudo-label spec")
    spec, label_key = label_key, observed_label_key(label_key)
    if modality not in MODALITIES:
        raise InputError(f"dataset '{dataset}'", f"unknown modality '{modality}'", "use 'rna' or 'atac'")
    if min_genes is None:
        min_genes = DEFAULT_MIN_FEATURES[modality]
    n_req = DEFAULT_N_FEATURES[modality] if n_features is None else int(n_features)
    if n_req < 1:
        raise InputError(f"dataset '{dataset}'", f"n_features must be positive (got {n_req})",
                         "set n_features to a positive number or leave it empty for the default")
    n_cells_input, n_features_input = int(adata.n_obs), int(adata.n_vars)
    typed = select_modality_features(adata, dataset=dataset, modality=modality, say=say)
    # A shallow AnnData around the same arrays: validate_counts replaces .X/.names on it, not on the input.
    work = ad.AnnData(X=typed.X, obs=typed.obs.copy(), var=pd.DataFrame(index=typed.var_names.copy()))
    work = validate_counts(work, dataset=dataset, source="counts", label_key=label_key, batch_key=batch_key)
    counts = work.X
    keep_cells, keep_feats, qc_info = _qc(counts, work.var_names, dataset=dataset, modality=modality,
                                          min_genes=min_genes, min_cells=min_cells,
                                          max_mito_pct=max_mito_pct, say=say)
    cells = np.flatnonzero(keep_cells)
    feats = np.flatnonzero(keep_feats)
    _check_size(dataset, len(cells), len(feats), n_req, "pass QC", min_genes=min_genes, min_cells=min_cells)
    # per-cell QC columns now, from the validated matrix, so it can go before the normalization
    n_features_detected = np.diff(counts.indptr).astype(np.int32)
    total_counts = np.asarray(counts.sum(axis=1, dtype=np.int64)).ravel()
    qc_counts = _subset(counts, cells, feats)
    n_avail = len(feats)
    n = min(n_req, n_avail)
    if modality == "rna" and n < n_req:
        say(f"{dataset}: {n_req} features requested but only {n_avail} genes pass QC; taking all {n_avail}")

    if modality == "rna":
        chosen, score = _select_rna(qc_counts, work.var_names[feats], n, say, dataset)
    else:
        chosen, score = _select_atac(qc_counts, n_req, say, dataset)
    sel_counts = _subset(qc_counts, cols=chosen)
    nonempty = np.diff(sel_counts.indptr) > 0
    if not nonempty.all():
        say(f"{dataset}: {int((~nonempty).sum())} cells have no counts in the selected features; dropped")
    if not nonempty.any():
        raise InputError(f"dataset '{dataset}'", "no cell has counts in the selected features",
                         "raise n_features or lower min_cells")
    rows = np.flatnonzero(nonempty)
    cells, qc_counts, sel_counts = cells[rows], _subset(qc_counts, rows), _subset(sel_counts, rows)
    _check_size(dataset, len(cells), len(chosen), n_req, "have counts in the selected features",
                min_genes=min_genes, min_cells=min_cells)

    obs_names, var_names = work.obs_names, work.var_names
    if modality == "rna":
        library = np.asarray(qc_counts.sum(axis=1)).ravel()  # over all QC genes, not only the selected
        del qc_counts, counts, work  # the largest arrays go before the normalized copies are made
        lognorm = lognormalize(sel_counts, library)
        X = zscore_clip_sparse(lognorm)
        lognorm = sp.csr_matrix(lognorm, dtype=np.float32)  # the float64 copy goes
    else:
        lognorm = tfidf(qc_counts)[:, chosen]
        X = lognorm.toarray()

    out_feats = feats[chosen]
    obs = typed.obs.iloc[cells].copy()
    obs.index = obs_names[cells]
    for col in obs.columns:
        if isinstance(obs[col].dtype, pd.CategoricalDtype):
            obs[col] = obs[col].cat.remove_unused_categories()
    obs["n_features_detected"] = n_features_detected[cells]
    obs["total_counts"] = total_counts[cells]
    var = typed.var.iloc[out_feats].copy()
    var.index = var_names[out_feats]
    var["n_cells"] = np.bincount(sel_counts.indices, minlength=sel_counts.shape[1]).astype(np.int32)
    var["selection_score"] = score.astype(np.float64)  # RNA: seurat_v3 normalized variance; ATAC: TF-IDF variance

    result = ad.AnnData(
        X=X.astype(np.float32, copy=False),
        obs=obs,
        var=var,
        layers={"counts": sp.csr_matrix(sel_counts, dtype=np.float32),
                "lognorm": sp.csr_matrix(lognorm, dtype=np.float32, copy=False)},
    )
    removed = 1.0 - result.n_obs / n_cells_input
    if removed > MOST_REMOVED:
        why = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in qc_info.items() if k.startswith("cells_") and v)
        extra = int((~nonempty).sum())
        why += (", " if why else "") + (f"{extra} without counts in the selected features" if extra else "")
        say.warning(f"{dataset}: QC removed {removed:.0%} of the cells ({n_cells_input - result.n_obs} of "
                    f"{n_cells_input}: {why}; min_genes={min_genes}, min_cells={min_cells}); if that is not "
                    "intended (e.g. a targeted panel of a few hundred genes), set min_genes"
                    f"{' (ATAC: min_peaks)' if modality == 'atac' else ''} for this dataset in the registry")
    label_note = ""
    if pseudo is not None:
        label_key, label_note = _add_pseudo_labels(result, dataset, spec, pseudo_labels, say)
    for role, key in (("label", label_key), ("batch", batch_key)):
        if key:
            levels = result.obs[key].dropna().nunique()
            if levels < 2:
                say.warning(f"{dataset}: {role} column '{key}' has {levels} distinct value(s) among the kept cells; "
                            + ("label-based scores (NMI, ARI) are degenerate" if role == "label"
                               else "batch-mixing scores (iLISI) are degenerate"))
    result.uns["livaebench"] = {"dataset": dataset, "modality": modality, "label_key": label_key or "",
                                "batch_key": batch_key or "", "label_note": label_note}
    result.uns["preprocess"] = {
        "n_cells_input": n_cells_input, "n_features_input": n_features_input,
        "n_cells": int(result.n_obs), "n_features": int(result.n_vars),
        "n_features_requested": n_req, "min_genes": int(min_genes), "min_cells": int(min_cells),
        "max_mito_pct": float("nan") if max_mito_pct is None else float(max_mito_pct),
        "cells_without_selected_counts": int((~nonempty).sum()),
        "fraction_cells_removed": float(removed),
        "features_of_other_types": int(adata.n_vars - typed.n_vars),
        "warnings": list(say.warnings),
        **qc_info,
    }
    if "provenance" in adata.uns:
        result.uns["provenance"] = adata.uns["provenance"]
    say(f"{dataset}: preprocessed {result.n_obs} cells x {result.n_vars} {modality} features")
    return result


def _add_pseudo_labels(result: ad.AnnData, dataset: str, spec: str, options: dict, say) -> tuple[str, str]:
    """KMeans pseudo-labels of the kept cells into ``obs[PSEUDO_COLUMN]`` and ``uns['pseudo_labels']``;
    returns (label column, label note)."""
    k, seed, n_init = int(options["k"]), int(options["seed"]), int(options["n_init"])
    if k > result.n_obs:
        raise InputError(f"dataset '{dataset}'", f"label_key {spec!r} asks for k = {k} pseudo-label clusters but "
                         f"only {result.n_obs} cells pass QC", "write a smaller K (pseudo:kmeans:K) in the registry")
    if PSEUDO_COLUMN in result.obs:
        say.warning(f"{dataset}: the data's own obs column '{PSEUDO_COLUMN}' is replaced by the pseudo-labels")
    clusters = kmeans_pseudo_labels(result.layers["lognorm"], k, seed, n_init)
    sizes = np.bincount(clusters, minlength=k)
    if (sizes == 0).any():  # KMeans finds fewer clusters where cells repeat exactly
        say.warning(f"{dataset}: KMeans found {int((sizes > 0).sum())} distinct pseudo-label clusters of the "
                    f"{k} requested (identical cells)")
    result.obs[PSEUDO_COLUMN] = as_categories(clusters, k)
    note = pseudo_note(k)
    result.uns["pseudo_labels"] = {"spec": spec, "method": "kmeans", "k": k, "k_rule": str(options.get("k_rule", "")),
                                   "seed": seed, "n_init": n_init, "input": PSEUDO_INPUT, "pca": False,
                                   "column": PSEUDO_COLUMN, "cluster_sizes": sizes.astype(np.int64)}
    say(f"{dataset}: label_key {spec}: {note} of {PSEUDO_INPUT} (no PCA, n_init={n_init}, seed={seed}) into "
        f"obs['{PSEUDO_COLUMN}']; cluster sizes {', '.join(map(str, sizes))}")
    return PSEUDO_COLUMN, note


def _check_size(dataset: str, n_cells: int, n_features: int, n_req: int, stage: str, *, min_genes: int,
                min_cells: int) -> None:
    """One line when a dataset is too small for the benchmark (after QC or after feature selection)."""
    need_features = min(MIN_FEATURES, n_req)
    if n_cells < MIN_CELLS:
        raise InputError(f"dataset '{dataset}'", f"only {n_cells} cells {stage} (min_genes={min_genes}); "
                         f"at least {MIN_CELLS} are needed", "lower min_genes (ATAC: min_peaks) for this dataset in "
                         "the registry, or use a dataset with more cells")
    if n_features < need_features:
        raise InputError(f"dataset '{dataset}'", f"only {n_features} features {stage} (min_cells={min_cells}); "
                         f"at least {need_features} are needed", "lower min_cells for this dataset in the "
                         "registry, or use a dataset with more features")
