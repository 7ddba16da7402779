"""Analysis 4: restoration of a held-out category from its neighbours on the lineage-stage coordinate."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...plotting import _save, _style

def neighbour_stage_mean(x: np.ndarray, stage: np.ndarray, target: float) -> tuple[np.ndarray, str] | None:
    """The average of the mean profiles of the nearest observed stage below and above ``target`` (a naive
    linear interpolation between the neighbouring stages), or None when one side is missing."""
    below, above = stage[stage < target], stage[stage > target]
    if not len(below) or not len(above):
        return None
    lo, hi = below.max(), above.min()
    return (x[stage == lo].mean(axis=0) + x[stage == hi].mean(axis=0)) / 2, f"stages {lo:g} and {hi:g} averaged"


def restoration_table(restored: np.ndarray, heldout_mean: np.ndarray, observed_means: pd.DataFrame,
                      heldout: str, neighbours: tuple[np.ndarray, str] | None = None) -> pd.DataFrame:
    """Pearson correlation with the held-out category's mean profile: of the restored cells' mean profile,
    of every observed category's mean profile (``baseline`` marks the best one: what restoration must beat)
    and, when given, of the naive interpolation between the neighbouring stages (a stronger reference)."""
    rows = [{"profile": f"restored {heldout}", "kind": "restored",
             "pearson": float(np.corrcoef(restored.mean(axis=0), heldout_mean)[0, 1])}]
    for cat, mean in observed_means.iterrows():
        rows.append({"profile": str(cat), "kind": "observed", "pearson": float(np.corrcoef(mean, heldout_mean)[0, 1])})
    if neighbours is not None:
        rows.append({"profile": neighbours[1], "kind": "interpolated",
                     "pearson": float(np.corrcoef(neighbours[0], heldout_mean)[0, 1])})
    table = pd.DataFrame(rows)
    observed = table[table["kind"] == "observed"]
    table["baseline"] = False
    table.loc[observed["pearson"].idxmax(), "baseline"] = True
    table["heldout"] = heldout
    table["beats_baseline"] = bool(table.loc[0, "pearson"] > observed["pearson"].max())
    return table


def plot_restoration(table: pd.DataFrame, *, out_png, title: str) -> Figure:
    """Bars: correlation of each profile with the held-out category's mean (restored in red, the
    nearest observed category hatched, the neighbouring stages averaged in blue)."""
    with _style():
        fig = Figure(figsize=(0.7 * len(table) + 3, 4.2), layout="constrained")
        ax = fig.subplots()
        colors = [{"restored": "#C0392B", "interpolated": "#2E86C1"}.get(k, "0.6") for k in table["kind"]]
        bars = ax.bar(range(len(table)), table["pearson"], color=colors, edgecolor="0.2", linewidth=0.6)
        for bar, base in zip(bars, table["baseline"]):
            if base:
                bar.set_hatch("//")
        for i, v in enumerate(table["pearson"]):
            ax.text(i, v + 0.002, f"{v:.3f}", ha="center", va="bottom", fontsize=8, rotation=90)
        lo = float(table["pearson"].min())
        ax.set_ylim(max(0.0, lo - 0.05), min(1.0, float(table["pearson"].max()) + 0.06))
        ax.set_xticks(range(len(table)), table["profile"], rotation=45, ha="right", fontsize=9)
        ax.set_ylabel(f"Pearson r with held-out\n{table['heldout'].iloc[0]} mean profile")
        ax.set_title(title)
        return _save(fig, out_png)
