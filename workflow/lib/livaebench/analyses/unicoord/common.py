"""What every UniCoord analysis shares: the seeded train/test split, the label and stage columns, the
analysis models and the trained :class:`Reference` that encodes, reconfigures and decodes cells."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ...errors import InputError
from ...models.unicoord import RARE

STAGE_KEY = "lineage_stage"
TRAIN, TEST = "train", "test"




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


def train_variant(adata, *, dataset: str, seed: int, outdir, overrides: Mapping[str, Any], threads: int = 1,
                  device: str | None = None, log: logging.Logger | None = None) -> Path:
    """Fit the registered ``unicoord`` method on ``adata`` (a subset of cells); the path of its model.pt.

    No workflow-wide settings: the free continuous coordinates are the method's (the paper's 50) unless
    ``overrides`` (the method's settings on the dataset) set ``latent_dim``."""
    from ...methods import fit_method

    fit_method("unicoord", adata, dataset=dataset, seed=seed, outdir=outdir, threads=threads,
               overrides=dict(overrides), global_params={}, device=device, log=log)
    return Path(outdir) / "model.pt"


class Reference:
    """A trained UniCoord model with its latent layout: predict labels, reconfigure, decode."""

    def __init__(self, path):
        from ...models.unicoord import load_unicoord

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

        from ...models.unicoord import posterior_sample

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

    from ...models.unicoord import normalize_log1p

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


def category_means(x: np.ndarray, labels) -> pd.DataFrame:
    """Mean profile per category (rows) over genes (columns)."""
    labels = pd.Series(np.asarray(labels).astype(str))
    return pd.DataFrame(x).groupby(labels.to_numpy()).mean()
