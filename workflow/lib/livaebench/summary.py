"""One ranked summary per modality: metrics scaled between controls, category scores, ranks (docs/methods.md §8).

Input: the long metric table ``results/metrics/all.tsv``; output: ``results/summary/{modality}_scores.tsv``
(:func:`scores_table`, long, per dataset) and ``results/summary/{modality}.tsv`` (:func:`leaderboard`).

Decisions:

* Seeds are averaged first (mean of the finite values), as in the paired statistics.
* **Scaling** (Open Problems style), per dataset and metric: ``scaled = (x − neg) / (pos − neg)``, where
  ``neg`` is the *better* of the category's negative controls on that metric and ``pos`` the better of its
  positive controls (``CATEGORY_CONTROLS``; "better" follows the metric's direction, so for a
  lower-is-better metric the formula still gives 0 at the negative and 1 at the positive control). The
  better negative makes 0 mean "no better than the best trivial embedding". Scaled values are **clipped to
  [0, 1]**: one metric on which a method beats a weak positive control by far cannot carry a category.
  When the controls do not separate (``pos`` not better than ``neg``, or a control has no value) the metric
  is not scaled on that dataset (NaN for every method, left out of the category score).
* A **category score** is the mean of the category's scaled metrics (those that are not NaN); the batch
  category exists on datasets with a batch column only. The **overall** score of a dataset is the weighted
  mean of its category scores (config ``summary.weights``; a NaN category drops out and the weights of the
  others are renormalised).
* **A failed run** (no finished seed on a dataset) scores 0 — the negative control's level — on every
  metric that is scaled on that dataset, so failing is never better than running; a metric that is NaN for
  a finished run (outside its domain, docs/methods.md §3.7) is left out of that run's category mean.
* **Ranks**: per dataset, the methods (controls excluded) are ranked by overall score (1 = best, ties get
  the average rank; a NaN overall ranks last). ``mean_rank`` is the mean over the modality's datasets the
  method ran on, and ``rank`` orders the methods by mean rank, then by overall score. Controls are rows of
  every table with ``rank``/``mean_rank`` NA, listed after the methods: they fix the scale, they do not
  compete.
* Leaderboard columns: ``score_<category>`` = mean over datasets of the category score; ``overall`` = the
  weighted mean of those columns (the row's own numbers give it back).
* Critical difference (Demšar 2006): Friedman's test over the datasets (blocks) and the methods, and the
  Nemenyi critical difference ``CD = q_α/√2 · √(k(k+1)/(6N))``, q_α the studentized range quantile for k
  groups and infinite degrees of freedom.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .failures import OK
from .methods.controls import CONTROLS, NEGATIVE, POSITIVE
from .results import METRIC_GROUPS
from .stats import LOWER_IS_BETTER

# slug -> (title, metrics); the slug names the leaderboard column score_<slug>
CATEGORIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "clustering": ("Clustering quality", tuple(METRIC_GROUPS["Clustering quality"])),
    "umap": ("UMAP embedding fidelity", tuple(METRIC_GROUPS["UMAP embedding fidelity"])),
    "tsne": ("t-SNE embedding fidelity", tuple(METRIC_GROUPS["t-SNE embedding fidelity"])),
    "manifold": ("Latent manifold structure", tuple(METRIC_GROUPS["Latent manifold structure"])),
    "intrinsic": ("Intrinsic quality and robustness", tuple(METRIC_GROUPS["Intrinsic quality and robustness"])),
    "batch": ("Batch mixing", ("iLISI",)),
}
DEFAULT_WEIGHTS: dict[str, float] = {slug: 1.0 for slug in CATEGORIES}
# Which controls anchor each category. Clustering against labels: the structure-free negatives against the
# labels themselves. The UMAP/t-SNE fidelity and intrinsic metrics score the latent's own geometry and are
# invariant to permuting the cells, so the shuffled PCA scores there exactly as PCA does: their negative is the
# random embedding alone, their positive the better of the full PCA and the label embedding. For batch mixing
# the structure-free negatives would mix batches perfectly: the unintegrated PCA is the negative and the label
# embedding (no batch signal at all) the positive, as scIB's batch scores.
_GEOMETRY = {NEGATIVE: ("ctrl_random",), POSITIVE: ("ctrl_pca", "ctrl_labels")}
CATEGORY_CONTROLS: dict[str, dict[str, tuple[str, ...]]] = {
    "clustering": {NEGATIVE: ("ctrl_random", "ctrl_shuffled"), POSITIVE: ("ctrl_labels",)},
    "umap": _GEOMETRY,
    "tsne": _GEOMETRY,
    "manifold": _GEOMETRY,
    "intrinsic": _GEOMETRY,
    "batch": {NEGATIVE: ("ctrl_pca",), POSITIVE: ("ctrl_labels",)},
}
NO_CONTROL = "none"
SCORE_COLUMNS = ["dataset", "method", "family", "control", "category", "metric", "raw", "scaled"]
CATEGORY_ROW, OVERALL_ROW = "category", "overall"  # the metric column of the per-dataset aggregate rows
MIN_CD_DATASETS = 2   # a critical difference needs blocks to vary over
FEW_DATASETS = 5      # below this the Friedman chi-square approximation is poor (Demšar 2006: N >= 10)


def control_role(method: str) -> str:
    """``negative``, ``positive`` or ``none`` (a method that competes)."""
    return CONTROLS.get(method, NO_CONTROL)


def leaderboard_columns(categories: Sequence[str]) -> list[str]:
    return ["method", "family", "control", "n_datasets", *(f"score_{c}" for c in categories), "overall",
            "mean_rank", "rank"]


def check_weights(weights: Mapping[str, float] | None, where: str = "config: key 'summary.weights'") -> dict:
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    unknown = sorted(set(weights) - set(CATEGORIES))
    if unknown:
        raise InputError(where, f"'{unknown[0]}' is not a metric category", f"use: {', '.join(CATEGORIES)}")
    bad = [k for k, w in weights.items() if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0)]
    if bad or not any(weights.values()):
        raise InputError(where, f"weight of '{bad[0] if bad else 'every category'}' is not a non-negative number "
                         "(or all are 0)", "give each category a weight >= 0, at least one > 0")
    return {k: float(w) for k, w in weights.items()}


def _better(values: pd.Series, metric: str) -> float:
    values = values.dropna()
    if values.empty:
        return float("nan")
    return float(values.min() if metric in LOWER_IS_BETTER else values.max())


def _run_status(metrics: pd.DataFrame) -> pd.Series:
    """(dataset, method) -> True when at least one seed finished."""
    status = metrics["status"].astype(str) if "status" in metrics else pd.Series(OK, index=metrics.index)
    return (status == OK).groupby([metrics["dataset"], metrics["method"]]).any()


def scores_table(metrics: pd.DataFrame, *, datasets: Sequence[str], families: Mapping[str, str],
                 weights: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Long per-dataset scores (``SCORE_COLUMNS``): a row per metric (raw seed mean, scaled), a row per
    category (metric = 'category', its score in ``scaled``) and one overall row (category = metric =
    'overall') per dataset and method. ``families``: method -> family for the methods of this summary."""
    weights = check_weights(weights)
    table = metrics[metrics["dataset"].isin(datasets) & metrics["method"].isin(families)]
    ran = _run_status(table)
    ok = table[table["status"].astype(str) == OK] if "status" in table else table
    raw = (ok.assign(value=pd.to_numeric(ok["value"], errors="coerce"))
           .groupby(["dataset", "method", "metric"])["value"].mean())  # NaN only when every seed is NaN
    rows = []
    for dataset in datasets:
        if dataset not in ran.index.get_level_values(0):
            continue
        status = ran.loc[dataset]
        present = set(table.loc[table["dataset"] == dataset, "metric"].dropna())
        for method, finished in status.items():
            category_scores = {}
            for slug, (_, names) in CATEGORIES.items():
                names = [m for m in names if m in present]
                if not names:
                    continue  # e.g. batch on a dataset without batches
                anchors = CATEGORY_CONTROLS[slug]
                scaled_values = []
                for metric in names:
                    x = raw.get((dataset, method, metric), np.nan) if finished else np.nan
                    neg = _better(pd.Series([raw.get((dataset, c, metric), np.nan) for c in anchors[NEGATIVE]]), metric)
                    pos = _better(pd.Series([raw.get((dataset, c, metric), np.nan) for c in anchors[POSITIVE]]), metric)
                    span = (neg - pos) if metric in LOWER_IS_BETTER else (pos - neg)
                    if not (np.isfinite(span) and span > 0):
                        s = np.nan  # the controls do not separate on this dataset: no scale
                    elif not finished:
                        s = 0.0  # a failed run scores as the negative control
                    else:
                        s = float(np.clip((x - neg) / (pos - neg), 0.0, 1.0)) if np.isfinite(x) else np.nan
                    scaled_values.append(s)
                    rows.append((dataset, method, slug, metric, x, s))
                finite = [v for v in scaled_values if np.isfinite(v)]
                category_scores[slug] = float(np.mean(finite)) if finite else np.nan
                rows.append((dataset, method, slug, CATEGORY_ROW, np.nan, category_scores[slug]))
            rows.append((dataset, method, OVERALL_ROW, OVERALL_ROW, np.nan, weighted_mean(category_scores, weights)))
    scores = pd.DataFrame(rows, columns=["dataset", "method", "category", "metric", "raw", "scaled"])
    scores.insert(2, "family", scores["method"].map(families))
    scores.insert(3, "control", scores["method"].map(control_role))
    return scores[SCORE_COLUMNS]


