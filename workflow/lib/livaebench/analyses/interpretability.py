"""Interpretability of a latent space (docs/methods.md §5): each component against every gene.

For each latent component j: the Pearson correlation, across cells, with every gene's log-normalized
expression (one matrix product, no per-gene loop); the gene with the largest |r| annotates the
component (UMAP panels of the component beside that gene); the component's ``top_n`` genes by |r| are
tested for over-representation in a gene-set collection (GMT file) with gseapy's hypergeometric
``enrich`` against the dataset's genes as background, Benjamini-Hochberg adjusted over every set of the
collection.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import InputError

# The Snakefile imports read_gmt while it plans: scipy, matplotlib and the plotting module are imported by
# the functions that use them, so planning needs none of them (tests/test_planning.py).
if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["component_gene_correlations", "component_table", "read_gmt", "enrichment", "separating_component",
           "plot_component_umaps", "plot_enrichment", "component_names"]


def component_names(d: int) -> list[str]:
    return [f"Latent{j}" for j in range(d)]


def component_gene_correlations(z: np.ndarray, x) -> np.ndarray:
    """Pearson r of every latent component with every gene (components x genes), in one pass.

    ``x`` (cells x genes) may be sparse; it is never densified. A constant component or gene has r = 0.
    """
    import scipy.sparse as sp

    z = np.asarray(z, dtype=np.float64)
    n = z.shape[0]
    zc = z - z.mean(axis=0)
    z_sd = np.sqrt((zc ** 2).mean(axis=0))
    if sp.issparse(x):
        x = sp.csr_matrix(x, dtype=np.float64)
        cov = np.asarray(x.T @ zc).T / n                        # Σ_i x_ig zc_ij: zc is centred
        x_mean = np.asarray(x.mean(axis=0)).ravel()
        x_var = np.asarray(x.multiply(x).mean(axis=0)).ravel() - x_mean ** 2
    else:
        x = np.asarray(x, dtype=np.float64)
        cov = zc.T @ x / n
        x_mean = x.mean(axis=0)
        x_var = x.var(axis=0)
    x_sd = np.sqrt(np.clip(x_var, 0.0, None))
    # constant up to rounding (E[x²] − x̄² of the sparse path leaves ~1e-16 · x̄²): no defined r
    x_sd = np.where(x_sd > 1e-6 * np.maximum(np.abs(x_mean), 1e-6), x_sd, 0.0)
    z_sd = np.where(z_sd > 1e-12 * np.maximum(np.abs(z.mean(axis=0)), 1.0), z_sd, 0.0)
    denom = np.outer(z_sd, x_sd)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 0, cov / np.where(denom > 0, denom, 1.0), 0.0)
    return np.clip(r, -1.0, 1.0)


def component_table(r: np.ndarray, var_names: Sequence[str], top_n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, top genes): per component the top gene (largest |r|) with its r, and the long table of
    each component's ``top_n`` genes by |r| (rank, gene, r)."""
    names = np.asarray(var_names, dtype=object)
    rows, top = [], []
    for j, comp in enumerate(component_names(r.shape[0])):
        order = np.argsort(-np.abs(r[j]), kind="stable")[:top_n]
        rows.append({"component": comp, "top_gene": names[order[0]], "r": r[j, order[0]],
                     "top_positive": names[np.argmax(r[j])], "r_positive": r[j].max(),
                     "top_negative": names[np.argmin(r[j])], "r_negative": r[j].min()})
        top += [{"component": comp, "rank": k + 1, "gene": names[g], "r": r[j, g]} for k, g in enumerate(order)]
    return pd.DataFrame(rows), pd.DataFrame(top)


def read_gmt(path) -> dict[str, list[str]]:
    """Gene sets of a GMT file (name <tab> description <tab> gene ...); a one-line error when the file is
    missing or a line does not parse."""
    path = Path(path)
    fix = "give analyses.interpretability.gene_sets the path of a GMT file (name, description, genes; tab-separated)"
    if not path.is_file():
        raise InputError(f"gene-set file {path}", "does not exist", fix)
    sets: dict[str, list[str]] = {}
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"gene-set file {path}", f"cannot be read as text ({type(err).__name__})", fix) from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("\t")]
        genes = [g for g in fields[2:] if g]
        if len(fields) < 3 or not fields[0] or not genes:
            raise InputError(f"gene-set file {path}", f"line {number} is not 'name<TAB>description<TAB>gene...'", fix)
        sets[fields[0]] = list(dict.fromkeys(genes))
    if not sets:
        raise InputError(f"gene-set file {path}", "holds no gene set", fix)
    return sets


