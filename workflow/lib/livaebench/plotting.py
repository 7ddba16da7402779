"""Figures of the benchmark: metric boxplots with significance marks, Δ boxplots, UMAP grids,
sensitivity lines and iLISI against subsample size.

Every function writes ``out_png`` and the same-stem ``.pdf`` and returns the matplotlib Figure
(callers may ignore it; tests inspect it). Figures are built with ``matplotlib.figure.Figure``
directly, never through pyplot, so no GUI backend or global figure state is involved.

Data handling follows :mod:`livaebench.stats`: seeds are averaged per (dataset, method, metric)
first and, per metric, only datasets where every plotted method has a finite value are shown, so
a figure shows exactly the paired values its statistics were computed on.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

if TYPE_CHECKING:  # anndata only for the annotation; plotting never needs to import it
    from anndata import AnnData
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import stats as st

REFERENCE_COLOR = "#C0392B"  # the reference method is always this red, baselines never are
DPI = 200
_ILISI_SUBSAMPLE = re.compile(r"^iLISI_n(\d+)$")


# ---------------------------------------------------------------------------------------------
# Shared helpers


@contextmanager
def _style():
    """Seaborn's white grid at a font scale readable when a figure is shrunk into a page."""
    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.35),
          "pdf.fonttype": 42, "svg.fonttype": "none", "legend.frameon": False}
    with matplotlib.rc_context(rc):
        yield


def _save(fig: Figure, out_png) -> Figure:
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=DPI, bbox_inches="tight")
    fig.savefig(out_png.with_suffix(".pdf"), bbox_inches="tight")
    return fig


def failed_note(metrics: pd.DataFrame, methods: list[str], limit: int = 6) -> str:
    """'\nFailed (left out): method on dataset (reason); ...' for the figure's failed runs, or ''."""
    from .results import failures

    failed = failures(metrics)
    failed = failed[failed["method"].isin(methods)]
    if failed.empty:
        return ""
    items = [f"{r.method} on {r.dataset} ({str(r.reason)[:60]})" for r in failed.itertuples()]
    more = f"; and {len(items) - limit} more" if len(items) > limit else ""
    return "\nFailed (left out): " + "; ".join(items[:limit]) + more


def method_colors(methods: list[str], reference: str | None = None) -> dict[str, tuple]:
    """A colour per method: the reference red, the others from a colour-blind-safe palette."""
    others = [m for m in dict.fromkeys(methods) if m != reference]
    base = [c for i, c in enumerate(sns.color_palette("colorblind", 10)) if i != 3]  # 3 is a red
    palette = base if len(others) <= len(base) else sns.color_palette("husl", len(others))
    colors = {m: palette[i % len(palette)] for i, m in enumerate(others)}
    if reference is not None:
        colors[reference] = matplotlib.colors.to_rgb(REFERENCE_COLOR)
    return colors


def _metric_label(metric: str) -> str:
    # ↓ marks metrics where lower is better, so the sign of a Δ can be read at a glance.
    return f"{metric} ↓" if metric in st.LOWER_IS_BETTER else metric


def _boxes(ax, groups: list[list[np.ndarray]], colors: list, *, rng: np.random.Generator) -> np.ndarray:
    """Draw boxes at x = slot + offset per hue; ``groups[slot][hue]`` are the values.

    Returns the box centres (slots × hues). Points (one per dataset) are overlaid with jitter.
    """
    n_slots, n_hue = len(groups), len(colors)
    width = 0.8 / n_hue
    centres = np.arange(n_slots)[:, None] + (np.arange(n_hue)[None, :] - (n_hue - 1) / 2) * width
    for i, slot in enumerate(groups):
        for j, values in enumerate(slot):
            values = np.asarray(values, float)
            values = values[np.isfinite(values)]
            if values.size == 0:
                continue
            _box_or_points(ax, centres[i, j], values, colors[j], width * 0.8, rng)
    ax.set_xlim(-0.5, n_slots - 0.5)
    return centres


