"""The DiffVAE and Graph-DiffVAE analyses (docs/methods.md §6.2-6.3).

Cell types (paper Fig. 1): K-means of the latent μ (shown on the t-SNE of μ from the embedding step);
per latent dimension k the cells D_k beyond mean ± 1 s.d. and the share of D_k that each cluster
holds; each cluster's marker dimensions (the ``n_dims`` with the largest share); the high-weight genes
of each dimension, by |ω| of the decoder weight product ω = W₁W₂W₃.

Perturbation (paper Fig. 2-3): the source cells' μ is shifted along the target's marker dimensions by
λ · s.d. (towards the target cluster's mean), decoded, and classified by an MLP (256-512-256) trained
on the scaled expression of the classifier cell types (default: every cell type, the source included, so
that an unshifted source cell is recognised as such); converted cells are those classified as the target
after the shift but not before it (λ = 0 is reported as the baseline), and the genes that moved most are those whose decoded value changed most on average between
the unshifted and the shifted decoding of the converted cells.

Graph (paper Fig. 4): the fraction of the links of each cell type that go to each cell type, in the
input correlation graph and among the predicted links (each cell's ``k`` most probable partners).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.ticker
import numpy as np
import pandas as pd
import scipy.sparse as sp
from matplotlib.figure import Figure

from ..errors import InputError
from ..plotting import _categorical_palette, _save, _style

__all__ = ["check_category", "kmeans_clusters", "extreme_cells", "dimension_shares", "marker_dimensions",
           "high_weight_genes", "plan_shift", "train_classifier", "perturb", "moved_genes", "link_fractions",
           "same_type_enrichment", "plot_celltypes", "plot_perturbation", "plot_link_fractions"]


def check_category(labels, category: str, *, dataset: str, setting: str) -> None:
    """A one-line error when a configured category is not among the dataset's labels."""
    present = sorted(set(pd.Series(labels).dropna().astype(str)))
    if category not in present:
        raise InputError(f"dataset '{dataset}'", f"{setting} '{category}' is not one of its cell types "
                         f"({', '.join(present)})", f"set {setting} in config/config.yaml to one of them")


