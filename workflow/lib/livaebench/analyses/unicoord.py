"""What a trained UniCoord model is for (docs/methods.md §6.1 "Uses"): label prediction, in silico
reconfiguration, interpolation along a continuous coordinate, restoration of a held-out category, and
reuse as a pretrained reference on a new dataset.

Every model used here is trained on the *train* cells of one seeded, label-stratified split
(:func:`heldout_split`), so that the *test* cells are never seen in training: labels are predicted on
them, they are the cells that get reconfigured and interpolated, and they form the simulated new
dataset of the reference mapping. The restoration model is trained on the train cells without the
held-out category, supervised by a lineage-stage coordinate only (see :func:`add_stage`), as the paper
restores a held-out time point by reconfiguring the timestamp coordinate of other cells.

Every analysis model has the paper's 50 free continuous coordinates (the method's default; the
workflow-wide ``latent_dim`` of the benchmark does not apply here) and reads the paper's input,
log1p(normalize_total 1e4, exclude_highly_expressed) (:func:`livaebench.models.unicoord.model_input`).
Generated cells are decoded from a seeded draw of the modified posterior, as the paper describes
(:func:`livaebench.models.unicoord.posterior_sample`): the same seed gives the same cells, and two
reconfigurations of the same cells share their noise, so their difference is the reconfiguration's.

Figures are matplotlib ``Figure`` objects saved as PNG + PDF with the project's plotting helpers.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import InputError
from ..models.unicoord import RARE
from ..plotting import _categorical_palette, _save, _style

STAGE_KEY = "lineage_stage"
TRAIN, TEST = "train", "test"


# ---------------------------------------------------------------------------------------------- split
def heldout_split(labels, test_frac: float, seed: int) -> np.ndarray:
    """A boolean mask of the test cells: ``test_frac`` of each label's cells (at least one cell of a label
    with two or more stays in train), drawn with ``seed``."""
    labels = np.asarray(pd.Series(labels).astype(str))
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for label in sorted(set(labels)):
        idx = np.flatnonzero(labels == label)
        n_test = min(int(round(test_frac * len(idx))), len(idx) - 1)
        if n_test > 0:
            test[rng.choice(idx, n_test, replace=False)] = True
    return test


def write_split(path, obs_names, test: np.ndarray) -> None:
    pd.DataFrame({"cell": list(map(str, obs_names)), "split": np.where(test, TEST, TRAIN)}).to_csv(
        path, sep="\t", index=False)


def read_split(path, adata) -> np.ndarray:
    """The test mask of ``adata``'s cells from a split table (every cell must be listed)."""
    table = pd.read_csv(path, sep="\t", dtype=str).set_index("cell")["split"]
    missing = adata.obs_names.difference(table.index)
    if len(missing):
        raise InputError(str(path), f"{len(missing)} cells of the dataset are not in the split table",
                         "delete the split table so that it is made again for this dataset")
    return (table.loc[adata.obs_names] == TEST).to_numpy()


def label_key_of(adata, layout: Mapping[str, Any]) -> str:
    """The discrete coordinate to predict: the dataset's label column when supervised, else the first."""
    keys = [d["key"] for d in layout["discrete"]]
    if not keys:
        raise InputError(f"dataset '{adata.uns['livaebench']['dataset']}', analysis unicoord",
                         "the model has no supervised discrete coordinate to predict",
                         "set dataset_method_params.<dataset>.unicoord.discrete_keys, e.g. [cell type column]")
    label = adata.uns["livaebench"].get("label_key") or ""
    return label if label in keys else keys[0]


def truth_labels(values, categories: Sequence[str]) -> np.ndarray:
    """Observed labels in the model's categories: a value the model pooled as 'rare' becomes 'rare'."""
    labels = np.asarray(pd.Series(values).astype(object).where(pd.Series(values).notna(), "unlabelled").astype(str))
    if RARE in categories:
        labels = np.where(np.isin(labels, list(categories)) | (labels == "unlabelled"), labels, RARE)
    return labels


