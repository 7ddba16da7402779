"""Paired comparisons of methods across datasets (docs/methods.md §4, paper §2.9).

Input: the long metric table ``results/metrics/all.tsv`` (``dataset method seed metric value`` and an
optional ``status``). Output: one row per (metric, baseline) with the columns of
``results/stats/{comparison}.tsv``: ``comparison metric reference baseline delta p_value test stars
n_datasets replicate``.

Decisions (the spec leaves them open; they are fixed here and named in the ``test`` column):

* Seeds are averaged first (mean of the finite values per dataset, method, metric): the unit of
  replication is the dataset, so seeds must not inflate n.
* Pooled subsample metrics (``POOLED_SUBSAMPLES``, e.g. ``iLISI_by_subsample``, paper Fig. 11B /
  Table 10) replicate over dataset × subsample size: each ``iLISI_n{s}`` of a dataset is one
  condition, ``n_datasets`` counts the conditions and ``replicate`` says ``dataset×subsample``.
  Metrics not computed per subsample keep the dataset as the replicate. ``prefix*`` in a metric
  list stands for every ``prefix{N}`` metric of the table (``expand_metrics``).
* Pairing: per metric, only datasets where the reference and *every* baseline have a finite value,
  so all rows of one metric share one set of datasets (the omnibus test needs a complete block). A NaN
  is missing, never a number: a metric outside its domain for a method on a dataset (NaN with a reason,
  docs/methods.md §3.7) takes that dataset out of the metric's block; a baseline for which the metric is
  undefined on every dataset gets its own row (``insufficient: <metric> undefined for <method> (<reason>)``).
* Normality: Shapiro–Wilk on each vector of paired differences reference − baseline (these are what
  the post hoc tests compare and what the repeated-measures model assumes normal). The family takes
  the parametric path only when none of them rejects at ``alpha``. Shapiro–Wilk needs n >= 3;
  a difference vector with zero range carries no evidence about shape and is skipped.
* Parametric path (``rm-anova+tukey``): statsmodels ``AnovaRM`` (subject = dataset, within =
  method) as the omnibus, then Tukey HSD for the reference against each baseline. By default the
  Tukey HSD uses the repeated-measures error term (MS_error of the ANOVA, df = (n−1)(k−1)) with the
  studentized range distribution (scipy): datasets differ far more from each other than methods do,
  and statsmodels' ``pairwise_tukeyhsd`` treats the methods as independent groups, leaving that
  dataset variance in its error term. (Tail probabilities below ~1e-15 underflow to 0 in scipy's
  studentized range; read a p_value of 0 as "p < 1e-15".) ``tukey="independent"`` calls ``pairwise_tukeyhsd`` as is
  (test ``rm-anova+tukey(independent)``). With two methods the repeated-measures Tukey p equals the
  paired t-test p.
* Non-parametric path: Friedman (scipy, needs >= 3 methods) as the omnibus, then two-sided Wilcoxon
  signed-rank tests (scipy defaults: zeros dropped) of the reference against each baseline,
  Bonferroni-corrected — test ``friedman+wilcoxon-bonferroni``. ``correction="pairs"`` (default, the
  paper's α = 0.05 / (k(k−1)/2) over the k methods of a figure) multiplies p by k(k−1)/2;
  ``correction="baselines"`` by m, the number of baselines (α/m). Reported p-values are adjusted
  (capped at 1), so stars read against the usual 0.05 / 0.01 / 0.001. With a single baseline there is no omnibus: test ``wilcoxon``.
  A Wilcoxon test runs whenever the family has n >= ``MIN_SHAPIRO`` datasets and the pair has at
  least one non-zero difference: it is a real test at any n, but its smallest attainable two-sided p
  is 2^(1-n) (0.25 at n = 3, 0.031 at n = 6) before the Bonferroni factor, so at small n it cannot
  reject; the claims checker (:mod:`livaebench.claims`) states that floor rather than hiding the row.
  A pair whose methods tie on every dataset (no non-zero difference) is ``insufficient``.
* Post hoc p-values are reported whatever the omnibus says: Tukey HSD and Bonferroni each control
  the family-wise error on their own. The omnibus result and the Shapiro p-values of every metric
  are kept in ``result.attrs["decisions"]`` (see :func:`decisions`).
* Too few datasets: the row's ``test`` starts with ``insufficient:`` and says why; p_value is NaN
  and stars empty. Δ is still reported (it is a plain mean, not an inference).
* ``test="none"`` (ablation, likelihood and sensitivity tables, as the paper): Δ only.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats as sps

from .errors import InputError
from .methods.controls import CONTROLS
from .panels import ILISI_POOLED, SUBSAMPLE_PREFIX
from .results import METRIC_GROUPS, check_metric_columns

log = logging.getLogger("livaebench")

STATS_COLUMNS = ["comparison", "metric", "reference", "baseline", "delta", "p_value", "test", "stars",
                 "n_datasets", "replicate"]
REPLICATE_DATASET = "dataset"
REPLICATE_SUBSAMPLE = "dataset×subsample"

CORE_METRICS: list[str] = [m for group in METRIC_GROUPS.values() for m in group]
DEFAULT_METRICS: list[str] = CORE_METRICS + ["iLISI"]
# Metrics on an open or method-dependent scale (not within [-1, 1]); figures give them their own axis.
UNBOUNDED_METRICS = frozenset({"CAL", "DAV", "COR"})
# COR is read as the paper reads it: higher = stronger coupling of latent dimensions = better.
LOWER_IS_BETTER = frozenset({"DAV"})

TESTS = ("auto", "parametric", "nonparametric", "none")
MIN_SHAPIRO = 3
MIN_WILCOXON = 1  # non-zero differences: scipy's signed-rank test is undefined with none

PATH_PARAMETRIC = "rm-anova+tukey"
PATH_FRIEDMAN = "friedman+wilcoxon-bonferroni"
PATH_WILCOXON = "wilcoxon"


# ---------------------------------------------------------------------------------------------
# Reading and shaping the metric table


def seed_means(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of the finite values, per (dataset, method, metric).

    Rows whose ``status`` is set and is not ``ok`` (a method that failed cleanly) are dropped; a
    (dataset, method, metric) without any finite value ends up NaN, never a number.
    """
    check_metric_columns(metrics, "metric table")
    table = metrics
    if "status" in table.columns:
        status = table["status"].fillna("").astype(str).str.strip().str.lower()
        table = table[status.isin(["", "ok"])]
    values = pd.to_numeric(table["value"], errors="coerce").where(lambda v: np.isfinite(v))
    table = table.assign(value=values, dataset=table["dataset"].astype(str), method=table["method"].astype(str))
    return (table.groupby(["dataset", "method", "metric"], sort=False)["value"].mean()
            .reset_index())


