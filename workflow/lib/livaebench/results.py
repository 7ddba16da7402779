"""Reading and writing the tables of the output contract (ARCHITECTURE.md)."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

METRIC_COLUMNS = ["dataset", "method", "seed", "metric", "value"]


def write_tsv_atomic(table: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    table.to_csv(tmp, sep="\t", index=False, na_rep="NaN")
    os.replace(tmp, path)


def metric_table(panel: pd.DataFrame, *, dataset: str, method: str, seed: int) -> pd.DataFrame:
    """Long format ``dataset method seed metric value`` from a panel's ``metric value`` rows."""
    table = panel[["metric", "value"]].copy()
    table.insert(0, "seed", int(seed))
    table.insert(0, "method", method)
    table.insert(0, "dataset", dataset)
    return table[METRIC_COLUMNS]


def gather_metric_tables(paths) -> pd.DataFrame:
    """Concatenate per-embedding metric tables into ``all.tsv`` (status 'ok': every run here finished)."""
    tables = [pd.read_csv(p, sep="\t") for p in paths]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=METRIC_COLUMNS)
    table["seed"] = table["seed"].astype(int)
    table["status"] = "ok"
    return table.sort_values(["dataset", "method", "seed", "metric"], kind="stable").reset_index(drop=True)


def read_metrics(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t")