def category_mask(adata, key: str, category: str, what: str, setting: str) -> np.ndarray:
    """Cells of one category; a one-line error naming the setting when the category does not exist."""
    if key not in adata.obs:
        raise InputError(what, f"obs has no column '{key}'", f"set {setting} to an obs column's category")
    values = adata.obs[key].astype(str).to_numpy()
    if category not in set(values):
        raise InputError(what, f"'{category}' is not a category of '{key}' (categories: "
                         f"{', '.join(sorted(set(values)))})", f"set {setting} to one of them")
    return values == category


def add_stage(adata, key: str, stages: Mapping[str, float], dataset: str) -> None:
    """``obs['lineage_stage']``: a numeric stage per category of ``key`` (the order of a lineage, like
    the sampling days of a time course); every category of the data must have one."""
    what = f"dataset '{dataset}', analysis unicoord (restoration)"
    if key not in adata.obs:
        raise InputError(what, f"obs has no column '{key}'", "set analyses.unicoord.restoration.key to an obs column")
    cats = sorted(set(adata.obs[key].dropna().astype(str)))
    unmapped = [c for c in cats if c not in stages]
    if unmapped:
        raise InputError(what, f"categories of '{key}' without a stage: {', '.join(unmapped)}",
                         "give every category a number in analyses.unicoord.restoration.stages")
    adata.obs[STAGE_KEY] = adata.obs[key].astype(str).map({k: float(v) for k, v in stages.items()}).astype(float)


# ---------------------------------------------------------------------------------------------- models
def train_variant(adata, *, dataset: str, seed: int, outdir, overrides: Mapping[str, Any], threads: int = 1,
                  device: str | None = None, log: logging.Logger | None = None) -> Path:
    """Fit the registered ``unicoord`` method on ``adata`` (a subset of cells); the path of its model.pt.

    No workflow-wide settings: the free continuous coordinates are the method's (the paper's 50) unless
    ``overrides`` (the method's settings on the dataset) set ``latent_dim``."""
    from ..methods import fit_method

    fit_method("unicoord", adata, dataset=dataset, seed=seed, outdir=outdir, threads=threads,
               overrides=dict(overrides), global_params={}, device=device, log=log)
    return Path(outdir) / "model.pt"


class Reference:
    """A trained UniCoord model with its latent layout: predict labels, reconfigure, decode."""

    def __init__(self, path):
        from ..models.unicoord import load_unicoord

        self.model, saved = load_unicoord(path)
        self.layout = saved["config"]["layout"]
        self.var_names = list(saved["var_names"])
        self.discrete = {d["key"]: list(d["categories"]) for d in self.layout["discrete"]}
        self.continuous = {c["key"]: (i, c["mean"], c["sd"]) for i, c in enumerate(self.layout["continuous"])}

    def _tensor(self, x):
        import torch

        return torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))

    def encode(self, x) -> tuple[np.ndarray, list[np.ndarray]]:
        """μ of the continuous coordinates and the probabilities of each discrete variable."""
        out = self.model.embed(self._tensor(x))
        return out["mu"].numpy(), [p.numpy() for p in out["probs"]]

    def predict(self, x) -> pd.DataFrame:
        """Per cell and supervised discrete key: the predicted category and its probability."""
        _, probs = self.encode(x)
        cols = {}
        for (key, cats), p in zip(self.discrete.items(), probs):
            cols[key] = np.asarray(cats, dtype=object)[p.argmax(axis=1)]
            cols[f"{key}_probability"] = p.max(axis=1)
        return pd.DataFrame(cols)

    def reconfigure(self, x, discrete: Mapping[str, str] | None = None,
                    continuous: Mapping[str, float | np.ndarray] | None = None, *, seed: int = 0) -> np.ndarray:
        """Encode ``x``, set supervised coordinates (a category; a value in the obs column's units, one for
        all cells or one per cell), draw from the modified posterior with ``seed`` and decode.

        Coordinates not set keep the cell's own posterior: continuous ones are drawn around their μ, discrete
        ones from their probabilities; a set continuous coordinate is drawn around its new mean with the
        cell's σ, a set discrete one is the category's one-hot.
        """
        import torch

        from ..models.unicoord import posterior_sample

        post = self.model.embed(self._tensor(x))
        mu = post["mu"].clone()
        for key, value in (continuous or {}).items():
            if key not in self.continuous:
                raise InputError("UniCoord model", f"'{key}' is not a supervised continuous coordinate "
                                 f"(known: {', '.join(self.continuous) or 'none'})", "set one of those")
            i, mean, sd = self.continuous[key]
            mu[:, i] = torch.as_tensor((np.asarray(value, dtype=np.float64) - mean) / sd, dtype=mu.dtype)
        fixed = {}
        for key, category in (discrete or {}).items():
            if key not in self.discrete or category not in self.discrete[key]:
                raise InputError("UniCoord model", f"'{key}={category}' is not a category of a supervised discrete "
                                 "coordinate", f"use one of: {', '.join(f'{k}={c}' for k, cs in self.discrete.items() for c in cs)}")
            fixed[list(self.discrete).index(key)] = self.discrete[key].index(category)
        z, onehots = posterior_sample(mu, post["logvar"], post["probs"], seed=seed, fixed=fixed)
        return self.model.decode_latent(z, onehots).numpy()