def expand_metrics(metrics_list: list[str], available) -> list[str]:
    """``metrics_list`` with each ``prefix*`` entry replaced by the available metrics ``prefix{N}``
    (N an integer, e.g. ``iLISI_n*`` → ``iLISI_n2000``, ``iLISI_n4000``, … in increasing N)."""
    available = set(map(str, available))
    out: list[str] = []
    for name in metrics_list:
        if not name.endswith("*"):
            out.append(name)
            continue
        prefix = name[:-1]
        sizes = sorted(int(m[len(prefix):]) for m in available if m.startswith(prefix) and m[len(prefix):].isdigit())
        out += [f"{prefix}{n}" for n in sizes]
    return list(dict.fromkeys(out))


# A pooled metric → the prefix of its per-subsample-size metrics. Its replicate is one dataset at one
# subsample size (paper Fig. 11B / Table 10: n = dataset × subsample-size conditions).
POOLED_SUBSAMPLES = {ILISI_POOLED: SUBSAMPLE_PREFIX}


def replicate_of(metric: str) -> str:
    """The unit of replication of a metric's paired values."""
    return REPLICATE_SUBSAMPLE if metric in POOLED_SUBSAMPLES else REPLICATE_DATASET


def replicate_means(metrics: pd.DataFrame, metrics_list: list[str],
                    datasets: list[str] | None = None) -> pd.DataFrame:
    """:func:`seed_means` of ``datasets`` (all when None) plus, for every pooled metric in
    ``metrics_list``, one row per (dataset × subsample size) with ``dataset`` = ``{dataset}@n{size}``.

    Each subsample size is its own condition: the seed mean of ``iLISI_n{size}`` on that dataset.
    """
    means = seed_means(metrics)
    if datasets is not None:
        means = means[means["dataset"].isin([str(d) for d in datasets])]
    pooled = []
    for name in dict.fromkeys(metrics_list):
        prefix = POOLED_SUBSAMPLES.get(name)
        if prefix is None:
            continue
        size = means["metric"].str.extract(rf"^{re.escape(prefix)}(\d+)$", expand=False)
        rows = means[size.notna()]
        pooled.append(rows.assign(dataset=rows["dataset"] + "@n" + size[size.notna()], metric=name))
    return pd.concat([means, *pooled], ignore_index=True) if pooled else means


