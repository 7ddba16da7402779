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
from .panels import CATEGORY_PANELS, Panel, panel_metrics

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


UNDER_TRAINED_MARK = "†"


def under_trained_methods(metrics: pd.DataFrame, methods: list[str]) -> dict[str, list[str]]:
    """Method → datasets on which a run of it is flagged under-trained (``under_trained`` column, livaebench.convergence)."""
    from .convergence import is_true

    if "under_trained" not in metrics:
        return {}
    hit = metrics[is_true(metrics["under_trained"]) & metrics["method"].isin(methods)]
    return {m: sorted(map(str, set(hit.loc[hit["method"] == m, "dataset"]))) for m in methods
            if (hit["method"] == m).any()}


def under_trained_note(flagged: dict[str, list[str]], limit: int = 6) -> str:
    """'\n† under-trained: method (datasets); ...' for the methods a figure marks, or ''."""
    if not flagged:
        return ""
    items = [f"{m} ({', '.join(ds)})" for m, ds in flagged.items()]
    more = f"; and {len(items) - limit} more" if len(items) > limit else ""
    return (f"\n{UNDER_TRAINED_MARK} under-trained (stopped at its epoch limit while still improving; "
            "results/metrics/convergence.tsv): " + "; ".join(items[:limit]) + more)


def _marked(method: str, flagged: dict) -> str:
    return f"{method} {UNDER_TRAINED_MARK}" if method in flagged else method


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


MAX_ROW_BOXES = 10  # metric slots (an own-scale axis counts 2.5) that two panels may share a row with