def query_matrix(query, var_names: Sequence[str], what: str, log: logging.Logger | None = None) -> np.ndarray:
    """A new dataset's model input (the paper's log1p(normalize_total 1e4, exclude_highly_expressed) over
    the query's own genes) in the reference's gene order.

    ``layers['lognorm']`` when the query has it (taken as already normalized), else computed from ``.X``
    (raw counts). Genes are matched by name; reference genes the query lacks are zero-filled, with a
    warning naming how many.
    """
    import scipy.sparse as sp

    from ..models.unicoord import normalize_log1p

    if "lognorm" in query.layers:
        values = query.layers["lognorm"]
    else:
        counts = sp.csr_matrix(query.X, dtype=np.float64)
        if counts.nnz and (counts.data < 0).any():
            raise InputError(what, ".X has negative values and there is no layers['lognorm']",
                             "give raw counts in .X or log-normalized values in layers['lognorm']")
        values = normalize_log1p(counts)
    values = values.toarray() if sp.issparse(values) else np.asarray(values)
    names = pd.Index(map(str, query.var_names))
    if names.has_duplicates:
        raise InputError(what, "var_names has duplicate gene names", "make the gene names unique (var_names_make_unique)")
    pos = names.get_indexer(list(var_names))
    missing = int((pos < 0).sum())
    if missing == len(var_names):
        raise InputError(what, "shares no gene name with the reference model", "name genes as the reference does")
    if missing and log is not None:
        log.warning("%s: %d of the reference's %d genes are missing from the query; they are set to 0",
                    what, missing, len(var_names))
    out = np.zeros((query.n_obs, len(var_names)), dtype=np.float32)
    out[:, pos >= 0] = values[:, pos[pos >= 0]]
    return out


# ---------------------------------------------------------------------------------------------- 1. labels
def knn_predict(x_train, y_train, x_test, *, k: int = 15, n_pcs: int = 50, seed: int = 0) -> np.ndarray:
    """The baseline: k-NN (scikit-learn) on a PCA of the log-normalized values fitted on the train cells."""
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier

    pca = PCA(n_components=min(n_pcs, x_train.shape[0] - 1, x_train.shape[1]), random_state=seed).fit(x_train)
    knn = KNeighborsClassifier(n_neighbors=min(k, len(x_train))).fit(pca.transform(x_train), y_train)
    return knn.predict(pca.transform(x_test))


