"""The whole metric panel of one embedding, in the long format the workflow writes (metric, value).

``evaluate_embedding`` reads an embedding AnnData (obsm ``X_latent``, ``X_umap``, ``X_tsne``; obs with
the label/batch columns) and returns one row per metric. Names of the paper's metrics are exactly
those of the output contract (docs/output-contract.md); extras carry their own names (AMI, leiden_*, iLISI_raw, iLISI_n<size>,
KK_ARI … LL_NMI). A metric that does not apply is NaN (paper metrics) or absent (extras), and the
reason is logged and kept in ``df.attrs["reasons"]``; nothing is ever filled in.

Which cells each family sees:
- clustering, COR, intrinsic, iLISI: every cell (the silhouette on at most 20,000, seeded);
- distance correlation and co-ranking (O(n²)): one seeded subsample of at most ``max_cells`` cells,
  shared by the UMAP and the t-SNE scores (``max_cells=None`` uses every cell);
- iLISI_n<s>: a seeded subsample of s cells for each s in ``ilisi_subsample_sizes`` with s ≤ n.
"""
from __future__ import annotations

import logging
import time
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import InputError
from ..results import CLUSTERING_METRICS, DRE_SUFFIXES
from . import batch as batch_mod
from . import clustering as clu
from .embedding_quality import coranking_scores_from_histogram, distance_correlations, max_rank_histograms
from .intrinsic import NAMES as INTRINSIC_NAMES
from .intrinsic import intrinsic_metrics

VIEWS = (("umap", "X_umap"), ("tsne", "X_tsne"))
PIPELINES = ("KK", "KL", "LK", "LL")


def core_metric_names(with_batch: bool) -> list[str]:
    """The output contract's metric names (docs/output-contract.md), in order (iLISI only for datasets with a batch column)."""
    names = list(CLUSTERING_METRICS)
    for view, _ in VIEWS:
        names += [f"{view}_{s}" for s in DRE_SUFFIXES]
    names += list(INTRINSIC_NAMES)
    if with_batch:
        names.append("iLISI")
    return names


class _Panel:
    """Collects values, reasons and timings; logs every NaN or skipped metric once."""

    def __init__(self, log: logging.Logger, what: str):
        self.log, self.what = log, what
        self.values: dict[str, float] = {}
        self.reasons: dict[str, str] = {}
        self.timings: dict[str, float] = {}

    def set(self, name: str, value) -> None:
        self.values[name] = float(value)

    def nan(self, names: Iterable[str], reason: str) -> None:
        names = list(names)
        for n in names:
            self.values[n] = float("nan")
            self.reasons[n] = reason
        self.log.warning("%s: %s = NaN: %s", self.what, ", ".join(names), reason)

    def skip(self, names: Iterable[str], reason: str) -> None:
        names = list(names)
        for n in names:
            self.reasons[n] = reason
        self.log.info("%s: %s not computed: %s", self.what, ", ".join(names), reason)

    def timed(self, key: str):
        panel = self

        class _T:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                panel.timings[key] = panel.timings.get(key, 0.0) + time.perf_counter() - self.t

        return _T()


def _obs_column(adata, key: str, role: str, what: str) -> pd.Series | None:
    if not key:
        return None
    if key not in adata.obs.columns:
        columns = ", ".join(map(str, adata.obs.columns))
        raise InputError(what, f"obs has no {role} column '{key}' (columns: {columns})",
                         f"set the dataset's {role}_key in config/datasets.tsv to an existing column, or to '' for none")
    return adata.obs[key]


def _finite_obsm(adata, key: str) -> np.ndarray | None:
    if key not in adata.obsm:
        return None
    x = np.asarray(adata.obsm[key], dtype=np.float64)
    return x if x.ndim == 2 and np.isfinite(x).all() else None