def metric_boxplots(metrics: pd.DataFrame, stats: pd.DataFrame | None, *, reference: str, baselines: list[str],
                    out_png, title: str, datasets: list[str] | None = None,
                    panels: list[Panel] | None = None) -> Figure:
    """One panel per entry of ``panels`` (default: the paper's metric categories; a comparison's own:
    :func:`livaebench.panels.family_panels`), each showing exactly its metrics; methods side by side
    per metric, one point per replicate (dataset, or dataset × subsample size for a pooled metric);
    above each baseline's box the mark of its comparison with the reference from ``stats`` (a
    :func:`livaebench.stats.compare` table). CAL, DAV and COR are not on a [−1, 1] scale, so each of
    them gets an axis of its own (CAL on a log scale). A metric without paired values keeps its slot,
    marked "n/a".
    """
    panels = list(CATEGORY_PANELS if panels is None else panels)
    available = metrics["metric"].dropna().unique()
    panels = [Panel(p.letter, p.title, tuple(st.expand_metrics(list(p.metrics), available))) for p in panels]
    methods = [reference, *dict.fromkeys(b for b in baselines if b != reference)]
    colors_by = method_colors(methods, reference)
    colors = [colors_by[m] for m in methods]
    means = st.replicate_means(metrics, panel_metrics(panels), datasets)
    # a baseline with no finished run anywhere would leave every paired block incomplete (every panel
    # empty): it is drawn as absent and named in the failure note instead
    requested, methods = methods, with_values(means, methods)
    colors = [colors_by[m] for m in methods]
    marks = _star_lookup(stats)
    rng = np.random.default_rng(0)
    n_used: dict[str, set[int]] = {}

    def values_of(metric):
        wide = st.paired_values(means, metric, methods)
        if len(wide):
            n_used.setdefault(st.replicate_of(metric), set()).add(len(wide))
        return [wide[m].to_numpy() for m in methods] if len(wide) else None

    def draw(ax, metric_names, *, ylabel):
        data = {m: values_of(m) for m in metric_names}
        if all(v is None for v in data.values()):
            _no_data(ax, "no data for these metrics")
            return
        empty = [np.array([])] * len(methods)
        centres = _boxes(ax, [data[m] if data[m] is not None else empty for m in metric_names], colors, rng=rng)
        labels = [_metric_label(m) for m in metric_names]
        tilt = max(map(len, labels)) * 0.1 > slot_in  # ~0.1 in per character at this font size
        ax.set_xticks(range(len(metric_names)), labels, rotation=30 if tilt else 0, ha="right" if tilt else "center")
        ax.set_ylabel(ylabel)
        ax.grid(axis="x", visible=False)  # a tick sits in the middle of a metric's boxes
        trans = matplotlib.transforms.blended_transform_factory(ax.transData, ax.transAxes)
        for i, metric in enumerate(metric_names):
            if data[metric] is None:
                ax.text(i, 0.5, "n/a", transform=trans, ha="center", va="center", color="0.45", fontsize=9)
                continue
            for j, method in enumerate(methods[1:], start=1):
                _mark(ax, centres[i, j], marks.get((metric, method), ""))

    def n_boxes(panel):
        return len(panel.metrics) + 1.5 * sum(m in st.UNBOUNDED_METRICS for m in panel.metrics)

    n_methods = len(methods)
    # Panels two to a row unless the pair is too wide to read; every row on one scale of box width
    # (a shorter row is padded on the right), and the figure grows with the boxes of its widest row.
    rows: list[list[Panel]] = []
    for panel in panels or [Panel("", "no panels", ())]:
        if rows and len(rows[-1]) < 2 and sum(map(n_boxes, rows[-1])) + n_boxes(panel) <= MAX_ROW_BOXES:
            rows[-1].append(panel)
        else:
            rows.append([panel])
    widest = max(max(sum(n_boxes(p) for p in row), 1.0) for row in rows)
    width = float(np.clip(widest * n_methods * 0.16 + 3.0, 12.0, 34.0))
    slot_in = (width - 1.5) / widest  # inches of figure width per metric slot
    with _style():
        fig = Figure(figsize=(width, 4.75 * len(rows)), layout="constrained")
        row_figs = fig.subfigures(len(rows), 1, hspace=0.04, squeeze=False)[:, 0]
        for row_fig, row in zip(row_figs, rows):
            ratios = [max(n_boxes(p), 1.0) for p in row]
            pad = widest - sum(ratios)
            subs = row_fig.subfigures(1, len(row) + (pad > 0.5), wspace=0.03, squeeze=False,
                                      width_ratios=ratios + ([pad] if pad > 0.5 else []))[0]
            for blank in subs[len(row):]:
                blank.set_visible(False)
            for sub, panel in zip(subs, row):
                sub.suptitle(panel.heading, fontweight="bold", x=0.02, ha="left")
                bounded = [m for m in panel.metrics if m not in st.UNBOUNDED_METRICS]
                unbounded = [m for m in panel.metrics if m in st.UNBOUNDED_METRICS]
                ratios = ([max(len(bounded), 1) * 1.0] if bounded else []) + [1.0] * len(unbounded)
                axes = sub.subplots(1, max(len(ratios), 1), squeeze=False, width_ratios=ratios or None)[0]
                if bounded or not unbounded:
                    draw(axes[0], bounded, ylabel="score")
                for ax, metric in zip(axes[1:] if bounded else axes, unbounded):
                    draw(ax, [metric], ylabel="")
                    got = values_of(metric)
                    vals = np.concatenate(got) if got is not None else np.array([])
                    if metric == "CAL" and vals.size and (vals > 0).all() and vals.max() / vals.min() > 20:
                        # Calinski–Harabasz spans orders of magnitude across datasets.
                        ax.set_yscale("log")
                        ax.set_xticks([0], [f"{_metric_label(metric)} (log)"])
        flagged = under_trained_methods(metrics, methods)
        handles = [Patch(facecolor=colors_by[m], edgecolor="0.2", label=_marked(m, flagged)) for m in methods]
        tests = sorted({t for t in (stats["test"] if stats is not None and len(stats) else [])
                        if isinstance(t, str) and t and not t.startswith("insufficient")})
        note = (f"Marks: {reference} vs method — * p<0.05, ** p<0.01, *** p<0.001, ns not significant; "
                f"no mark: no test (too few datasets)" + (f". Tests: {', '.join(tests)}" if tests else "")
                + failed_note(metrics, requested) + under_trained_note(flagged))
        fig.legend(handles=handles, loc="outside lower center", ncols=min(n_methods, 8), title=note,
                   title_fontsize=9, fontsize=10)
        unit = {st.REPLICATE_DATASET: "datasets", st.REPLICATE_SUBSAMPLE: "dataset × subsample-size conditions"}
        n_text = "; ".join(f"n = {min(n)}–{max(n)} {unit[kind]}" if len(n) > 1 else f"n = {min(n)} {unit[kind]}"
                           for kind, n in sorted(n_used.items())) or "no data"
        fig.suptitle(f"{title}  ({n_text}; one point per replicate, mean over seeds)", fontsize=14)
        return _save(fig, out_png)