def paired_values(means: pd.DataFrame, metric: str, methods: list[str],
                  datasets: list[str] | None = None) -> pd.DataFrame:
    """Dataset × method matrix of one metric, restricted to datasets complete for every method."""
    sub = means[(means["metric"] == metric) & means["method"].isin(methods)]
    if datasets is not None:
        sub = sub[sub["dataset"].isin([str(d) for d in datasets])]
    wide = sub.pivot_table(index="dataset", columns="method", values="value", aggfunc="first")
    wide = wide.reindex(columns=methods)
    return wide.dropna(how="any").sort_index()


# ---------------------------------------------------------------------------------------------
# Tests


def stars(p: float) -> str:
    """Paper convention: * p<0.05, ** p<0.01, *** p<0.001, ns otherwise; empty without a p-value."""
    if p is None or not np.isfinite(p):
        return ""
    if p < 0.001:
        return "***"
    if p < 0.01:
        return "**"
    if p < 0.05:
        return "*"
    return "ns"


def rm_anova_tukey(wide: pd.DataFrame, reference: str, baselines: list[str]) -> tuple[dict[str, float], dict]:
    """Tukey HSD with the repeated-measures error term, reference vs each baseline.

    ``wide`` is datasets × methods (complete). q = |mean(ref − b)| / sqrt(MS_error / n), p from the
    studentized range distribution with k methods and (n−1)(k−1) degrees of freedom.
    """
    y = wide[[reference, *baselines]].to_numpy(dtype=float)
    n, k = y.shape
    resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
    df_err = (n - 1) * (k - 1)
    ms_err = float((resid ** 2).sum() / df_err)
    info = {"ms_error": ms_err, "df_error": df_err}
    if not ms_err > 0:
        return {b: np.nan for b in baselines}, info
    out, info["posthoc_statistic"] = {}, {}
    for b in baselines:
        q = abs(float(np.mean(wide[reference] - wide[b]))) / np.sqrt(ms_err / n)
        out[b] = float(sps.studentized_range.sf(q, k, df_err))
        info["posthoc_statistic"][b] = q
    return out, info


def independent_tukey(wide: pd.DataFrame, reference: str, baselines: list[str], alpha: float) -> dict[str, float]:
    """statsmodels ``pairwise_tukeyhsd`` on the stacked values (methods as independent groups)."""
    from statsmodels.stats.multicomp import pairwise_tukeyhsd

    methods = [reference, *baselines]
    long = wide[methods].melt(var_name="method", value_name="value")
    res = pairwise_tukeyhsd(long["value"].to_numpy(float), long["method"].to_numpy(str), alpha=alpha)
    groups = list(res.groupsunique)
    pairs = [(groups[i], groups[j]) for i in range(len(groups)) for j in range(i + 1, len(groups))]
    pvals = {frozenset(pair): float(p) for pair, p in zip(pairs, res.pvalues)}
    return {b: pvals[frozenset((reference, b))] for b in baselines}


def _anova_rm(wide: pd.DataFrame, methods: list[str]) -> dict:
    from statsmodels.stats.anova import AnovaRM

    long = wide[methods].reset_index().melt(id_vars="dataset", var_name="method", value_name="value")
    try:
        table = AnovaRM(long, depvar="value", subject="dataset", within=["method"]).fit().anova_table
        row = table.iloc[0]
        return {"omnibus_test": "AnovaRM", "omnibus_statistic": float(row["F Value"]),
                "omnibus_p": float(row["Pr > F"])}
    except Exception as err:  # a degenerate block (e.g. zero residual) must not stop the whole table
        return {"omnibus_test": "AnovaRM", "omnibus_statistic": np.nan, "omnibus_p": np.nan,
                "omnibus_error": str(err)}


CORRECTIONS = ("pairs", "baselines")


def bonferroni_factor(n_baselines: int, correction: str = "pairs") -> int:
    """Number of tests a Bonferroni correction divides α by: pairs among the k = m + 1 methods, or m."""
    k = n_baselines + 1
    return k * (k - 1) // 2 if correction == "pairs" else n_baselines