def enrichment(top_genes: Mapping[str, Sequence[str]], gene_sets: Mapping[str, Sequence[str]],
               background: Sequence[str]) -> pd.DataFrame:
    """Over-representation of each component's genes in every gene set (gseapy's hypergeometric test,
    background = the dataset's genes; sets are restricted to the background). BH over all sets of the
    collection, per component: a set without overlap has p = 1 (gseapy reports only sets it overlaps,
    and adjusts over those alone)."""
    import gseapy
    from scipy.stats import false_discovery_control

    background = list(dict.fromkeys(map(str, background)))
    universe = set(background)
    sizes = {name: len(set(genes) & universe) for name, genes in gene_sets.items()}
    library = {name: list(genes) for name, genes in gene_sets.items() if sizes[name] > 0}
    frames = []
    for comp, genes in top_genes.items():
        genes = [g for g in dict.fromkeys(map(str, genes)) if g in universe]
        table = pd.DataFrame({"component": comp, "gene_set": list(gene_sets), "set_size": [sizes[s] for s in gene_sets],
                              "n_genes": len(genes), "overlap": 0, "p_value": 1.0, "genes": ""})
        if genes and library:
            res = gseapy.enrich(gene_list=genes, gene_sets=library, background=background, outdir=None,
                                cutoff=1.0, no_plot=True).results
            if len(res):
                res = res.set_index("Term")
                hit = table["gene_set"].isin(res.index)
                terms = table.loc[hit, "gene_set"]
                table.loc[hit, "overlap"] = [int(str(o).split("/")[0]) for o in res.loc[terms, "Overlap"]]
                table.loc[hit, "p_value"] = res.loc[terms, "P-value"].to_numpy(dtype=float)
                table.loc[hit, "genes"] = [";".join(sorted(str(g).split(";"))) for g in res.loc[terms, "Genes"]]
        table["p_adj"] = false_discovery_control(table["p_value"].to_numpy(dtype=float), method="bh")
        frames.append(table)
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["component", "p_value", "gene_set"], kind="stable").reset_index(drop=True)


def separating_component(z: np.ndarray, labels, a: str, b: str) -> tuple[int, np.ndarray]:
    """The component that best separates category ``a`` from ``b``: the largest |difference of the two
    means| in units of the component's s.d. over all cells (so a component that also spans the other
    cell types, e.g. a progenitor-to-endocrine axis, counts less than one devoted to a versus b).
    Returns it and every component's standardized difference (a − b)."""
    labels = np.asarray(labels).astype(str)
    z = np.asarray(z, float)
    za, zb = z[labels == a], z[labels == b]
    if len(za) < 2 or len(zb) < 2:
        raise ValueError(f"need at least 2 cells of '{a}' and of '{b}'")
    sd = z.std(axis=0)
    d = (za.mean(axis=0) - zb.mean(axis=0)) / np.where(sd > 0, sd, np.inf)
    return int(np.argmax(np.abs(d))), d