# ---------------------------------------------------------------------------- cell types
def kmeans_clusters(z: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(np.asarray(z, np.float64))


def extreme_cells(z: np.ndarray, n_sd: float = 1.0) -> np.ndarray:
    """cells x dims booleans: z_ik ≥ μ_k + n_sd·σ_k or z_ik ≤ μ_k − n_sd·σ_k (the paper's D_k)."""
    z = np.asarray(z, np.float64)
    mu, sd = z.mean(axis=0), z.std(axis=0)
    return (z >= mu + n_sd * sd) | (z <= mu - n_sd * sd)


def dimension_shares(z: np.ndarray, groups, n_sd: float = 1.0) -> pd.DataFrame:
    """dims x groups: the share (0-1) of D_k's cells in each group; column ``n_cells`` = |D_k|."""
    groups = pd.Series(np.asarray(groups).astype(str))
    ext = extreme_cells(z, n_sd)
    counts = pd.DataFrame({g: ext[(groups == g).to_numpy()].sum(axis=0) for g in sorted(groups.unique())})
    total = ext.sum(axis=0)
    shares = counts.div(np.where(total > 0, total, 1), axis=0)
    shares.index = pd.Index([f"dim{k}" for k in range(ext.shape[1])], name="dimension")
    shares.insert(0, "n_cells", total)
    return shares


def marker_dimensions(shares: pd.DataFrame, n_dims: int) -> pd.DataFrame:
    """Long table group, rank, dimension, share: each group's ``n_dims`` dimensions with the largest share."""
    rows = []
    for group in [c for c in shares.columns if c != "n_cells"]:
        top = shares[group].sort_values(ascending=False, kind="stable").head(n_dims)
        rows += [{"group": group, "rank": r + 1, "dimension": dim, "share": s} for r, (dim, s) in enumerate(top.items())]
    return pd.DataFrame(rows)


def high_weight_genes(omega: np.ndarray, var_names: Sequence[str], n_genes: int) -> pd.DataFrame:
    """Long table dimension, rank, gene, weight: each dimension's genes with the largest |ω|."""
    names = np.asarray(var_names, dtype=object)
    rows = []
    for k in range(omega.shape[0]):
        order = np.argsort(-np.abs(omega[k]), kind="stable")[:n_genes]
        rows += [{"dimension": f"dim{k}", "rank": r + 1, "gene": names[g], "weight": omega[k, g]}
                 for r, g in enumerate(order)]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- perturbation
def plan_shift(z: np.ndarray, source_mask: np.ndarray, target_mask: np.ndarray, dims: Sequence[int]) -> np.ndarray:
    """Per-dimension shift of one λ unit: σ_k · sign(mean of target − mean of source) on the chosen
    dimensions, 0 elsewhere (σ_k over all cells, as the paper's λ · σ_k)."""
    z = np.asarray(z, np.float64)
    step = np.zeros(z.shape[1])
    dims = list(dims)
    direction = np.sign(z[target_mask][:, dims].mean(axis=0) - z[source_mask][:, dims].mean(axis=0))
    step[dims] = z.std(axis=0)[dims] * np.where(direction == 0, 1.0, direction)
    return step


def train_classifier(x: np.ndarray, labels, seed: int, max_iter: int = 200):
    """The MLP (256-512-256, ReLU, Adam) of the paper, seeded; scikit-learn's MLPClassifier."""
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(256, 512, 256), max_iter=max_iter, random_state=seed,
                        early_stopping=True, validation_fraction=0.1, n_iter_no_change=10)
    return clf.fit(np.asarray(x, np.float32), np.asarray(labels).astype(str))


def perturb(decode: Callable[[np.ndarray], np.ndarray], classify: Callable[[np.ndarray], np.ndarray],
            z_source: np.ndarray, step: np.ndarray, lambdas: Sequence[float], target: str):
    """Decode and classify the source cells at each λ (λ = 0 first: the unshifted reconstruction).

    Returns (summary table lambda, n_source, n_target, fraction_target; predicted classes per λ; decoded
    profiles per λ).
    """
    lambdas = [0.0] + [float(v) for v in lambdas if float(v) != 0.0]
    rows, predicted, decoded = [], {}, {}
    for lam in lambdas:
        y = decode(np.asarray(z_source, np.float32) + np.float32(lam) * step.astype(np.float32))
        pred = np.asarray(classify(y)).astype(str)
        decoded[lam], predicted[lam] = y, pred
        rows.append({"lambda": lam, "n_source": len(pred), "n_target": int((pred == target).sum()),
                     "fraction_target": float((pred == target).mean()) if len(pred) else np.nan})
    return pd.DataFrame(rows), predicted, decoded


def moved_genes(y0: np.ndarray, y1: np.ndarray, converted: np.ndarray, var_names: Sequence[str],
                n_genes: int) -> pd.DataFrame:
    """The genes whose decoded value moved most (mean over the converted cells of y1 − y0), by |change|."""
    names = np.asarray(var_names, dtype=object)
    if not converted.any():
        return pd.DataFrame(columns=["rank", "gene", "mean_change", "direction", "n_cells"])
    delta = (np.asarray(y1, np.float64) - np.asarray(y0, np.float64))[converted].mean(axis=0)
    order = np.argsort(-np.abs(delta), kind="stable")[:n_genes]
    return pd.DataFrame({"rank": np.arange(1, len(order) + 1), "gene": names[order], "mean_change": delta[order],
                         "direction": np.where(delta[order] > 0, "up", "down"), "n_cells": int(converted.sum())})