def decide_and_test(wide: pd.DataFrame, reference: str, baselines: list[str], *, test: str = "auto",
                    alpha: float = 0.05, tukey: str = "rm", correction: str = "pairs") -> tuple[list[dict], dict]:
    """Run the decision path of docs/methods.md §4.2 on one metric's complete dataset × method matrix.

    Returns one dict per baseline (baseline, delta, p_value, test, stars, n_datasets) and a record of
    the decision (Shapiro p-values, path, omnibus statistic and p, post hoc statistic per baseline:
    Wilcoxon W or Tukey q).
    """
    n = len(wide)
    deltas = {b: (float(np.mean(wide[reference] - wide[b])) if n else np.nan) for b in baselines}
    decision: dict = {"n_datasets": n, "path": None, "shapiro_p": {}}

    def rows(pvals: Mapping[str, float] | None, label) -> list[dict]:
        out = []
        for b in baselines:
            p = np.nan if pvals is None else pvals[b]
            name = label(b) if callable(label) else label
            if not np.isfinite(p) and not (name == "none" or name.startswith("insufficient")):
                name = f"insufficient: {name} gave no p-value (degenerate data)"
            out.append({"baseline": b, "delta": deltas[b], "p_value": p, "test": name,
                        "stars": stars(p), "n_datasets": n})
        return out

    if test == "none":
        decision["path"] = "none"
        return rows(None, "none" if n else "insufficient: n_datasets=0"), decision
    if n < MIN_SHAPIRO:
        decision["path"] = "insufficient"
        return rows(None, f"insufficient: n_datasets={n} (need >={MIN_SHAPIRO})"), decision

    if test == "auto":
        for b in baselines:
            diff = (wide[reference] - wide[b]).to_numpy(float)
            if np.ptp(diff) > 0:
                decision["shapiro_p"][b] = float(sps.shapiro(diff).pvalue)
        normal = all(p >= alpha for p in decision["shapiro_p"].values())
    else:
        normal = test == "parametric"

    methods = [reference, *baselines]
    if normal:
        decision.update(_anova_rm(wide, methods))
        if tukey == "independent":
            decision["path"] = f"{PATH_PARAMETRIC}(independent)"
            pvals = independent_tukey(wide, reference, baselines, alpha)
        else:
            decision["path"] = PATH_PARAMETRIC
            pvals, info = rm_anova_tukey(wide, reference, baselines)
            decision.update(info)
        return rows(pvals, decision["path"]), decision

    m = len(baselines)
    factor = bonferroni_factor(m, correction)
    decision["bonferroni_factor"] = factor
    if m >= 2:
        decision["path"] = PATH_FRIEDMAN
        try:
            res = sps.friedmanchisquare(*[wide[c].to_numpy(float) for c in methods])
            decision.update(omnibus_test="friedman", omnibus_statistic=float(res.statistic),
                            omnibus_p=float(res.pvalue))
        except ValueError as err:
            decision.update(omnibus_test="friedman", omnibus_statistic=np.nan, omnibus_p=np.nan,
                            omnibus_error=str(err))
    else:
        decision["path"] = PATH_WILCOXON
    pvals, labels = {}, {}
    for b in baselines:
        diff = (wide[reference] - wide[b]).to_numpy(float)
        nonzero = int(np.count_nonzero(diff))
        if nonzero < MIN_WILCOXON:
            pvals[b] = np.nan
            labels[b] = f"insufficient: {nonzero} non-zero differences (the methods tie on every dataset)"
        else:
            res = sps.wilcoxon(wide[reference], wide[b])
            pvals[b] = min(1.0, float(res.pvalue) * factor)
            labels[b] = decision["path"]
            decision.setdefault("posthoc_statistic", {})[b] = float(res.statistic)
    return rows(pvals, labels.get), decision


def _no_value_label(metrics: pd.DataFrame, metric: str, method: str, datasets: list[str] | None) -> str:
    """The ``test`` of a baseline without any finite value of ``metric``: it failed everywhere, or it ran
    and the metric is undefined for it (NaN with a reason: outside the metric's domain, docs §3.7)."""
    prefix = POOLED_SUBSAMPLES.get(metric)
    names = metrics["metric"].astype(str)
    rows = metrics[(names.str.fullmatch(rf"{re.escape(prefix)}\d+") if prefix else names == metric)
                   & (metrics["method"].astype(str) == method)]
    if datasets is not None:
        rows = rows[rows["dataset"].astype(str).isin([str(d) for d in datasets])]
    if "status" in rows.columns:
        rows = rows[rows["status"].fillna("").astype(str).str.strip().str.lower().isin(["", "ok"])]
    if rows.empty:
        return f"insufficient: no finished run of {method}"
    reasons = rows["reason"].fillna("").astype(str) if "reason" in rows.columns else pd.Series([], dtype=str)
    reasons = reasons[reasons.str.strip() != ""]
    why = reasons.mode().iloc[0] if len(reasons) else "NaN on every dataset"
    return f"insufficient: {metric} undefined for {method} ({why})"