def plot_component_umaps(umap: np.ndarray, z: np.ndarray, x, summary: pd.DataFrame, var_names: Sequence[str], *,
                         out_png, title: str, labels=None) -> Figure:
    """Per component: UMAP coloured by its activation beside the UMAP coloured by its top gene's
    expression (two pairs per row); a first panel shows the cell types when ``labels`` is given."""
    import scipy.sparse as sp
    from matplotlib.figure import Figure

    from ..plotting import _categorical_palette, _save, _style

    names = list(map(str, var_names))
    d = z.shape[1]
    pairs_per_row = 2
    n_rows = -(-d // pairs_per_row) + (labels is not None)
    xy = np.asarray(umap)[:, :2]
    order = np.random.default_rng(0).permutation(len(xy))
    size = float(np.clip(4000.0 / max(len(xy), 1), 0.3, 10.0))
    with _style():
        fig = Figure(figsize=(4.2 * 2 * pairs_per_row, 3.6 * n_rows), layout="constrained")
        axes = fig.subplots(n_rows, 2 * pairs_per_row, squeeze=False)
        for ax in axes.flat:
            ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
            ax.set_aspect("equal", adjustable="datalim")
        start = 0
        if labels is not None:
            labels = np.asarray(labels).astype(str)
            cats = sorted(set(labels))
            palette = dict(zip(cats, _categorical_palette(len(cats))))
            ax = axes[0, 0]
            ax.scatter(xy[order, 0], xy[order, 1], c=[palette[v] for v in labels[order]], s=size, linewidths=0,
                       rasterized=True)
            ax.set_title("cell type", fontsize=11)
            from matplotlib.lines import Line2D

            handles = [Line2D([], [], marker="o", linestyle="", color=palette[c], label=c) for c in cats]
            axes[0, 1].legend(handles=handles, loc="center left", fontsize=9, frameon=False)
            for ax in axes[0, 1:]:
                ax.axis("off")
            start = 1
        for j in range(d):
            row, col = start + j // pairs_per_row, 2 * (j % pairs_per_row)
            info = summary.iloc[j]
            gene = str(info["top_gene"])
            g = names.index(gene)
            col_x = x[:, g]
            expr = np.asarray(col_x.toarray() if sp.issparse(col_x) else col_x).ravel()
            for ax, values, label, cmap in ((axes[row, col], z[:, j], f"{info['component']} activation", "coolwarm"),
                                            (axes[row, col + 1], expr, f"{gene} (r = {info['r']:+.2f})", "viridis")):
                # activation: diverging around the component's median, so both of its ends show
                mid = float(np.median(values)) if cmap == "coolwarm" else 0.0
                lim = float(np.abs(values - mid).max()) if cmap == "coolwarm" else None
                sc = ax.scatter(xy[order, 0], xy[order, 1], c=values[order], s=size, cmap=cmap, linewidths=0,
                                rasterized=True, vmin=mid - lim if lim else None, vmax=mid + lim if lim else None)
                ax.set_title(label, fontsize=11)
                fig.colorbar(sc, ax=ax, shrink=0.7, pad=0.01)
        for j in range(d, (n_rows - start) * pairs_per_row):
            row, col = start + j // pairs_per_row, 2 * (j % pairs_per_row)
            axes[row, col].axis("off"), axes[row, col + 1].axis("off")
        fig.suptitle(title, fontsize=14)
        return _save(fig, out_png)


def plot_enrichment(table: pd.DataFrame, *, out_png, title: str, alpha: float = 0.05) -> Figure:
    """Heatmap of −log10 BH-adjusted p (components x gene sets); significant cells marked with their overlap."""
    from matplotlib.figure import Figure

    from ..plotting import _save, _style

    wide = table.pivot(index="gene_set", columns="component", values="p_adj")
    overlap = table.pivot(index="gene_set", columns="component", values="overlap")
    comps = sorted(wide.columns, key=lambda c: int(str(c).removeprefix("Latent")) if str(c)[6:].isdigit() else 0)
    wide, overlap = wide[comps], overlap[comps]
    order = (-np.log10(wide.clip(lower=1e-300))).max(axis=1).sort_values(ascending=False).index
    wide, overlap = wide.loc[order], overlap.loc[order]
    score = -np.log10(wide.clip(lower=1e-300).to_numpy(dtype=float))
    with _style():
        fig = Figure(figsize=(1.0 + 0.75 * len(comps), 1.6 + 0.38 * len(wide)), layout="constrained")
        ax = fig.subplots()
        im = ax.imshow(score, aspect="auto", cmap="Reds", vmin=0, vmax=max(2.0, float(np.nanmax(score))))
        ax.set_xticks(range(len(comps)), comps, rotation=45, ha="right")
        ax.set_yticks(range(len(wide)), [str(s).replace("HALLMARK_", "") for s in wide.index], fontsize=9)
        ax.grid(False)
        for i in range(score.shape[0]):
            for j in range(score.shape[1]):
                if wide.iat[i, j] < alpha:
                    ax.text(j, i, str(int(overlap.iat[i, j])), ha="center", va="center", fontsize=8,
                            color="white" if score[i, j] > 0.6 * im.get_clim()[1] else "black")
        fig.colorbar(im, ax=ax, label="−log10 BH-adjusted p", shrink=0.8)
        ax.set_title(f"{title}\nnumbers: overlap of the component's top genes where p_adj < {alpha:g}", fontsize=11)
        return _save(fig, out_png)
