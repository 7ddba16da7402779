"""The whole metric panel of one embedding, in the long format the workflow writes (metric, value).

``evaluate_embedding`` reads an embedding AnnData (obsm ``X_latent``, ``X_umap``, ``X_tsne``; obs with
the label/batch columns) and returns one row per metric. Names of the paper's metrics are exactly
those of the output contract (docs/output-contract.md); extras carry their own names (AMI, leiden_*, iLISI_raw, iLISI_n<size>,
KK_ARI … LL_NMI). Every metric declares what it needs (``REQUIREMENTS``: latent dimensions, labels,
batches, cells, a view; assembled here from the metric modules) and is computed only where the embedding
meets it. A metric that does not apply is NaN (paper metrics) or absent (extras) with a one-line reason,
logged, kept in the ``reason`` column (NaN rows) and in ``df.attrs["reasons"]``; nothing is filled in.

Which cells each family sees:
- clustering, COR, intrinsic, iLISI: every cell (the silhouette on at most 20,000, seeded);
- distance correlation and co-ranking (O(n²)): one seeded subsample of at most ``max_cells`` cells,
  shared by the UMAP and the t-SNE scores (``max_cells=None`` uses every cell);
- iLISI_n<s>: a seeded subsample of s cells for each s in ``ilisi_subsample_sizes`` with s ≤ n.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import time
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import InputError
from ..results import CLUSTERING_METRICS, DRE_SUFFIXES
from . import batch as batch_mod
from . import clustering as clu
from . import embedding_quality as dre
from . import intrinsic as intr
from .embedding_quality import coranking_scores_from_histogram, distance_correlations, max_rank_histograms
from .intrinsic import NAMES as INTRINSIC_NAMES
from .intrinsic import intrinsic_metrics
from .requirements import Domain, Requirement

VIEWS = (("umap", "X_umap"), ("tsne", "X_tsne"))
PIPELINES = clu.PIPELINES

# Every metric of the panel → what it needs to be defined (declared beside each metric's definition).
REQUIREMENTS: dict[str, Requirement] = {
    **clu.REQUIREMENTS,
    **{f"{view}_{s}": dataclasses.replace(r, view=key) for view, key in VIEWS for s, r in dre.REQUIREMENTS.items()},
    **intr.REQUIREMENTS,
    **batch_mod.REQUIREMENTS,
}


def requirement(metric: str) -> Requirement:
    """The requirement of a metric of the panel (``iLISI_n2000`` → that of ``iLISI_n{s}``)."""
    key = re.sub(r"^iLISI_n\d+$", "iLISI_n{s}", metric)
    if key not in REQUIREMENTS:
        raise KeyError(f"metric '{metric}' declares no requirement (add it to its module's REQUIREMENTS)")
    return REQUIREMENTS[key]


def requirements_table() -> pd.DataFrame:
    """``metrics needs why``: the metrics sharing a requirement on one row (docs/methods.md §3.7)."""
    groups: dict[Requirement, list[str]] = {}
    for name, req in REQUIREMENTS.items():
        groups.setdefault(req, []).append(name)
    rows = [{"metrics": ", ".join(names), "needs": req.describe(), "why": req.why} for req, names in groups.items()]
    return pd.DataFrame(rows, columns=["metrics", "needs", "why"])


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

    def __init__(self, log: logging.Logger, what: str, core: Iterable[str]):
        self.log, self.what = log, what
        self.core = frozenset(core)
        self.values: dict[str, float] = {}
        self.reasons: dict[str, str] = {}
        self.timings: dict[str, float] = {}

    def set(self, name: str, value) -> None:
        value = float(value)
        if np.isnan(value):
            self.nan((name,), self.reasons.get(name, "the computation gave NaN on this data"))
            return
        self.values[name] = value
        self.reasons.pop(name, None)

    def admit(self, names: Iterable[str], domain: Domain) -> list[str]:
        """The metrics of ``names`` whose requirements ``domain`` meets; the others get their reason
        (NaN for paper metrics, absent for extras), one log line per reason."""
        ok, unmet = [], {}
        for name in names:
            why = requirement(name).unmet(domain)
            if why is None:
                ok.append(name)
            else:
                unmet.setdefault(why, []).append(name)
        for why, group in unmet.items():
            paper = [n for n in group if n in self.core]
            if paper:
                self.nan(paper, why)
            if len(paper) < len(group):
                self.skip([n for n in group if n not in self.core], why)
        return ok

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
    """All metrics of one embedding as a DataFrame with columns ``metric``, ``value`` and ``reason``.

    label_key / batch_key: obs columns ('' = the dataset has none). Cells with a missing label are left
    out of the label scores, cells with a missing batch out of the batch scores.
    n_clusters: k of K-means when the dataset has no labels (with labels, k = number of categories).
    leiden: also cluster with Leiden (leiden_* and the L pipelines); needs scanpy.
    ``reason`` is empty for a value and says why for a NaN (a metric outside its domain, see
    ``REQUIREMENTS``, or a degenerate result). ``df.attrs`` holds "reasons" (metric → why NaN/absent),
    "timings" (seconds per block) and "n_cells_dre" (cells in the co-ranking subsample).
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
    n, d = z.shape
    labels = _obs_column(adata, label_key, "label", what)
    batches = _obs_column(adata, batch_key, "batch", what)
    core = core_metric_names(batches is not None)
    p = _Panel(log, what, core)

    # --- what the embedding offers: the domain every requirement is checked against ----------------
    has_labels = labels is not None and labels.notna().any()
    labelled = labels.notna().to_numpy() if has_labels else np.zeros(n, dtype=bool)
    y = labels.astype(str).to_numpy()[labelled] if has_labels else None
    n_categories = len(np.unique(y)) if has_labels else None
    if has_labels and not labelled.all():
        log.info("%s: %d of %d cells have no label and are left out of NMI/ARI", what, (~labelled).sum(), n)
    k = n_categories if has_labels else n_clusters
    if has_labels and n_clusters is not None and n_clusters != k:
        log.info("%s: K-means uses k = %d label categories, not the configured n_clusters = %d", what, k, n_clusters)
    if batches is not None:
        with_batch = batches.notna().to_numpy()
        b = batches.astype(str).to_numpy()[with_batch]
        zb = z[with_batch]
        n_batches = len(np.unique(b))
        if not with_batch.all():
            log.info("%s: %d cells without a batch are left out of iLISI", what, (~with_batch).sum())
    m = n if max_cells is None or max_cells <= 0 else min(n, int(max_cells))
    view_coords = {key: _finite_obsm(adata, key) for _, key in VIEWS}
    domain = Domain(
        dims=d,
        cells={"all": n, "labelled": int(labelled.sum()), "dre": m,
               "batch": len(zb) if batches is not None else 0},
        label_categories=n_categories,
        label_source=(f"label column '{label_key}'" if has_labels else
                      "the dataset has no label column" if labels is None else f"label column '{label_key}' is empty"),
        clusters=k,
        cluster_source=(f"k = {n_categories} label categor{'y' if n_categories == 1 else 'ies'}" if has_labels else
                        "no labels and no n_clusters configured" if k is None else f"n_clusters = {k}"),
        batches=n_batches if batches is not None else None,
        batch_source=f"batch column '{batch_key}'" if batches is not None else "the dataset has no batch column",
        views=frozenset(key for key, x in view_coords.items() if x is not None),
    )

    # --- clustering -------------------------------------------------------------------------------
    agreement = p.admit(("NMI", "ARI", "AMI"), domain)
    partition = p.admit(("ASW", "CAL", "DAV"), domain)
    kmeans = None
    if agreement or partition:
        with p.timed("kmeans"):
            kmeans = clu.kmeans_labels(z, k, seed)
        for name, v in (clu.label_agreement(y, kmeans[labelled]).items() if agreement else ()):
            p.set(name, v)
    if partition:
        with p.timed("silhouette_ch_db"):
            scores, reasons = clu.partition_quality(z, kmeans, seed)
            for name, v in scores.items():
                if name in reasons:
                    p.nan((name,), reasons[name])
                else:
                    p.set(name, v)
    if p.admit(("COR",), domain):
        p.set("COR", clu.coupling_degree(z))
    leiden_labels = None
    if has_labels and not leiden:
        p.skip(("leiden_NMI", "leiden_ARI"), "Leiden disabled (leiden=False)")
    elif p.admit(("leiden_NMI", "leiden_ARI"), domain):
        with p.timed("leiden"):
            leiden_labels = clu.leiden_labels(z, seed)
            scores = clu.label_agreement(y, leiden_labels[labelled])
            p.set("leiden_NMI", scores["NMI"])
            p.set("leiden_ARI", scores["ARI"])

    # --- embedding quality (co-ranking subsample) -------------------------------------------------
    sub = np.arange(n) if m == n else np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))
    if m < n:
        log.info("%s: distance correlation and co-ranking on a seeded subsample of %d of %d cells", what, m, n)
    dc_views, cr_views = [], []  # (view name, subsampled coordinates)
    for view, key in VIEWS:
        admitted = p.admit([f"{view}_{s}" for s in (*DRE_SUFFIXES, "kmax")], domain)
        if f"{view}_dcorr" in admitted:
            dc_views.append((view, view_coords[key][sub]))
        if f"{view}_qlocal" in admitted:
            cr_views.append((view, view_coords[key][sub]))
    zs = z[sub]
    if cr_views:
        with p.timed("coranking"):
            hists = max_rank_histograms(zs, [x for _, x in cr_views])
        for (view, _), hist in zip(cr_views, hists):
            cr = coranking_scores_from_histogram(hist)
            p.set(f"{view}_qlocal", cr.q_local)
            if np.isnan(cr.q_global):
                p.nan((f"{view}_qglobal",), f"K_max = n - 2 = {cr.k_max}: no K above K_max")
            else:
                p.set(f"{view}_qglobal", cr.q_global)
            p.set(f"{view}_kmax", cr.k_max)
    if dc_views:
        with p.timed("distance_correlation"):
            dcorrs = distance_correlations(zs, [x for _, x in dc_views])
        for (view, _), dc in zip(dc_views, dcorrs):
            if np.isnan(dc):
                p.nan((f"{view}_dcorr",), "all pairwise distances are equal in the latent or the view")
            else:
                p.set(f"{view}_dcorr", dc)
    for view, _ in cr_views:
        parts = [p.values.get(f"{view}_{s}", np.nan) for s in ("dcorr", "qlocal", "qglobal")]
        if np.isnan(parts).any():
            p.nan((f"{view}_overall",), "one of dcorr, Q_local, Q_global is NaN")
        else:
            p.set(f"{view}_overall", np.mean(parts))

    # --- intrinsic ----------------------------------------------------------------------------------
    admitted = p.admit((*INTRINSIC_NAMES, *intr.EXTRAS), domain)
    if admitted:
        with p.timed("intrinsic"):
            try:
                scores = intrinsic_metrics(z)
            except ValueError as e:  # zero variance in every dimension
                p.nan([n_ for n_ in admitted if n_ in p.core], str(e))
                p.skip([n_ for n_ in admitted if n_ not in p.core], str(e))
            else:
                for name in admitted:
                    p.set(name, scores[name])

    # --- batch mixing -------------------------------------------------------------------------------
    if batches is not None:
        if p.admit(("iLISI", "iLISI_raw"), domain):
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
            n_picked = len(np.unique(b[pick]))
            sub_domain = dataclasses.replace(domain, cells={**domain.cells, "batch": int(s)}, batches=n_picked,
                                             batch_source=f"the subsample of {s} cells")
            if p.admit((name,), sub_domain):
                with p.timed("ilisi"):
                    p.set(name, batch_mod.ilisi(zb[pick], b[pick])[0])
        # --- pre/post clustering pipelines (multi-batch, labelled) ---------------------------------
        names = p.admit([f"{pipe}_{s}" for pipe in PIPELINES for s in ("ARI", "NMI")], domain)
        if names and leiden_labels is None:
            p.skip(names, "Leiden disabled (leiden=False)")
        elif names:
            keep = labelled & with_batch
            with p.timed("pipelines"):
                scores = clu.batch_pipelines(z[keep], labels.astype(str).to_numpy()[keep],
                                             batches.astype(str).to_numpy()[keep],
                                             {"K": kmeans[keep], "L": leiden_labels[keep]}, seed)
            for name in names:
                p.set(name, scores[name])

    for name in core:  # every paper metric is present, as a value or as a NaN with its reason
        if name not in p.values:
            p.nan((name,), "not computed")
    order = core + [k for k in p.values if k not in core]
    df = pd.DataFrame({"metric": order, "value": [p.values[k] for k in order],
                       "reason": [p.reasons.get(k, "") for k in order]})
    df.attrs.update(reasons=dict(p.reasons), timings=dict(p.timings), n_cells_dre=int(m))
    return df
