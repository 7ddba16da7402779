"""Analysis 3: interpolation along a continuous coordinate (the genes that change most along it, as a heatmap)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...plotting import _save, _style
from .common import Reference

def jittered_values(observed: np.ndarray, jitter: float, seed: int) -> np.ndarray:
    """The paper's interpolation values: each cell's own value plus a uniform draw in [−jitter, +jitter)
    (the paper: timestamps ± 0.5 day), seeded."""
    observed = np.asarray(observed, dtype=np.float64)
    return observed + np.random.default_rng(seed).uniform(-jitter, jitter, size=observed.shape)


def interpolate(ref: Reference, x: np.ndarray, key: str, values: np.ndarray, var_names, *, steps: int,
                seed: int = 0) -> pd.DataFrame:
    """Cells decoded with coordinate ``key`` set to ``values`` (one per cell: :func:`jittered_values`), drawn
    from the modified posterior with ``seed``; the trajectory is their mean decoded profile in ``steps``
    bins of equal cell count along the set value (rows; index: the bin's mean value)."""
    values = np.asarray(values, dtype=np.float64)
    profiles = ref.reconfigure(x, continuous={key: values}, seed=seed)
    order = np.argsort(values, kind="stable")
    bins = np.array_split(order, min(int(steps), len(values)))
    return pd.DataFrame(np.vstack([profiles[b].mean(axis=0) for b in bins]),
                        index=pd.Index([float(values[b].mean()) for b in bins], name=key),
                        columns=list(map(str, var_names)))


def top_varying_genes(trajectory: pd.DataFrame, n: int) -> list[str]:
    """The genes whose decoded value changes most along the trajectory (max − min)."""
    span = trajectory.max(axis=0) - trajectory.min(axis=0)
    return list(span.sort_values(ascending=False).index[:n])


def plot_trajectory_heatmap(trajectory: pd.DataFrame, genes: Sequence[str], *, out_png, title: str,
                            xlabel: str) -> Figure:
    """Heatmap of the decoded expression of ``genes`` (rows, ordered by where they peak) along the
    coordinate (columns), each gene min–max scaled."""
    sub = trajectory[list(genes)].T
    scaled = sub.sub(sub.min(axis=1), axis=0).div((sub.max(axis=1) - sub.min(axis=1)).clip(lower=1e-9), axis=0)
    scaled = scaled.iloc[np.argsort(scaled.to_numpy().argmax(axis=1), kind="stable")]
    with _style():
        fig = Figure(figsize=(7.5, 0.22 * len(genes) + 2.0), layout="constrained")
        ax = fig.subplots()
        im = ax.imshow(scaled.to_numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_yticks(range(len(scaled)), scaled.index, fontsize=8)
        values = trajectory.index.to_numpy()
        ticks = np.linspace(0, len(values) - 1, min(6, len(values))).round().astype(int)
        ax.set_xticks(ticks, [f"{values[t]:.2g}" for t in ticks])
        ax.set_xlabel(xlabel)
        ax.grid(False)
        fig.colorbar(im, ax=ax, shrink=0.6, label="decoded expression\n(min–max per gene)")
        ax.set_title(title)
        return _save(fig, out_png)
