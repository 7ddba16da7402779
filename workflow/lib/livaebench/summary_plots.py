"""Figures of the ranked summary (livaebench.summary): the results table and the critical-difference diagram.

Drawn with matplotlib by hand: the table in the style of scIB's results table / a "funky heatmap" (a circle per
metric whose size and colour are the scaled score, a bar per category score and for the overall score, the
mean rank and rank as text, the method family as a coloured row annotation); controls are listed last, in
grey italics with their role. (plottable and marsilea draw tables too, but not circles per metric with
category bars and a control block in one layout without as much glue code as this.)
"""
from __future__ import annotations

import textwrap

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .plotting import _save, _style
from .stats import LOWER_IS_BETTER
from .summary import CATEGORIES, CATEGORY_ROW, NO_CONTROL, OVERALL_ROW, cliques

CMAP = matplotlib.colormaps["viridis"]
CONTROL_COLOR = "#7F7F7F"
ROLE_MARK = {"negative": "− control", "positive": "+ control"}


def _label(row) -> str:
    return row["method"] if row["control"] == NO_CONTROL else f"{row['method']} ({ROLE_MARK[row['control']]})"


def summary_figure(board: pd.DataFrame, scores: pd.DataFrame, *, out_png, title: str = "") -> Figure:
    """The leaderboard as a figure (rows in leaderboard order); metric circles show the mean over datasets
    of the scaled score; PNG at ``out_png`` and a PDF beside it."""
    metric_rows = scores[~scores["metric"].isin([CATEGORY_ROW, OVERALL_ROW])]
    per_metric = metric_rows.groupby(["method", "metric"])["scaled"].mean()
    categories = [c for c in CATEGORIES if f"score_{c}" in board.columns]
    present = set(metric_rows["metric"])
    blocks = [(c, [m for m in CATEGORIES[c][1] if m in present]) for c in categories]
    families = list(dict.fromkeys(board["family"]))
    palette = dict(zip(families, matplotlib.colormaps["tab10"].colors * 3))

    columns = []  # (kind, key, x)
    x = 0.0
    for slug, metrics in blocks:
        for metric in metrics:
            columns.append(("metric", metric, x))
            x += 1
        columns.append(("category", slug, x + 0.2))
        x += 2.6
    columns.append(("overall", "overall", x))
    x += 2.6
    columns += [("text", "mean_rank", x + 0.3), ("text", "rank", x + 1.8)]
    width_units = x + 2.5
    n = len(board)
    with _style():
        fig = Figure(figsize=(2.8 + 0.34 * width_units, 3.0 + 0.34 * n))
        ax = fig.add_subplot()
        ax.set_xlim(-4.2, width_units)
        ax.set_ylim(n - 0.4, -5.0)
        ax.axis("off")
        for i, row in enumerate(board.to_dict("records")):
            y = i
            control = row["control"] != NO_CONTROL
            if i % 2 == 0:
                ax.axhspan(y - 0.5, y + 0.5, color="#F2F2F2", zorder=0, lw=0)
            ax.text(-0.9, y, _label(row), ha="right", va="center", fontsize=9,
                    color=CONTROL_COLOR if control else "black", style="italic" if control else "normal")
            ax.scatter([-0.5], [y], marker="s", s=50, color=palette[row["family"]], zorder=2)
            for kind, key, cx in columns:
                if kind == "metric":
                    v = per_metric.get((row["method"], key), np.nan)
                    if np.isfinite(v):
                        ax.scatter([cx], [y], s=20 + 130 * v, color=CMAP(v), zorder=2, edgecolor="none",
                                   alpha=0.55 if control else 1.0)
                    else:
                        ax.text(cx, y, "·", ha="center", va="center", color="#999999", fontsize=9)
                elif kind in ("category", "overall"):
                    v = row[f"score_{key}"] if kind == "category" else row["overall"]
                    ax.add_patch(matplotlib.patches.Rectangle((cx - 0.1, y - 0.3), 2.2, 0.6, fill=False,
                                                              edgecolor="#CCCCCC", lw=0.6))
                    if np.isfinite(v):
                        colour = CONTROL_COLOR if control else ("#C0392B" if kind == "overall" else CMAP(v))
                        ax.add_patch(matplotlib.patches.Rectangle((cx - 0.1, y - 0.3), 2.2 * v, 0.6, color=colour))
                        ax.text(cx + 2.15, y, f"{v:.2f}", ha="right", va="center", fontsize=6.5, color="black")
                else:
                    v = row[key]
                    text = "" if pd.isna(v) else (f"{v:.2f}" if key == "mean_rank" else f"{int(v)}")
                    ax.text(cx, y, text, ha="center", va="center", fontsize=9,
                            fontweight="bold" if key == "rank" else "normal")
        first_control = next((i for i, c in enumerate(board["control"]) if c != NO_CONTROL), None)
        if first_control:
            ax.axhline(first_control - 0.5, color="black", lw=0.8)
        # headers: metric names (rotated), category titles over their block
        for kind, key, cx in columns:
            label = {"category": "score", "overall": "overall", "text": key.replace("_", " ")}.get(kind, key)
            if kind == "metric" and key in LOWER_IS_BETTER:
                label += " ↓"
            ax.text(cx + (1.0 if kind in ("category", "overall") else 0), -0.8, label, rotation=90, ha="center",
                    va="bottom", fontsize=8)
        for slug, metrics in blocks:
            xs = [cx for kind, key, cx in columns if (kind == "metric" and key in metrics) or
                  (kind == "category" and key == slug)]
            left, right = min(xs) - 0.4, max(xs) + 2.1
            ax.plot([left, right], [-3.2, -3.2], color="black", lw=0.8)
            ax.text((left + right) / 2, -3.3, textwrap.fill(CATEGORIES[slug][0], max(10, int(3.2 * (right - left)))),
                    ha="center", va="bottom", fontsize=8.5, fontweight="bold")
        handles = [matplotlib.lines.Line2D([], [], marker="s", ls="", color=palette[f], label=f) for f in families]
        fig.legend(handles=handles, title="family", loc="upper left", bbox_to_anchor=(0.0, 0.0), ncol=min(6, len(families)),
                   fontsize=8, title_fontsize=8)
        sm = matplotlib.cm.ScalarMappable(cmap=CMAP, norm=matplotlib.colors.Normalize(0, 1))
        bar = fig.colorbar(sm, ax=ax, location="bottom", fraction=0.025, pad=0.02, shrink=0.3, anchor=(1.0, 0.0))
        bar.ax.tick_params(labelsize=8)
        bar.set_label("scaled score (0 = better negative control, 1 = positive control; mean over datasets)", fontsize=8)
        if title:
            ax.text(-4.2, -4.95, title, ha="left", va="top", fontsize=11)
        return _save(fig, out_png)


