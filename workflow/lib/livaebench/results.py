"""Reading and writing the tables of the output contract (docs/output-contract.md)."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .convergence import RUN_COLUMNS
from .errors import InputError
from .failures import FAILED, OK

METRIC_COLUMNS = ["dataset", "method", "seed", "metric", "value"]
# What the workflow writes: every row says whether its run finished (ok) or failed (and why) ...
STATUS_COLUMNS = METRIC_COLUMNS + ["status", "reason"]
# ... and how its training ended: epochs run, stop reason, under-trained (livaebench.convergence; NA for a
# classical method or a failed run)
TABLE_COLUMNS = STATUS_COLUMNS + RUN_COLUMNS + ["labels"]
# ``labels``: what a label-based metric's row was scored against ("annotated: <column>" or "pseudo-labels
# (KMeans, k=10)", livaebench.labels); NA on every other row.

# Metric names of the output contract (docs/output-contract.md), the one place that defines them.
CLUSTERING_METRICS = ("NMI", "ARI", "ASW", "CAL", "DAV", "COR")
DRE_SUFFIXES = ("dcorr", "qlocal", "qglobal", "overall")
# The metrics scored against the dataset's labels (the panel's K-means / Leiden partitions and the batch
# pipelines against them): the rows the ``labels`` column marks.
LABEL_METRICS = ("NMI", "ARI", "AMI", "leiden_NMI", "leiden_ARI",
                 *(f"{pipe}_{s}" for pipe in ("KK", "KL", "LK", "LL") for s in ("ARI", "NMI")))
INTRINSIC_METRICS = ("manifold_dim", "spectral_decay", "participation", "anisotropy", "directionality",
                     "noise_resilience", "core_intrinsic", "overall_intrinsic")
# The paper's metric categories, keyed by title (which figure panel shows which: livaebench.panels).
METRIC_GROUPS: dict[str, list[str]] = {
    "Clustering quality": list(CLUSTERING_METRICS),
    "UMAP embedding fidelity": [f"umap_{s}" for s in DRE_SUFFIXES],
    "t-SNE embedding fidelity": [f"tsne_{s}" for s in DRE_SUFFIXES],
    "Latent manifold structure": list(INTRINSIC_METRICS[:4]),
    "Intrinsic quality and robustness": list(INTRINSIC_METRICS[4:]),
}


def write_tsv_atomic(table: pd.DataFrame, path: str | Path) -> None:
    """Write a TSV via a temporary file and a rename, so no reader ever sees half a table.

    Missing values are written as ``NA`` (pandas and R read it back as missing).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table.to_csv(tmp, sep="\t", index=False, na_rep="NA")
    os.replace(tmp, path)