# ---------------------------------------------------------------------------------------------
# Δ boxplots


def with_values(means: pd.DataFrame, methods: list[str]) -> list[str]:
    """``methods`` less the baselines (not the reference, the first) without a single finite value."""
    finite = set(means.loc[np.isfinite(means["value"].to_numpy(dtype=float)), "method"])
    return [methods[0], *(m for m in methods[1:] if m in finite)]


def delta_boxplots(metrics: pd.DataFrame, *, reference: str, baselines: list[str], metrics_list: list[str],
                   out_png, title: str, datasets: list[str] | None = None, ncols: int = 4) -> Figure:
    """Per-replicate Δ = reference − baseline (dataset, or dataset × subsample size for a pooled
    metric), one axis per metric, one box per baseline."""
    baselines = [b for b in dict.fromkeys(baselines) if b != reference]
    methods = [reference, *baselines]
    colors_by = method_colors(methods, reference)
    metrics_list = st.expand_metrics(list(metrics_list), metrics["metric"].dropna().unique())
    means = st.replicate_means(metrics, metrics_list, datasets)
    requested, methods = methods, with_values(means, methods)  # as in metric_boxplots: no finished run, no box
    baselines = methods[1:]
    rng = np.random.default_rng(0)
    panels = []
    for metric in dict.fromkeys(metrics_list):
        wide = st.paired_values(means, metric, methods)
        if len(wide):
            panels.append((metric, len(wide), [(wide[reference] - wide[b]).to_numpy() for b in baselines]))
    ncols = max(1, min(ncols, len(panels)))
    nrows = max(1, -(-len(panels) // ncols))
    long_names = max((len(b) for b in baselines), default=0) * len(baselines) > 28
    flagged = under_trained_methods(metrics, methods)
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
            ax.set_xticks(range(len(baselines)), [_marked(b, flagged) for b in baselines],
                          rotation=40 if long_names else 0,
                          ha="right" if long_names else "center")
            ax.set_title(f"{_metric_label(metric)}  (n={n})")
        for ax in axes[:, 0]:
            if ax.get_visible():
                ax.set_ylabel(f"Δ = {reference} − baseline")
        pooled = [m for m, _, _ in panels if st.replicate_of(m) != st.REPLICATE_DATASET]
        unit = "per-dataset" + (f" (for {', '.join(pooled)}: per dataset × subsample size)" if pooled else "")
        fig.suptitle(f"{title}\n{unit} difference of seed means; above 0: {reference} higher "
                     f"(↓: lower is better){failed_note(metrics, requested)}"
                     f"{under_trained_note(flagged)}", fontsize=13)
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
            # the replicates of the pooled iLISI test (livaebench.stats): one per dataset and subsample size
            conditions = int(table.groupby("n_cells")["n_datasets"].max().sum())
            ax.set_title(f"mean ± s.d. over multi-batch datasets ({n_text} per size; "
                         f"{conditions} dataset × subsample-size conditions)", fontsize=10)
        else:
            _no_data(ax, "no iLISI_n{N} metrics: no multi-batch dataset reaches\nthe smallest configured subsample size")
        ax.set_xlabel("subsample size (cells)")
        ax.set_ylabel("iLISI (scaled 0–1; higher: better mixing)")
        fig.suptitle(title, fontsize=13)
        return _save(fig, out_png)