def per_class_accuracy(truth, predictions: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per true class: cells and the share each predictor got right; then 'overall' and 'balanced' rows."""
    truth = np.asarray(truth).astype(str)
    rows = []
    for label in sorted(set(truth), key=str):
        mask = truth == label
        rows.append({"class": label, "n_cells": int(mask.sum()),
                     **{name: float(np.mean(np.asarray(p)[mask] == label)) for name, p in predictions.items()}})
    table = pd.DataFrame(rows)
    overall = {"class": "overall", "n_cells": len(truth),
               **{name: float(np.mean(np.asarray(p) == truth)) for name, p in predictions.items()}}
    balanced = {"class": "balanced", "n_cells": len(truth), **{name: float(table[name].mean()) for name in predictions}}
    chance = {"class": "chance (majority class)", "n_cells": len(truth),
              **{name: float(pd.Series(truth).value_counts(normalize=True).iloc[0]) for name in predictions}}
    return pd.concat([table, pd.DataFrame([overall, balanced, chance])], ignore_index=True)


def plot_per_class_accuracy(table: pd.DataFrame, *, out_png, title: str) -> Figure:
    """Grouped bars: accuracy per class of every predictor (the table's columns after n_cells)."""
    predictors = [c for c in table.columns if c not in ("class", "n_cells")]
    rows = table[table["class"] != "chance (majority class)"]
    chance = table.loc[table["class"] == "chance (majority class)", predictors[0]]
    colors = dict(zip(predictors, ["#C0392B", "0.55", "#2E86C1", "#28B463"]))
    with _style():
        fig = Figure(figsize=(1.0 * len(rows) + 2.5, 4.2), layout="constrained")
        ax = fig.subplots()
        width = 0.8 / len(predictors)
        x = np.arange(len(rows))
        for i, name in enumerate(predictors):
            ax.bar(x + (i - (len(predictors) - 1) / 2) * width, rows[name], width, label=name, color=colors.get(name))
        if len(chance):
            ax.axhline(float(chance.iloc[0]), color="0.3", linestyle="--", linewidth=1, label="chance (majority class)")
        ax.set_xticks(x, [f"{c}\n(n={n})" for c, n in zip(rows["class"], rows["n_cells"])], rotation=45, ha="right",
                      fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("accuracy on held-out cells")
        ax.legend(loc="lower left", fontsize=9, frameon=True)
        ax.set_title(title)
        return _save(fig, out_png)


# ---------------------------------------------------------------------------------------------- 2. reconfiguration
def category_means(x: np.ndarray, labels) -> pd.DataFrame:
    """Mean profile per category (rows) over genes (columns)."""
    labels = pd.Series(np.asarray(labels).astype(str))
    return pd.DataFrame(x).groupby(labels.to_numpy()).mean()


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

    from ..embedding import neighbors  # works from 8,192 cells on, unlike plain sc.pp.neighbors here

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


# ---------------------------------------------------------------------------------------------- 3. interpolation
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


# ---------------------------------------------------------------------------------------------- 4. restoration
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


# ---------------------------------------------------------------------------------------------- 5. reference
def simulate_query(prep, test: np.ndarray, *, drop_genes: float, seed: int):
    """A stand-in for a new dataset: the raw counts of the test cells in a separate AnnData, with a
    share ``drop_genes`` of the genes removed (another gene panel) and the genes in another order."""
    import anndata as ad
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n_genes = prep.n_vars
    keep = np.sort(rng.choice(n_genes, n_genes - int(round(drop_genes * n_genes)), replace=False))
    keep = rng.permutation(keep)
    label = prep.uns["livaebench"].get("label_key") or ""
    obs = prep.obs.loc[test, [label]] if label in prep.obs else pd.DataFrame(index=prep.obs_names[test])
    return ad.AnnData(sp.csr_matrix(prep.layers["counts"][test][:, keep], dtype=np.float32), obs=obs.copy(),
                      var=pd.DataFrame(index=prep.var_names[keep].copy()))


def confusion(truth, predicted) -> pd.DataFrame:
    """Share of each true class (rows) predicted as each class (columns)."""
    table = pd.crosstab(pd.Series(np.asarray(truth).astype(str), name="true"),
                        pd.Series(np.asarray(predicted).astype(str), name="predicted"), normalize="index")
    return table


def plot_confusion(table: pd.DataFrame, *, out_png, title: str) -> Figure:
    with _style():
        fig = Figure(figsize=(0.6 * table.shape[1] + 3.5, 0.45 * table.shape[0] + 2.6), layout="constrained")
        ax = fig.subplots()
        im = ax.imshow(table.to_numpy(), cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(table.to_numpy()):
            if v >= 0.01:
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v > 0.6 else "0.1")
        ax.set_xticks(range(table.shape[1]), table.columns, rotation=45, ha="right", fontsize=9)
        ax.set_yticks(range(table.shape[0]), table.index, fontsize=9)
        ax.set_xlabel("predicted by the reference model")
        ax.set_ylabel("label in the new dataset")
        ax.grid(False)
        fig.colorbar(im, ax=ax, shrink=0.6, label="share of the row's cells")
        ax.set_title(title)
        return _save(fig, out_png)
