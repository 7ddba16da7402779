"""Where a dataset's cell labels come from: an ``obs`` column, or KMeans pseudo-labels (docs/methods.md §1.6).

The registry's ``label_key`` is either an ``obs`` column of the assembled data ('' = none) or a
pseudo-label spec:

- ``pseudo:kmeans``: KMeans with k = the workflow's ``latent_dim`` (the rule of the LiVAE authors' code,
  which clusters its input into as many groups as the latent has dimensions);
- ``pseudo:kmeans:K``: KMeans with k = K (a whole number >= 2).

The labels are computed once per dataset at preprocessing, on ``layers['lognorm']`` of the kept cells
(RNA: log1p of counts per 10,000 of the selected genes; ATAC: TF-IDF), without PCA (as the authors), with
``n_init`` = ``PSEUDO_N_INIT`` and ``random_state`` = the first configured seed. They become the ``obs``
column ``PSEUDO_COLUMN``, which ``uns['livaebench']['label_key']`` then names, so every later step that
reads labels uses them; ``uns['livaebench']['label_note']`` ("pseudo-labels (KMeans, k=10)") marks every
output that scores against them (the metric tables' ``labels`` column, the stats tables, figure titles).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .errors import InputError

PSEUDO_PREFIX = "pseudo:"
PSEUDO_COLUMN = "pseudo_kmeans"  # the obs column the pseudo-labels are written to
PSEUDO_N_INIT = 10  # the metric panel's K-means uses the same (docs/methods.md §3)
PSEUDO_INPUT = "layers['lognorm']"
SPEC_SYNTAX = "pseudo:kmeans (k = the config's latent_dim) or pseudo:kmeans:K (K a whole number >= 2)"
_SPEC_RE = re.compile(r"pseudo:kmeans(?::([0-9]+))?")


@dataclass(frozen=True)
class PseudoSpec:
    """A parsed ``pseudo:kmeans[:K]``; ``k`` is None where the config's ``latent_dim`` gives it."""

    method: str
    k: int | None


def label_key_problem(value: str) -> tuple[str, str] | None:
    """(problem, fix) when ``value`` starts like a pseudo-label spec but is not one, else None."""
    if not isinstance(value, str) or not value.lower().startswith(PSEUDO_PREFIX):
        return None
    match = _SPEC_RE.fullmatch(value)
    if match is None:
        return f"{value!r} is not a pseudo-label spec", f"write {SPEC_SYNTAX}"
    if match[1] is not None and int(match[1]) < 2:
        return f"{value!r} asks for k = {int(match[1])} clusters", "write K >= 2 (pseudo:kmeans:K)"
    return None


def parse_label_key(value: str, what: str = "label_key") -> PseudoSpec | None:
    """The pseudo-label spec of a registry ``label_key``; None for an ``obs`` column name or ''.

    A value starting with ``pseudo:`` that is not a valid spec is a one-line InputError naming ``what``.
    """
    problem = label_key_problem(value)
    if problem is not None:
        raise InputError(what, *problem)
    if not isinstance(value, str) or not value.startswith(PSEUDO_PREFIX):
        return None
    k = _SPEC_RE.fullmatch(value)[1]
    return PseudoSpec("kmeans", None if k is None else int(k))


def observed_label_key(value: str) -> str:
    """The ``obs`` column the assembled counts must have: the registry value, or '' for a pseudo spec."""
    return "" if parse_label_key(value) is not None else (value or "")


def label_column(value: str) -> str:
    """The ``obs`` column that holds a dataset's labels after preprocessing ('' = none)."""
    return PSEUDO_COLUMN if parse_label_key(value) is not None else (value or "")