# ---------------------------------------------------------------------------- graph
def link_fractions(adjacency: sp.spmatrix, labels) -> pd.DataFrame:
    """from x to: the fraction of the links of each cell type's cells that go to each cell type
    (rows sum to 1; a link's weight is 1 whatever its value)."""
    labels = np.asarray(labels).astype(str)
    cats = sorted(set(labels))
    code = pd.Categorical(labels, categories=cats).codes
    a = sp.coo_matrix(adjacency)
    counts = np.zeros((len(cats), len(cats)))
    np.add.at(counts, (code[a.row], code[a.col]), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    return pd.DataFrame(counts / np.where(totals > 0, totals, 1), index=pd.Index(cats, name="from"), columns=cats)


def same_type_enrichment(adjacency: sp.spmatrix, labels) -> dict[str, float]:
    """Share of links between cells of the same type, the share expected for random partners
    (Σ_c p_c²), and their ratio."""
    labels = np.asarray(labels).astype(str)
    a = sp.coo_matrix(adjacency)
    same = float(np.mean(labels[a.row] == labels[a.col])) if a.nnz else np.nan
    _, counts = np.unique(labels, return_counts=True)
    chance = float(((counts / counts.sum()) ** 2).sum())
    return {"n_links": int(a.nnz), "same_type": same, "chance": chance, "enrichment": same / chance}


# ---------------------------------------------------------------------------- figures
def _scatter(ax, xy, colors, size, order=None):
    order = np.arange(len(xy)) if order is None else order
    ax.scatter(xy[order, 0], xy[order, 1], c=[colors[i] for i in order], s=size, linewidths=0, rasterized=True)
    ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
    ax.set_aspect("equal", adjustable="datalim")


def _legend(ax, palette: Mapping[str, tuple], title: str):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=k) for k, c in palette.items()]
    ax.legend(handles=handles, title=title, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8,
              title_fontsize=9, frameon=False, ncols=1 + len(handles) // 16)


def plot_celltypes(tsne: np.ndarray, clusters, labels, shares: pd.DataFrame, *, out_png, title: str) -> Figure:
    """t-SNE of μ coloured by K-means cluster and by cell type; heatmap of each dimension's D_k shares."""
    clusters = np.asarray(clusters).astype(str)
    labels = np.asarray(labels).astype(str)
    xy = np.asarray(tsne)[:, :2]
    order = np.random.default_rng(0).permutation(len(xy))
    size = float(np.clip(4000.0 / max(len(xy), 1), 0.3, 10.0))
    heat = shares.drop(columns="n_cells").T
    with _style():
        fig = Figure(figsize=(16, 5.2), layout="constrained")
        grid = fig.add_gridspec(1, 3, width_ratios=[1, 1, 1.5])
        for col, (values, name) in enumerate(((clusters, "K-means cluster"), (labels, "cell type"))):
            ax = fig.add_subplot(grid[0, col])
            cats = sorted(set(values), key=lambda s: (len(s), s))
            palette = dict(zip(cats, _categorical_palette(len(cats))))
            _scatter(ax, xy, [palette[v] for v in values], size, order)
            ax.set_title(f"t-SNE of μ: {name}")
            _legend(ax, palette, name)
        ax = fig.add_subplot(grid[0, 2])
        im = ax.imshow(heat.to_numpy(dtype=float), aspect="auto", cmap="magma", vmin=0,
                       vmax=max(0.05, float(heat.to_numpy(dtype=float).max())))
        majority = pd.crosstab(clusters, labels).idxmax(axis=1)
        ax.set_yticks(range(len(heat)), [f"cluster {c} ({majority.get(c, '?')})" for c in heat.index])
        step = max(1, heat.shape[1] // 25)
        ax.set_xticks(range(0, heat.shape[1], step), [c.removeprefix("dim") for c in heat.columns[::step]], fontsize=8)
        ax.set_xlabel("latent dimension k")
        ax.grid(False)
        fig.colorbar(im, ax=ax, label="share of D_k (cells beyond mean ± 1 s.d.)", shrink=0.8)
        ax.set_title("which cluster the extreme cells of each dimension belong to")
        fig.suptitle(title, fontsize=14)
        return _save(fig, out_png)


def plot_perturbation(tsne: np.ndarray, labels, source_mask: np.ndarray, predicted: Mapping[float, np.ndarray],
                      summary: pd.DataFrame, genes: pd.DataFrame, *, target: str, out_png, title: str) -> Figure:
    """One t-SNE panel per λ > 0: all cells grey, the source cells coloured by their predicted class after
    the shift; a bar chart of the genes that moved most."""
    xy = np.asarray(tsne)[:, :2]
    size = float(np.clip(4000.0 / max(len(xy), 1), 0.3, 10.0))
    lambdas = [lam for lam in predicted if lam != 0.0]
    classes = sorted(set(np.concatenate([np.asarray(p) for p in predicted.values()])))
    palette = dict(zip(classes, _categorical_palette(len(classes))))
    with _style():
        fig = Figure(figsize=(5.2 * len(lambdas) + 5.5, 5.6), layout="constrained")
        axes = fig.subplots(1, len(lambdas) + 1, squeeze=False)[0]
        for ax, lam in zip(axes, lambdas):
            ax.scatter(xy[:, 0], xy[:, 1], c="0.85", s=size, linewidths=0, rasterized=True)
            src = xy[source_mask]
            ax.scatter(src[:, 0], src[:, 1], c=[palette[p] for p in predicted[lam]], s=size * 2.5, linewidths=0,
                       rasterized=True)
            row = summary[summary["lambda"] == lam].iloc[0]
            ax.set_title(f"λ = {lam:g}: {row.n_target}/{row.n_source} → {target}", fontsize=11)
            ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
            ax.set_aspect("equal", adjustable="datalim")
        _legend(axes[len(lambdas) - 1], palette, "predicted class")
        ax = axes[-1]
        if len(genes):
            top = genes.head(20).iloc[::-1]
            ax.barh(top["gene"], top["mean_change"], color=["#C0392B" if v > 0 else "#2E86C1" for v in top["mean_change"]])
            ax.axvline(0, color="0.3", linewidth=0.8)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4, symmetric=True))
            ax.set_xlabel("mean change of the decoded value (scaled 0-1)")
            ax.set_title(f"genes that moved most (λ = {max(lambdas):g}, {int(genes['n_cells'].iloc[0])} converted cells)",
                         fontsize=10)
        else:
            ax.text(0.5, 0.5, "no converted cell", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([]), ax.set_yticks([])
        fig.suptitle(title, fontsize=13)
        return _save(fig, out_png)


def plot_link_fractions(input_fractions: pd.DataFrame, predicted_fractions: pd.DataFrame,
                        stats: Mapping[str, Mapping[str, float]], *, out_png, title: str) -> Figure:
    """Heatmaps of the link fractions between cell types: input graph beside predicted links."""
    with _style():
        fig = Figure(figsize=(13, 5.8), layout="constrained")
        axes = fig.subplots(1, 2)
        for ax, (name, frac) in zip(axes, (("input", input_fractions), ("predicted", predicted_fractions))):
            im = ax.imshow(frac.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(frac.shape[1]), frac.columns, rotation=45, ha="right")
            ax.set_yticks(range(frac.shape[0]), frac.index)
            ax.grid(False)
            for i in range(frac.shape[0]):
                for j in range(frac.shape[1]):
                    v = frac.iat[i, j]
                    if v >= 0.05:
                        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                                color="black" if v > 0.6 else "white")
            s = stats[name]
            ax.set_title(f"{name} links ({s['n_links']:,}): same type {s['same_type']:.2f} "
                         f"(chance {s['chance']:.2f})", fontsize=11)
            ax.set_xlabel("to cell type")
            ax.set_ylabel("from cell type")
        fig.colorbar(im, ax=axes.tolist(), label="fraction of the row's links", shrink=0.8)
        fig.suptitle(title, fontsize=13)
        return _save(fig, out_png)