def cd_diagram(result: dict, *, out_png, title: str = "") -> Figure:
    """Critical-difference diagram of :func:`livaebench.summary.cd_analysis` (best rank on the left); the note
    of a too-small N is printed under the axis."""
    ranks: pd.Series = result["mean_ranks"]
    k, cd = int(result["k"]), result["cd"]
    with _style():
        fig = Figure(figsize=(8.0, 1.6 + 0.28 * max(k, 2)))
        ax = fig.add_subplot()
        ax.axis("off")
        low, high = 1, max(k, 2)
        ax.set_xlim(low - 0.6, high + 0.6)
        half = (k + 1) // 2
        depth = 0.35 * (half + 1)
        ax.set_ylim(depth + 0.9, -1.1)
        ax.plot([low, high], [0, 0], color="black", lw=1)
        for r in range(low, high + 1):
            ax.plot([r, r], [0, -0.12], color="black", lw=1)
            ax.text(r, -0.2, str(r), ha="center", va="bottom", fontsize=9)
        for i, (method, r) in enumerate(ranks.items()):
            left = i < half
            y = 0.35 * ((i if left else k - 1 - i) + 1)
            end = low - 0.35 if left else high + 0.35
            ax.plot([r, r, end], [0, y, y], color="black", lw=0.8)
            ax.text(end + (-0.05 if left else 0.05), y, f"{method} ({r:.2f})", ha="right" if left else "left",
                    va="center", fontsize=9)
        if np.isfinite(cd):
            ax.plot([low, low + cd], [-0.75, -0.75], color="#C0392B", lw=2)
            ax.text(low + cd / 2, -0.8, f"CD = {cd:.2f} (Nemenyi, α = {result['alpha']:g})", ha="center",
                    va="bottom", fontsize=8.5, color="#C0392B")
            for j, group in enumerate(cliques(ranks, cd)):
                y = 0.12 + 0.09 * j
                ax.plot([ranks[group[0]] - 0.03, ranks[group[-1]] + 0.03], [y, y], color="#333333", lw=3)
        friedman = result["friedman_p"]
        facts = f"k = {k} methods, N = {result['n']} datasets" + (
            f", Friedman p = {friedman:.3g}" if np.isfinite(friedman) else "")
        note = facts + (f"\n{result['note']}" if result["note"] else "")
        ax.text(0.0, -0.02, note, transform=ax.transAxes, ha="left", va="top", fontsize=8.5,
                color="#C0392B" if result["note"] else "black", wrap=True)
        ax.set_title((title + ": " if title else "") + "mean rank by overall score (controls excluded)", loc="left",
                     fontsize=10)
        return _save(fig, out_png)