def evaluate_embedding(adata, *, label_key: str = "", batch_key: str = "", seed: int = 0,
                       max_cells: int | None = 3000, n_clusters: int | None = None,
                       ilisi_subsample_sizes=(2000, 4000, 6000, 8000), log: logging.Logger | None = None,
                       leiden: bool = True) -> pd.DataFrame:
    """All metrics of one embedding as a DataFrame with columns ``metric`` and ``value``.

    label_key / batch_key: obs columns ('' = the dataset has none). Cells with a missing label are left
    out of the label scores, cells with a missing batch out of the batch scores.
    n_clusters: k of K-means when the dataset has no labels (with labels, k = number of categories).
    leiden: also cluster with Leiden (leiden_* and the L pipelines); needs scanpy.
    ``df.attrs`` holds "reasons" (metric → why NaN/absent), "timings" (seconds per block) and
    "n_cells_dre" (cells in the co-ranking subsample).
    """
    log = log or logging.getLogger("livaebench.metrics")
    info = dict(adata.uns.get("livaebench", {})) if hasattr(adata, "uns") else {}
    what = "/".join(str(info[k]) for k in ("dataset", "method", "seed") if k in info) or "embedding"
    if "X_latent" not in adata.obsm:
        raise InputError(what, "the embedding has no obsm['X_latent']",
                         "evaluate files written by the embedding step (obsm X_latent, X_umap, X_tsne)")
    z = _finite_obsm(adata, "X_latent")
    if z is None:
        raise InputError(what, "obsm['X_latent'] is not a finite 2-D array (NaN or inf values)",
                         "check the method's training log; a diverged model must not be evaluated")
    n = z.shape[0]
    labels = _obs_column(adata, label_key, "label", what)
    batches = _obs_column(adata, batch_key, "batch", what)
    p = _Panel(log, what)

    # --- clustering -------------------------------------------------------------------------------
    has_labels = labels is not None and labels.notna().any()
    labelled = labels.notna().to_numpy() if has_labels else np.zeros(n, dtype=bool)
    y = labels.astype(str).to_numpy()[labelled] if has_labels else None
    if not has_labels:
        reason = "the dataset has no label column" if labels is None else f"label column '{label_key}' is empty"
        p.nan(("NMI", "ARI"), reason)
        p.skip(("AMI", "leiden_NMI", "leiden_ARI"), reason)
    elif not labelled.all():
        log.info("%s: %d of %d cells have no label and are left out of NMI/ARI", what, (~labelled).sum(), n)
    k = len(np.unique(y)) if has_labels else n_clusters
    if has_labels and n_clusters is not None and n_clusters != k:
        log.info("%s: K-means uses k = %d label categories, not the configured n_clusters = %d", what, k, n_clusters)
    kmeans = None
    with p.timed("kmeans"):
        if k is None or k < 2:
            reason = ("no labels and no n_clusters configured" if k is None
                      else f"k = {k}: K-means needs at least 2 clusters")
            p.nan(("ASW", "CAL", "DAV"), reason)
            if has_labels:
                p.nan(("NMI", "ARI"), reason)
        else:
            kmeans = clu.kmeans_labels(z, k, seed)
            if has_labels:
                for m, v in clu.label_agreement(y, kmeans[labelled]).items():
                    p.set(m, v)
    if kmeans is not None:
        with p.timed("silhouette_ch_db"):
            scores, reasons = clu.partition_quality(z, kmeans, seed)
            for m, v in scores.items():
                if m in reasons:
                    p.nan((m,), reasons[m])
                else:
                    p.set(m, v)
    p.set("COR", clu.coupling_degree(z))
    leiden_labels = None
    if has_labels and leiden:
        with p.timed("leiden"):
            leiden_labels = clu.leiden_labels(z, seed)
            scores = clu.label_agreement(y, leiden_labels[labelled])
            p.set("leiden_NMI", scores["NMI"])
            p.set("leiden_ARI", scores["ARI"])

    # --- embedding quality (co-ranking subsample) -------------------------------------------------
    m = n if max_cells is None or max_cells <= 0 else min(n, int(max_cells))
    sub = np.arange(n) if m == n else np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))
    if m < n:
        log.info("%s: distance correlation and co-ranking on a seeded subsample of %d of %d cells", what, m, n)
    views, view_names = [], []
    for view, key in VIEWS:
        x = _finite_obsm(adata, key)
        names = [f"{view}_{s}" for s in DRE_SUFFIXES]
        if x is None:
            p.nan(names, f"obsm['{key}'] is missing or not finite")
        elif m < 4:
            p.nan(names, f"co-ranking needs at least 4 cells, the embedding has {m}")
        else:
            views.append(x[sub])
            view_names.append(view)
    if views:
        zs = z[sub]
        with p.timed("coranking"):
            hists = max_rank_histograms(zs, views)
        with p.timed("distance_correlation"):
            dcorrs = distance_correlations(zs, views)
        for view, hist, dc in zip(view_names, hists, dcorrs):
            cr = coranking_scores_from_histogram(hist)
            p.set(f"{view}_dcorr", dc)
            p.set(f"{view}_qlocal", cr.q_local)
            p.set(f"{view}_qglobal", cr.q_global)
            if np.isnan(cr.q_global):
                p.nan((f"{view}_qglobal",), f"K_max = n - 2 = {cr.k_max}: no K above K_max")
            p.set(f"{view}_kmax", cr.k_max)
            parts = (dc, cr.q_local, cr.q_global)
            if np.isnan(parts).any():
                p.nan((f"{view}_overall",), "one of dcorr, Q_local, Q_global is NaN")
            else:
                p.set(f"{view}_overall", np.mean(parts))

    # --- intrinsic ----------------------------------------------------------------------------------
    with p.timed("intrinsic"):
        try:
            for name, v in intrinsic_metrics(z).items():
                p.set(name, v)
        except ValueError as e:
            p.nan(INTRINSIC_NAMES, str(e))

    # --- batch mixing -------------------------------------------------------------------------------
    if batches is not None:
        with_batch = batches.notna().to_numpy()
        b = batches.astype(str).to_numpy()[with_batch]
        zb = z[with_batch]
        n_batches = len(np.unique(b))
        extras = ["iLISI_raw"] + [f"iLISI_n{s}" for s in ilisi_subsample_sizes]
        if not with_batch.all():
            log.info("%s: %d cells without a batch are left out of iLISI", what, (~with_batch).sum())
        if n_batches < 2:
            p.nan(("iLISI",), f"batch column '{batch_key}' has {n_batches} batch(es); iLISI needs 2")
            p.skip(extras, "fewer than 2 batches")
        else:
            with p.timed("ilisi"):
                scaled, raw, _ = batch_mod.ilisi(zb, b)
                p.set("iLISI", scaled)
                p.set("iLISI_raw", raw)
                for s in ilisi_subsample_sizes:
                    name = f"iLISI_n{s}"
                    if s > len(zb):
                        p.skip((name,), f"the dataset has {len(zb)} cells with a batch, fewer than {s}")
                        continue
                    pick = (np.arange(len(zb)) if s == len(zb)
                            else np.random.default_rng([seed, s]).choice(len(zb), size=s, replace=False))
                    if len(np.unique(b[pick])) < 2:
                        p.nan((name,), f"the subsample of {s} cells holds a single batch")
                        continue
                    p.set(name, batch_mod.ilisi(zb[pick], b[pick])[0])
        # --- pre/post clustering pipelines (multi-batch, labelled) ---------------------------------
        names = [f"{pipe}_{s}" for pipe in PIPELINES for s in ("ARI", "NMI")]
        if n_batches < 2:
            p.skip(names, "fewer than 2 batches")
        elif not has_labels or kmeans is None:
            p.skip(names, "the pipelines score clusters against labels; the dataset has none")
        elif leiden_labels is None:
            p.skip(names, "Leiden disabled (leiden=False)")
        else:
            keep = labelled & with_batch
            with p.timed("pipelines"):
                scores = clu.batch_pipelines(z[keep], labels.astype(str).to_numpy()[keep],
                                             batches.astype(str).to_numpy()[keep],
                                             {"K": kmeans[keep], "L": leiden_labels[keep]}, seed)
            for name, v in scores.items():
                p.set(name, v)

    core = core_metric_names(batches is not None)
    for name in core:  # every paper metric is present, as a value or as a NaN with its reason
        if name not in p.values:
            p.nan((name,), "not computed")
    order = core + [k for k in p.values if k not in core]
    df = pd.DataFrame({"metric": order, "value": [p.values[k] for k in order]})
    df.attrs.update(reasons=dict(p.reasons), timings=dict(p.timings), n_cells_dre=int(m))
    return df