def pseudo_label_options(value: str, *, latent_dim: int, seed: int) -> dict | None:
    """What ``preprocess()`` needs to compute the pseudo-labels of ``value``: k (the spec's, else
    ``latent_dim``), how k was chosen, the seed and n_init. None when ``value`` is not a pseudo spec."""
    spec = parse_label_key(value)
    if spec is None:
        return None
    k = spec.k if spec.k is not None else int(latent_dim)
    return {"method": spec.method, "k": int(k), "k_rule": "explicit" if spec.k is not None else "latent_dim",
            "seed": int(seed), "n_init": PSEUDO_N_INIT}


def pseudo_note(k: int) -> str:
    """How every output names pseudo-labels."""
    return f"pseudo-labels (KMeans, k={int(k)})"


def kmeans_pseudo_labels(lognorm, k: int, seed: int, n_init: int = PSEUDO_N_INIT) -> np.ndarray:
    """KMeans cluster index (0..k-1) of every row of ``lognorm`` (sparse or dense), seeded.

    No PCA first (the authors cluster their whole log-transformed matrix); sparse input stays sparse, so a
    100k-cell matrix is never densified. float64, so the same seed gives the same partition on CPU.
    """
    # imported here, not at module level: the Snakefile imports this module while planning
    import scipy.sparse as sp
    from sklearn.cluster import KMeans

    X = sp.csr_matrix(lognorm, dtype=np.float64) if sp.issparse(lognorm) else np.asarray(lognorm, dtype=np.float64)
    km = KMeans(n_clusters=int(k), n_init=int(n_init), random_state=int(seed))
    return km.fit_predict(X).astype(np.int64)


def as_categories(clusters: np.ndarray, k: int) -> pd.Categorical:
    """Cluster indices as string categories '0'..'k-1' (a categorical colours plots by class, not by a scale)."""
    return pd.Categorical(np.asarray(clusters).astype(str), categories=[str(i) for i in range(int(k))])


# ---------------------------------------------------------------------------------------- marking outputs
def labels_description(info: Mapping) -> str:
    """What a dataset's label-based metrics are scored against, from ``uns['livaebench']``: '' (no labels),
    the pseudo-label note, or ``annotated: <column>``."""
    note = str(info.get("label_note", "") or "")
    key = str(info.get("label_key", "") or "")
    return note if note else (f"annotated: {key}" if key else "")


def is_pseudo_description(text) -> bool:
    return isinstance(text, str) and text.startswith("pseudo-labels")


def label_summaries(metrics: pd.DataFrame, datasets: Iterable[str] | None = None) -> dict[str, str]:
    """metric -> what its values were scored against, over the given datasets, for a stats table or a
    figure: 'annotated', a pseudo-label note, or a mixture with dataset counts, e.g.
    "pseudo-labels (KMeans, k=10) on 40 of 48 datasets; annotated on 8". Metrics without labels are absent.
    """
    if "labels" not in metrics:
        return {}
    rows = metrics
    if datasets is not None:
        rows = rows[rows["dataset"].isin(list(datasets))]
    rows = rows[rows["labels"].fillna("").astype(str) != ""]
    out = {}
    for metric, group in rows.groupby("metric", sort=False):
        per_dataset = group.groupby("dataset")["labels"].first()
        counts = per_dataset.map(lambda t: t if is_pseudo_description(t) else "annotated").value_counts()
        total = int(counts.sum())
        if len(counts) == 1:
            out[metric] = str(counts.index[0])
        else:
            ordered = sorted(counts.items(), key=lambda kv: (not is_pseudo_description(kv[0]), kv[0]))
            out[metric] = "; ".join(f"{what} on {n} of {total} datasets" if i == 0 else f"{what} on {n}"
                                    for i, (what, n) in enumerate(ordered))
    return out


def pseudo_title_note(metrics: pd.DataFrame, datasets: Iterable[str] | None = None) -> str:
    """One line for a figure title where any label-based score used pseudo-labels, else ''."""
    summaries = label_summaries(metrics, datasets)
    pseudo = sorted({s for s in summaries.values() if "pseudo-labels" in s})
    if not pseudo:
        return ""
    return "label-based scores (NMI, ARI, ...) against " + " | ".join(pseudo)