def compare(metrics: pd.DataFrame, *, comparison: str, reference: str, baselines: list[str],
            metrics_list: list[str], datasets: list[str] | None = None, test: str = "auto",
            alpha: float = 0.05, tukey: str = "rm", correction: str = "pairs") -> pd.DataFrame:
    """One comparison family: the reference against each baseline on each metric (see module doc).

    Returns the rows of ``results/stats/{comparison}.tsv`` (columns ``STATS_COLUMNS``) in
    metrics_list × baselines order; ``result.attrs["decisions"]`` records the test decision per metric.
    """
    what = f"comparison '{comparison}'"
    if test not in TESTS:
        raise InputError(what, f"unknown test '{test}'", f"use one of: {', '.join(TESTS)}")
    if correction not in CORRECTIONS:
        raise InputError(what, f"unknown correction '{correction}'", f"use one of: {', '.join(CORRECTIONS)}")
    if tukey not in ("rm", "independent"):
        raise InputError(what, f"unknown tukey mode '{tukey}'", "use 'rm' or 'independent'")
    baselines = list(dict.fromkeys(baselines))
    if not baselines:
        raise InputError(what, "has no baselines", "list at least one baseline method")
    if reference in baselines:
        raise InputError(what, f"reference '{reference}' is also a baseline", "remove it from the baselines")
    controls = [m for m in [reference, *baselines] if m in CONTROLS]
    if controls:  # controls fix the summary's scale (livaebench.summary); they never join a paired test
        raise InputError(what, f"'{controls[0]}' is a control method", "compare methods only")
    if not metrics_list:
        raise InputError(what, "has an empty metric list", "list the metrics to compare")
    metrics_list = expand_metrics(metrics_list, metrics["metric"].dropna().unique())
    means = replicate_means(metrics, metrics_list, datasets)
    known = set(metrics["method"].astype(str))
    absent = [m for m in [reference, *baselines] if m not in known]
    if absent:
        raise InputError(what, f"method(s) {', '.join(absent)} not in the metric table",
                         "check the method names of the comparison against config methods")

    out, decisions = [], []
    for metric in dict.fromkeys(metrics_list):
        # A baseline without a single finished run (it failed everywhere) would empty the paired block
        # of every other baseline: it gets its own row and the others are tested without it.
        finished = set(means.loc[(means["metric"] == metric) & means["value"].notna(), "method"])
        present = [b for b in baselines if b in finished] if finished else baselines
        wide = paired_values(means, metric, [reference, *present])
        rows, decision = (decide_and_test(wide, reference, present, test=test, alpha=alpha, tukey=tukey,
                                          correction=correction) if present else ([], {"path": "insufficient"}))
        decision.update(metric=metric, datasets=list(wide.index))
        decisions.append(decision)
        by_baseline = {row["baseline"]: row for row in rows}
        for b in baselines:
            row = by_baseline.get(b) or {"baseline": b, "delta": np.nan, "p_value": np.nan, "stars": "",
                                         "test": _no_value_label(metrics, metric, b, datasets), "n_datasets": 0}
            out.append({"comparison": comparison, "metric": metric, "reference": reference, **row,
                        "replicate": replicate_of(metric)})
    table = pd.DataFrame(out, columns=STATS_COLUMNS)
    table["n_datasets"] = table["n_datasets"].astype(int)
    table["p_value"] = table["p_value"].astype(float)
    table.attrs["decisions"] = decisions
    return table


def decisions(table: pd.DataFrame) -> pd.DataFrame:
    """The per-metric decision record of a :func:`compare` result as a flat table."""
    rows = []
    for d in table.attrs.get("decisions", []):
        row = {k: v for k, v in d.items() if k not in ("shapiro_p", "datasets", "posthoc_statistic")}
        row["shapiro_min_p"] = min(d["shapiro_p"].values(), default=np.nan)
        row["datasets"] = ",".join(map(str, d.get("datasets", [])))
        rows.append(row)
    return pd.DataFrame(rows)