def _star_lookup(stats_table: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    if stats_table is None or len(stats_table) == 0:
        return {}
    return {(r.metric, r.baseline): (r.stars if isinstance(r.stars, str) else "")
            for r in stats_table.itertuples(index=False)}


def _mark(ax, x: float, mark: str) -> None:
    """A significance mark in a strip just above the axes (never on the data)."""
    if not mark:
        return
    trans = matplotlib.transforms.blended_transform_factory(ax.transData, ax.transAxes)
    ns = mark == "ns"
    # Rotated so that a mark is never wider than its box, however many methods share the axis.
    ax.text(x, 1.01, mark, transform=trans, ha="center", va="bottom", clip_on=False, rotation=90,
            fontsize=7 if ns else 9, color="0.45" if ns else "0.05", fontweight="normal" if ns else "bold")


def _no_data(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


# ---------------------------------------------------------------------------------------------
# Four-panel metric boxplots


def metric_boxplots(metrics: pd.DataFrame, stats: pd.DataFrame | None, *, reference: str, baselines: list[str],
                    out_png, title: str, datasets: list[str] | None = None) -> Figure:
    """The paper's four panels (UMAP fidelity, t-SNE fidelity, latent manifold structure, intrinsic
    quality & robustness); methods side by side per metric, one point per dataset; above each
    baseline's box the mark of its comparison with the reference from ``stats`` (a
    :func:`livaebench.stats.compare` table). CAL, DAV and COR are not on a [−1, 1] scale, so the
    latent panel gives each of them an axis of its own (CAL on a log scale).
    """
    methods = [reference, *dict.fromkeys(b for b in baselines if b != reference)]
    colors_by = method_colors(methods, reference)
    colors = [colors_by[m] for m in methods]
    means = st.seed_means(metrics)
    marks = _star_lookup(stats)
    rng = np.random.default_rng(0)
    n_used: set[int] = set()

    def values_of(metric):
        wide = st.paired_values(means, metric, methods, datasets)
        if len(wide):
            n_used.add(len(wide))
        return [wide[m].to_numpy() for m in methods] if len(wide) else None

    def draw(ax, metric_names, *, ylabel):
        data = {m: values_of(m) for m in metric_names}
        present = [m for m in metric_names if data[m] is not None]
        if not present:
            _no_data(ax, "no data for these metrics")
            return
        centres = _boxes(ax, [data[m] for m in present], colors, rng=rng)
        ax.set_xticks(range(len(present)), [_metric_label(m) for m in present],
                      rotation=30 if len(present) > 4 else 0, ha="right" if len(present) > 4 else "center")
        ax.set_ylabel(ylabel)
        ax.grid(axis="x", visible=False)  # a tick sits in the middle of a metric's boxes
        for i, metric in enumerate(present):
            for j, method in enumerate(methods[1:], start=1):
                _mark(ax, centres[i, j], marks.get((metric, method), ""))
        return present

    n_methods = len(methods)
    # Width grows with the number of boxes so that each box stays at least ~0.13 in wide.
    groups = list(st.METRIC_GROUPS.items())
    row_widths = [sum(len(g[1]) for g in groups[:2]), sum(len(g[1]) for g in groups[2:])]
    width = float(np.clip(max(row_widths) * n_methods * 0.16 + 3.0, 12.0, 34.0))
    with _style():
        fig = Figure(figsize=(width, 9.5), layout="constrained")
        top, bottom = fig.subfigures(2, 1, hspace=0.04)
        subs = list(top.subfigures(1, 2, wspace=0.03, width_ratios=[1, 1])) + \
            list(bottom.subfigures(1, 2, wspace=0.03, width_ratios=[len(groups[2][1]) + 1.5, len(groups[3][1])]))
        for letter, sub, (panel, names) in zip("ABCD", subs, groups):
            sub.suptitle(f"{letter}   {panel}", fontweight="bold", x=0.02, ha="left")
            bounded = [m for m in names if m not in st.UNBOUNDED_METRICS]
            unbounded = [m for m in names if m in st.UNBOUNDED_METRICS and values_of(m) is not None]
            axes = sub.subplots(1, 1 + len(unbounded), squeeze=False,
                                width_ratios=[max(len(bounded), 1) * 1.0] + [1.0] * len(unbounded))[0]
            draw(axes[0], bounded, ylabel="score")
            for ax, metric in zip(axes[1:], unbounded):
                draw(ax, [metric], ylabel="")
                vals = np.concatenate(values_of(metric))
                if metric == "CAL" and (vals > 0).all() and vals.max() / vals.min() > 20:
                    # Calinski–Harabasz spans orders of magnitude across datasets.
                    ax.set_yscale("log")
                    ax.set_xticks([0], [f"{_metric_label(metric)} (log)"])
        handles = [Patch(facecolor=colors_by[m], edgecolor="0.2", label=m) for m in methods]
        tests = sorted({t for t in (stats["test"] if stats is not None and len(stats) else [])
                        if isinstance(t, str) and t and not t.startswith("insufficient")})
        note = (f"Marks: {reference} vs method — * p<0.05, ** p<0.01, *** p<0.001, ns not significant; "
                f"no mark: no test (too few datasets)" + (f". Tests: {', '.join(tests)}" if tests else "")
                + failed_note(metrics, methods))
        fig.legend(handles=handles, loc="outside lower center", ncols=min(n_methods, 8), title=note,
                   title_fontsize=9, fontsize=10)
        n_text = (f"n = {min(n_used)}–{max(n_used)} datasets" if len(n_used) > 1
                  else f"n = {next(iter(n_used))} datasets" if n_used else "no data")
        fig.suptitle(f"{title}  ({n_text}; one point per dataset, mean over seeds)", fontsize=14)
        return _save(fig, out_png)


# ---------------------------------------------------------------------------------------------
# Δ boxplots


def delta_boxplots(metrics: pd.DataFrame, *, reference: str, baselines: list[str], metrics_list: list[str],
                   out_png, title: str, datasets: list[str] | None = None, ncols: int = 4) -> Figure:
    """Per-dataset Δ = reference − baseline, one axis per metric, one box per baseline."""
    baselines = [b for b in dict.fromkeys(baselines) if b != reference]
    methods = [reference, *baselines]
    colors_by = method_colors(methods, reference)
    means = st.seed_means(metrics)
    rng = np.random.default_rng(0)
    panels = []
    for metric in dict.fromkeys(metrics_list):
        wide = st.paired_values(means, metric, methods, datasets)
        if len(wide):
            panels.append((metric, len(wide), [(wide[reference] - wide[b]).to_numpy() for b in baselines]))
    ncols = max(1, min(ncols, len(panels)))
    nrows = max(1, -(-len(panels) // ncols))
    long_names = max((len(b) for b in baselines), default=0) * len(baselines) > 28
    with _style():
        fig = Figure(figsize=(3.6 * ncols + 0.6, 3.1 * nrows + (0.8 if long_names else 0.2) * nrows + 0.6),
                     layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        if not panels:
            axes[0, 0].set_visible(True)
            _no_data(axes[0, 0], "no metric with paired values")
        for ax, (metric, n, deltas) in zip(axes.flat, panels):
            for i, (b, d) in enumerate(zip(baselines, deltas)):
                _boxes_at(ax, i, d, colors_by[b], rng)
            ax.axhline(0, color="0.25", linewidth=0.9, linestyle="--", zorder=1)
            ax.grid(axis="x", visible=False)
            ax.set_xlim(-0.5, len(baselines) - 0.5)
            ax.set_xticks(range(len(baselines)), baselines, rotation=40 if long_names else 0,
                          ha="right" if long_names else "center")
            ax.set_title(f"{_metric_label(metric)}  (n={n})")
        for ax in axes[:, 0]:
            if ax.get_visible():
                ax.set_ylabel(f"Δ = {reference} − baseline")
        fig.suptitle(f"{title}\nper-dataset difference of seed means; above 0: {reference} higher "
                     f"(↓: lower is better){failed_note(metrics, [reference, *baselines])}", fontsize=13)
        return _save(fig, out_png)


def _boxes_at(ax, x: float, values, color, rng) -> None:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if values.size:
        _box_or_points(ax, x, values, color, 0.6, rng)


MIN_BOX = 4  # quartiles of fewer points are interpolation, not data: show the points and their median


def _box_or_points(ax, x: float, values: np.ndarray, color, width: float, rng) -> None:
    """A box with the points over it; with fewer than MIN_BOX points, coloured points and a median bar."""
    jitter = rng.uniform(-0.3, 0.3, values.size) * width
    if values.size < MIN_BOX:
        ax.hlines(np.median(values), x - width / 2, x + width / 2, color=color, linewidth=2.2, zorder=2)
        ax.scatter(x + jitter, values, s=26, color=color, edgecolors="0.15", linewidths=0.6, zorder=3)
        return
    ax.boxplot(values, positions=[x], widths=width, patch_artist=True, showfliers=False, manage_ticks=False,
               boxprops=dict(facecolor=color, edgecolor="0.2", alpha=0.85, linewidth=0.8),
               medianprops=dict(color="0.1", linewidth=1.2),
               whiskerprops=dict(color="0.3", linewidth=0.8), capprops=dict(color="0.3", linewidth=0.8))
    ax.scatter(x + jitter, values, s=8, color="0.15", alpha=0.55, linewidths=0, zorder=3,
               rasterized=values.size > 500)


# ---------------------------------------------------------------------------------------------
# UMAP grid


def _categorical_palette(n: int):
    if n <= 10:
        return sns.color_palette("tab10", n)
    if n <= 20:
        return sns.color_palette("tab20", n)
    return sns.color_palette("husl", n)


def umap_grid(embeddings: Mapping[str, AnnData], *, color_keys: list[str], out_png, title: str,
              basis: str = "X_umap") -> Figure:
    """Rows = colour keys (e.g. cell type, batch), columns = methods; one legend per row, right of
    the last column; categories share one palette across a row. Numeric keys with many values get a
    colour bar instead."""
    methods = list(embeddings)
    ncols, nrows = max(1, len(methods)), max(1, len(color_keys))
    legend_width = 2.6
    with _style():
        fig = Figure(figsize=(2.7 * ncols + legend_width, 2.7 * nrows + 0.7), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for r, key in enumerate(color_keys):
            cats = _row_categories(embeddings, key)
            continuous = cats is None and any(key in a.obs for a in embeddings.values())
            palette = dict(zip(cats, _categorical_palette(len(cats)))) if cats else {}
            mappable = None
            for c, method in enumerate(methods):
                ax, adata = axes[r, c], embeddings[method]
                if r == 0:
                    ax.set_title(method, fontweight="bold")
                if c == 0:
                    ax.set_ylabel(key, fontsize=12)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if basis not in adata.obsm:
                    ax.text(0.5, 0.5, f"no {basis}", transform=ax.transAxes, ha="center", va="center", color="0.4")
                    continue
                if key not in adata.obs:
                    ax.text(0.5, 0.5, f"no '{key}' in obs", transform=ax.transAxes, ha="center", va="center",
                            color="0.4")
                    continue
                xy = np.asarray(adata.obsm[basis])[:, :2]
                size = float(np.clip(4000.0 / max(len(xy), 1), 0.3, 12.0))
                order = np.random.default_rng(0).permutation(len(xy))  # no category is painted last on top
                if continuous:
                    vals = pd.to_numeric(adata.obs[key], errors="coerce").to_numpy()
                    mappable = ax.scatter(xy[order, 0], xy[order, 1], c=vals[order], s=size, cmap="viridis",
                                          linewidths=0, rasterized=True)
                else:
                    labels = adata.obs[key].astype(str).to_numpy()
                    ax.scatter(xy[order, 0], xy[order, 1], c=[palette[v] for v in labels[order]], s=size,
                               linewidths=0, rasterized=True)
                ax.set_aspect("equal", adjustable="datalim")
            if palette:
                handles = [Line2D([], [], marker="o", linestyle="", markersize=6, color=col, label=cat)
                           for cat, col in palette.items()]
                per_col = 18
                axes[r, -1].legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), title=key,
                                   ncols=-(-len(handles) // per_col), fontsize=8, title_fontsize=9,
                                   handletextpad=0.2, columnspacing=0.8, borderaxespad=0, alignment="left")
            elif mappable is not None:
                fig.colorbar(mappable, ax=axes[r, :].tolist(), label=key, shrink=0.8)
        name = basis.removeprefix("X_").upper()
        fig.suptitle(title if name.lower() in title.lower() else f"{title}  ({name} of each method's latent space)",
                     fontsize=14)
        return _save(fig, out_png)


def _row_categories(embeddings, key: str, max_categories: int = 60) -> list[str] | None:
    """Sorted union of a key's values across methods, or None for a numeric key with many values."""
    cols = [a.obs[key] for a in embeddings.values() if key in a.obs]
    if not cols:
        return []
    numeric = all(pd.api.types.is_numeric_dtype(c) and not isinstance(c.dtype, pd.CategoricalDtype) for c in cols)
    values = pd.unique(pd.concat([c.astype(str) for c in cols], ignore_index=True))
    if numeric and len(values) > 20 or len(values) > max_categories:
        return None
    return sorted(values, key=_natural_key)


def _natural_key(text: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


# ---------------------------------------------------------------------------------------------
# Sensitivity sweeps and iLISI vs subsample size


def _panels(metrics_list: list[str]) -> list[tuple[str, list[str]]]:
    """Bounded metrics share their group's axis; CAL/DAV/COR and ungrouped metrics get their own."""
    panels: list[tuple[str, list[str]]] = []
    grouped = set()
    for group, names in st.METRIC_GROUPS.items():
        chosen = [m for m in metrics_list if m in names and m not in st.UNBOUNDED_METRICS]
        if chosen:
            panels.append((group, chosen))
        grouped.update(names)
    for m in metrics_list:
        if m in st.UNBOUNDED_METRICS or m not in grouped:
            panels.append((_metric_label(m), [m]))
    return panels


def _mean_sd_line(ax, x, mean, sd, *, color, label, marker="o", band=True, shift=0.0):
    """Mean line with ± s.d. as a band (one line per axis) or as dodged error bars (several lines,
    where overlapping bands would hide each other)."""
    x, mean, sd = (np.asarray(v, float) for v in (x, mean, sd))
    if band:
        ax.plot(x, mean, marker=marker, color=color, label=label, linewidth=1.6, markersize=5)
        ok = np.isfinite(sd)
        if ok.any():
            ax.fill_between(x[ok], (mean - sd)[ok], (mean + sd)[ok], color=color, alpha=0.18, linewidth=0)
    else:
        ax.errorbar(x + shift, mean, yerr=np.where(np.isfinite(sd), sd, 0), marker=marker, color=color,
                    label=label, linewidth=1.4, markersize=4.5, capsize=2.5, elinewidth=0.9)


def sensitivity_lines(metrics: pd.DataFrame, *, sweep: Mapping[str, float], param_name: str, metrics_list: list[str],
                      out_png, title: str, datasets: list[str] | None = None) -> Figure:
    """x = parameter value (``sweep``: method name → value), y = mean ± s.d. over datasets (seed
    means; per metric the datasets where every sweep method has a value)."""
    order = sorted(sweep, key=lambda m: sweep[m])
    xs = [sweep[m] for m in order]
    means = st.seed_means(metrics)
    panels = _panels(list(dict.fromkeys(metrics_list)))
    palette = sns.color_palette("colorblind", 10)
    ncols = 2 if len(panels) > 1 else 1
    nrows = max(1, -(-len(panels) // ncols))
    with _style():
        fig = Figure(figsize=(6.4 * ncols + 1.2, 3.4 * nrows + 0.8), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        for ax, (panel, names) in zip(axes.flat, panels):
            drawn, span = [], (max(xs) - min(xs)) if len(xs) > 1 else 1.0
            for k, metric in enumerate(names):
                wide = st.paired_values(means, metric, order, datasets)
                if not len(wide):
                    continue
                sd = wide.std(ddof=1).to_numpy() if len(wide) > 1 else np.full(len(order), np.nan)
                shift = (k - (len(names) - 1) / 2) * 0.012 * span
                _mean_sd_line(ax, xs, wide.mean().to_numpy(), sd, color=palette[k % 10], band=len(names) == 1,
                              shift=shift, label=f"{_metric_label(metric)} (n={len(wide)})")
                drawn.append(len(wide))
            ax.set_xlabel(param_name)
            ax.set_xticks(xs, [f"{x:g}" for x in xs])
            ax.grid(axis="x", visible=False)
            if not drawn:
                ax.set_title(panel)
                _no_data(ax)
            elif len(names) > 1:
                ax.set_title(panel)
                ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9, borderaxespad=0)
                ax.set_ylabel("score (mean ± s.d.)")
            else:
                ax.set_title(f"{panel}  (n={drawn[0]})")
                ax.set_ylabel(f"{names[0]} (mean ± s.d.)")
        fig.suptitle(f"{title}\nmean ± s.d. over datasets of the seed means; n = datasets per metric", fontsize=13)
        return _save(fig, out_png)


def ilisi_subsample_table(metrics: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Long table method, n_cells, mean, sd, n_datasets of ``iLISI_n{N}`` metrics (paired per N)."""
    means = st.seed_means(metrics)
    sizes = sorted({int(m.group(1)) for m in map(_ILISI_SUBSAMPLE.match, means["metric"].unique()) if m})
    rows = []
    for n_cells in sizes:
        wide = st.paired_values(means, f"iLISI_n{n_cells}", methods)
        for method in methods:
            vals = wide[method] if len(wide) else pd.Series(dtype=float)
            rows.append({"method": method, "n_cells": n_cells, "mean": vals.mean() if len(vals) else np.nan,
                         "sd": vals.std(ddof=1) if len(vals) > 1 else np.nan, "n_datasets": len(vals)})
    return pd.DataFrame(rows, columns=["method", "n_cells", "mean", "sd", "n_datasets"])


def ilisi_vs_subsample(metrics: pd.DataFrame, *, methods: list[str], out_png, title: str,
                       reference: str | None = None) -> Figure:
    """iLISI (scaled to [0, 1]) against the subsample size N of the ``iLISI_n{N}`` metrics; one line
    per method, mean ± s.d. over the multi-batch datasets."""
    methods = list(dict.fromkeys(methods))
    table = ilisi_subsample_table(metrics, methods)
    colors = method_colors(methods, reference if reference in methods else None)
    with _style():
        fig = Figure(figsize=(8.0, 4.8), layout="constrained")
        ax = fig.subplots()
        if table["mean"].notna().any():
            sizes = sorted(table["n_cells"].unique())
            span = (max(sizes) - min(sizes)) or 1.0
            for k, method in enumerate(methods):
                rows = table[table["method"] == method]
                _mean_sd_line(ax, rows["n_cells"], rows["mean"], rows["sd"], color=colors[method], label=method,
                              band=len(methods) <= 2, shift=(k - (len(methods) - 1) / 2) * 0.008 * span)
            ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="method", borderaxespad=0)
            n = table.loc[table["n_datasets"] > 0, "n_datasets"]
            n_text = f"n = {n.min()}" if n.min() == n.max() else f"n = {n.min()}–{n.max()}"
            ax.set_title(f"mean ± s.d. over multi-batch datasets ({n_text})", fontsize=10)
        else:
            _no_data(ax, "no iLISI_n{N} metrics: no multi-batch dataset reaches\nthe smallest configured subsample size")
        ax.set_xlabel("subsample size (cells)")
        ax.set_ylabel("iLISI (scaled 0–1; higher: better mixing)")
        fig.suptitle(title, fontsize=13)
        return _save(fig, out_png)