def weighted_mean(scores: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Σ w_c s_c / Σ w_c over the categories with a finite score and a positive weight (NaN if none)."""
    pairs = [(weights[c], s) for c, s in scores.items() if np.isfinite(s) and weights.get(c, 0) > 0]
    total = sum(w for w, _ in pairs)
    return float(sum(w * s for w, s in pairs) / total) if total > 0 else float("nan")


def dataset_ranks(scores: pd.DataFrame) -> pd.DataFrame:
    """Wide dataset x method table of ranks by overall score (controls excluded; 1 = best, ties averaged,
    a NaN overall ranks last); a method not run on a dataset is NaN there."""
    overall = scores[(scores["metric"] == OVERALL_ROW) & (scores["control"] == NO_CONTROL)]
    wide = overall.pivot(index="dataset", columns="method", values="scaled")
    ran = overall.assign(r=1).pivot(index="dataset", columns="method", values="r").notna()
    ranks = wide.where(ran).rank(axis=1, ascending=False, method="average", na_option="keep")
    # a run that exists but has no overall score ranks after every scored one
    for dataset in wide.index:
        missing = ran.loc[dataset] & wide.loc[dataset].isna()
        if missing.any():
            n_scored = int((ran.loc[dataset] & ~missing).sum())
            ranks.loc[dataset, missing] = n_scored + (missing.sum() + 1) / 2
    return ranks


def leaderboard(scores: pd.DataFrame, weights: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per method (controls included, marked): category means over datasets, overall, ranks."""
    weights = check_weights(weights)
    categories = [c for c in CATEGORIES if c in set(scores["category"])]
    cat = scores[scores["metric"] == CATEGORY_ROW]
    means = cat.groupby(["method", "category"])["scaled"].mean().unstack("category")
    ranks = dataset_ranks(scores)
    rows = []
    for (method, family, control), group in scores.groupby(["method", "family", "control"], sort=False):
        row = {"method": method, "family": family, "control": control, "n_datasets": group["dataset"].nunique()}
        per_category = {c: float(means.loc[method, c]) if c in means.columns else np.nan for c in categories}
        row.update({f"score_{c}": v for c, v in per_category.items()})
        row["overall"] = weighted_mean(per_category, weights)
        row["mean_rank"] = float(ranks[method].mean()) if method in ranks.columns else np.nan
        rows.append(row)
    board = pd.DataFrame(rows, columns=leaderboard_columns(categories)[:-1])
    competing = board[board["control"] == NO_CONTROL].sort_values(["mean_rank", "overall"], ascending=[True, False],
                                                                  kind="stable")
    keys = list(zip(competing["mean_rank"].round(12), competing["overall"].round(12)))
    competing = competing.assign(rank=[1 + keys.index(k) for k in keys])  # ties in both share the best rank
    controls = board[board["control"] != NO_CONTROL].sort_values(["control", "overall"], ascending=[False, False],
                                                                 kind="stable")
    board = pd.concat([competing, controls.assign(rank=np.nan)], ignore_index=True)
    board["rank"] = board["rank"].astype("Int64")
    board["n_datasets"] = board["n_datasets"].astype(int)
    return board


def summarize(metrics: pd.DataFrame, *, datasets: Sequence[str], families: Mapping[str, str],
              weights: Mapping[str, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(leaderboard, scores) of one modality."""
    scores = scores_table(metrics, datasets=datasets, families=families, weights=weights)
    return leaderboard(scores, weights), scores


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """q_α of the Nemenyi test: the studentized range quantile (k groups, ∞ df) divided by √2."""
    from scipy.stats import studentized_range

    return float(studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi's CD = q_α √(k(k+1)/(6N)) for k methods ranked on N datasets (NaN below 2 methods or 1 dataset)."""
    if k < 2 or n < 1:
        return float("nan")
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6 * n))


def cd_analysis(scores: pd.DataFrame, alpha: float = 0.05) -> dict:
    """Mean ranks over the datasets where every method has a rank (a complete block design), Friedman's test and
    the Nemenyi CD, and a ``note`` that says when N is too small to read the CD as a test."""
    ranks = dataset_ranks(scores).dropna(axis=0, how="any")
    k, n = ranks.shape[1], ranks.shape[0]
    result = {"mean_ranks": ranks.mean().sort_values(), "k": k, "n": n, "alpha": alpha, "cd": float("nan"),
              "friedman_p": float("nan"), "note": ""}
    if k < 2 or n == 0:
        result["note"] = f"{k} method(s) on {n} complete dataset(s): nothing to rank"
        return result
    if n < MIN_CD_DATASETS:
        result["note"] = (f"N = {n} dataset: the ranks of that dataset alone; no Friedman test and no critical "
                          "difference (it needs at least 2 datasets)")
        return result
    result["cd"] = critical_difference(k, n, alpha)
    if k >= 3:
        from scipy.stats import friedmanchisquare

        result["friedman_p"] = float(friedmanchisquare(*[ranks[c].to_numpy() for c in ranks.columns]).pvalue)
    if n < FEW_DATASETS:
        result["note"] = (f"N = {n} datasets is too few for Friedman/Nemenyi (Demšar 2006 asks N ≥ 10): the CD "
                          f"({result['cd']:.2f} ranks) is shown as a scale, not as evidence")
    return result


def cliques(mean_ranks: pd.Series, cd: float) -> list[list[str]]:
    """Maximal groups of methods (in mean-rank order) whose mean ranks lie within ``cd`` of each other."""
    if not np.isfinite(cd):
        return []
    names, values = list(mean_ranks.index), mean_ranks.to_numpy()
    groups = []
    for i in range(len(names)):
        j = max(j for j in range(i, len(names)) if values[j] - values[i] < cd)
        if j > i and not any(g[0] <= i and j <= g[1] for g in groups):
            groups.append((i, j))
    return [names[a:b + 1] for a, b in groups]