def check_metric_columns(table: pd.DataFrame, what: str) -> None:
    missing = [c for c in METRIC_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(what, f"metric table lacks column(s) {', '.join(missing)}",
                         f"give a long table with columns {' '.join(METRIC_COLUMNS)} (+ optional status)")


def metric_table(panel: pd.DataFrame, *, dataset: str, method: str, seed: int,
                 convergence: dict | None = None, labels: str = "") -> pd.DataFrame:
    """Long format ``dataset method seed metric value status reason epochs_run stop_reason under_trained
    labels`` from
    a panel's ``metric value`` rows; ``convergence``: the run's :func:`livaebench.convergence.run_summary`;
    ``labels``: what the label metrics were scored against (:func:`livaebench.labels.labels_description`)."""
    table = panel[["metric", "value"]].copy()
    table.insert(0, "seed", int(seed))
    table.insert(0, "method", method)
    table.insert(0, "dataset", dataset)
    table["status"] = OK
    # an ok row's reason: why its value is NaN (the metric is outside its domain), empty for a value
    table["reason"] = panel["reason"].fillna("").astype(str) if "reason" in panel else ""
    for column in RUN_COLUMNS:
        table[column] = (convergence or {}).get(column)
    table["labels"] = table["metric"].isin(LABEL_METRICS).map({True: labels or None, False: None})  # NA elsewhere
    return _typed(table[TABLE_COLUMNS])


def failed_metric_table(reason: str, *, dataset: str, method: str, seed: int) -> pd.DataFrame:
    """The one row a failed method leaves: no metric, no value, ``status`` failed and the reason."""
    return _typed(pd.DataFrame([{"dataset": dataset, "method": method, "seed": int(seed), "metric": None,
                                 "value": None, "status": FAILED, "reason": reason}], columns=TABLE_COLUMNS))


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    # epochs as integers with NA (not 12.0), so the written table reads as the contract says
    table["epochs_run"] = pd.to_numeric(table["epochs_run"], errors="coerce").astype("Int64")
    return table


def gather_metric_tables(paths) -> pd.DataFrame:
    """Concatenate per-embedding metric tables into ``all.tsv`` (with ``status`` and ``reason`` per row, and the
    run's ``epochs_run stop_reason under_trained``; NA where a table predates them)."""
    tables = [read_metrics(p) for p in paths]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=TABLE_COLUMNS)
    for column, default in (("status", OK), ("reason", "")):
        table[column] = table[column].fillna(default) if column in table else default
    for column in [*RUN_COLUMNS, "labels"]:
        if column not in table:
            table[column] = None
    table["seed"] = table["seed"].astype(int)
    table = table.sort_values(["dataset", "method", "seed", "metric"], kind="stable", na_position="first")
    return _typed(table[TABLE_COLUMNS].reset_index(drop=True))


def failures(table: pd.DataFrame) -> pd.DataFrame:
    """The runs that failed (``dataset method seed reason``), from a metric table."""
    if "status" not in table:
        return pd.DataFrame(columns=["dataset", "method", "seed", "reason"])
    failed = table[table["status"].astype(str) == FAILED]
    return failed[["dataset", "method", "seed", "reason"]].drop_duplicates().reset_index(drop=True)


def read_metrics(path: str | Path) -> pd.DataFrame:
    """Read a metric table (``all.tsv`` or one embedding's) and check its columns."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), "metric table not found", "run the evaluate stage first (results/metrics/all.tsv)")
    missing = ["NA", ""]
    table = pd.read_csv(path, sep="\t", dtype={"dataset": str, "method": str, "metric": str, "reason": str,
                                              "stop_reason": str, "under_trained": str, "labels": str},
                        keep_default_na=False,
                        na_values={"value": ["NA", "NaN", "nan", ""], "metric": missing, "epochs_run": missing,
                                   "stop_reason": missing, "under_trained": missing, "labels": missing})
    check_metric_columns(table, str(path))
    return table


BENCHMARK_COLUMNS = ["rule", "jobs", "total_s", "median_s", "max_s", "max_rss_mb"]


def summarize_benchmarks(paths) -> pd.DataFrame:
    """Per-rule wall time and peak memory from Snakemake ``benchmark:`` files (results/benchmarks/{rule}/...).

    The rule is the first folder (or file name) under ``benchmarks/``; ``max_rss_mb`` is the largest peak resident memory of one job of the rule.
    """
    rows = []
    for path in map(Path, paths):
        parts = path.parts
        rule = parts[parts.index("benchmarks") + 1].removesuffix(".tsv")
        bench = pd.read_csv(path, sep="\t")
        rows.append({"rule": rule, "s": float(bench["s"].iloc[0]),
                     "max_rss": pd.to_numeric(bench["max_rss"], errors="coerce").iloc[0]})
    if not rows:
        return pd.DataFrame(columns=BENCHMARK_COLUMNS)
    jobs = pd.DataFrame(rows).groupby("rule", sort=False)
    table = pd.DataFrame({"jobs": jobs.size(), "total_s": jobs["s"].sum(), "median_s": jobs["s"].median(),
                          "max_s": jobs["s"].max(), "max_rss_mb": jobs["max_rss"].max()}).reset_index()
    return table.sort_values("total_s", ascending=False)[BENCHMARK_COLUMNS].round(2).reset_index(drop=True)

