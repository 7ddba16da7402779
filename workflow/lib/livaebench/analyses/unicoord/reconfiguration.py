"""Analysis 2: in silico reconfiguration: held-out cells of one category given another category's
coordinate, decoded, and compared with the observed categories (table, UMAP, marker dot plot)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...plotting import _categorical_palette, _save, _style
from .common import Reference


def nearest_category(profiles: np.ndarray, means: pd.DataFrame) -> np.ndarray:
    """For each profile (row) the category whose mean profile is nearest (Euclidean)."""
    d2 = ((profiles[:, None, :] - means.to_numpy()[None, :, :]) ** 2).sum(axis=2)
    return means.index.to_numpy()[d2.argmin(axis=1)]


def reconfigure_cells(ref: Reference, x: np.ndarray, source_obs: pd.DataFrame, *, key: str, source: str,
                      targets: Sequence[str], continuous: Mapping[str, float], var_names, seed: int = 0) -> "Any":
    """Generated cells: the source cells with ``key`` set to each target category, and with each
    continuous coordinate set to a value, drawn from the modified posterior with ``seed`` (the same noise
    for every target). obs: ``source``, ``target`` (category or 'key=value'), ``kind``, ``cell`` (the
    source cell)."""
    import anndata as ad

    blocks, obs = [], []
    for target in targets:
        blocks.append(ref.reconfigure(x, discrete={key: target}, seed=seed))
        obs.append(pd.DataFrame({"source": source, "target": target, "kind": "discrete", "cell": source_obs.index}))
    for ckey, value in continuous.items():
        blocks.append(ref.reconfigure(x, continuous={ckey: float(value)}, seed=seed))
        obs.append(pd.DataFrame({"source": source, "target": f"{ckey}={value:g}", "kind": "continuous",
                                 "cell": source_obs.index}))
    obs = pd.concat(obs, ignore_index=True)
    obs.index = [f"generated{i}" for i in range(len(obs))]
    gen = ad.AnnData(np.vstack(blocks).astype(np.float32), obs=obs, var=pd.DataFrame(index=list(map(str, var_names))))
    gen.uns["unicoord"] = {"key": key, "seed": int(seed),
                           "note": ".X: decoded log1p(normalize_total 1e4, exclude_highly_expressed) expression"}
    return gen


def reconfiguration_table(gen, reconstructed: np.ndarray, means: pd.DataFrame, source: str) -> pd.DataFrame:
    """Per discrete target: does setting the coordinate move the cells toward the target's mean profile?

    The reference point is each source cell's own reconstruction (decoded with its own coordinates and the
    same posterior draw, i.e. the same seed), so that what is measured is the effect of the reconfiguration,
    not the smoothing or the noise of decoding. Columns:
    ``movement_toward_target`` (mean decrease of the distance to the target's mean profile),
    ``moves_most_toward`` (the category with the largest decrease), ``shift_correlation`` (Pearson r
    between the mean shift and target mean − source mean), ``share_nearest_target`` (generated cells whose
    nearest category mean is the target) and the category nearest to the generated cells' mean.
    """
    m = means.to_numpy()

    def distances(profiles):  # mean distance of the profiles to every category mean
        return np.linalg.norm(profiles[:, None, :] - m[None, :, :], axis=2).mean(axis=0)

    before = distances(reconstructed)
    rows = []
    for target in gen.obs.loc[gen.obs["kind"] == "discrete", "target"].unique():
        g = np.asarray(gen.X[(gen.obs["target"] == target).to_numpy()])
        movement = pd.Series(before - distances(g), index=means.index)
        direction = means.loc[target].to_numpy() - means.loc[source].to_numpy()
        rows.append({"source": source, "target": target, "n_cells": len(g),
                     "movement_toward_target": float(movement[target]),
                     "largest_movement_other": float(movement.drop(target).max()),
                     "moves_most_toward": str(movement.idxmax()),
                     "shift_correlation": float(np.corrcoef((g - reconstructed).mean(axis=0), direction)[0, 1]),
                     "share_nearest_target": float(np.mean(nearest_category(g, means) == target)),
                     "nearest_category_of_mean": str(nearest_category(g.mean(axis=0, keepdims=True), means)[0])})
    return pd.DataFrame(rows)


def umap_coordinates(x: np.ndarray, *, seed: int, n_pcs: int = 30, n_neighbors: int = 15) -> np.ndarray:
    """2-D UMAP (scanpy) of a PCA of the given profiles."""
    import anndata as ad
    import scanpy as sc

    from ...embedding import neighbors  # works from 8,192 cells on, unlike plain sc.pp.neighbors here

    view = ad.AnnData(np.ascontiguousarray(x, dtype=np.float32))
    sc.pp.pca(view, n_comps=min(n_pcs, x.shape[0] - 1, x.shape[1] - 1), random_state=seed)
    neighbors(view, n_neighbors=min(n_neighbors, x.shape[0] - 1), seed=seed)
    sc.tl.umap(view, random_state=seed)
    return np.asarray(view.obsm["X_umap"])


def plot_reconfiguration_umap(xy: np.ndarray, groups: Sequence[str], generated: np.ndarray, *, out_png,
                              title: str) -> Figure:
    """Observed cells (small dots, by category) and generated cells (crosses, by target) on one UMAP."""
    groups = np.asarray(groups).astype(str)
    cats = list(dict.fromkeys(sorted(set(groups[~generated])) + sorted(set(groups[generated]))))
    palette = dict(zip(cats, _categorical_palette(len(cats))))
    with _style():
        fig = Figure(figsize=(8.5, 6), layout="constrained")
        ax = fig.subplots()
        for cat in cats:
            for gen_flag, marker, size in ((False, "o", 6), (True, "x", 14)):
                m = (groups == cat) & (generated == gen_flag)
                if m.any():
                    ax.scatter(*xy[m].T, s=size, marker=marker, color=palette[cat], linewidths=0.8 if gen_flag else 0,
                               label=f"{cat} ({'generated' if gen_flag else 'observed'})", alpha=0.8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        ax.set_xlabel("UMAP1")
        ax.set_ylabel("UMAP2")
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=1.5)
        ax.set_title(title)
        return _save(fig, out_png)


def marker_genes(x: np.ndarray, labels, var_names, n_per_group: int = 3) -> list[str]:
    """Top genes per category by the difference of its mean to the other cells' mean (log scale)."""
    labels = np.asarray(labels).astype(str)
    names = np.asarray(list(map(str, var_names)))
    genes: list[str] = []
    for cat in sorted(set(labels)):
        diff = x[labels == cat].mean(axis=0) - x[labels != cat].mean(axis=0)
        genes += [g for g in names[np.argsort(-diff)] if g not in genes][:n_per_group]
    return genes


def plot_dotplot(x: np.ndarray, groups: Sequence[str], genes: Sequence[str], var_names, *, out_png,
                 title: str) -> Figure:
    """Dot plot: per group (row) and gene (column) the share of cells expressing it (size, > 0.1) and the
    mean expression scaled to [0, 1] per gene (colour)."""
    groups = np.asarray(groups).astype(str)
    order = list(dict.fromkeys(groups))
    col = pd.Index(list(map(str, var_names))).get_indexer(list(genes))
    sub = x[:, col]
    mean = np.array([sub[groups == g].mean(axis=0) for g in order])
    frac = np.array([(sub[groups == g] > 0.1).mean(axis=0) for g in order])
    scaled = (mean - mean.min(axis=0)) / np.maximum(mean.max(axis=0) - mean.min(axis=0), 1e-9)
    with _style():
        fig = Figure(figsize=(0.38 * len(genes) + 4, 0.4 * len(order) + 2.2), layout="constrained")
        ax = fig.subplots()
        gx, gy = np.meshgrid(np.arange(len(genes)), np.arange(len(order)))
        sc = ax.scatter(gx.ravel(), gy.ravel(), s=frac.ravel() * 120, c=scaled.ravel(), cmap="Reds",
                        edgecolors="0.3", linewidths=0.3, vmin=0, vmax=1)
        ax.set_xticks(range(len(genes)), genes, rotation=90, fontsize=8)
        ax.set_yticks(range(len(order)), order, fontsize=9)
        ax.invert_yaxis()
        ax.set_xlim(-0.6, len(genes) - 0.4)
        ax.grid(False)
        fig.colorbar(sc, ax=ax, shrink=0.5, label="mean expression\n(scaled per gene)")
        for share in (0.25, 0.5, 1.0):
            ax.scatter([], [], s=share * 120, color="0.5", label=f"{share:.0%} expressing")
        ax.legend(loc="upper left", bbox_to_anchor=(1.18, 1.0), fontsize=8, frameon=False)
        ax.set_title(title)
        return _save(fig, out_png)
