"""Tables of the output contract: failure rows, gathering, the per-rule benchmark summary."""
from __future__ import annotations

import pandas as pd
import pytest

from livaebench.results import (BENCHMARK_COLUMNS, STATUS_COLUMNS, failed_metric_table, failures,
                                gather_metric_tables, read_metrics, summarize_benchmarks, write_tsv_atomic)

BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _bench(path, seconds, rss):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BENCH_HEADER + f"{seconds}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t1\n")
    return path


def test_benchmark_summary_per_rule(tmp_path):
    root = tmp_path / "results" / "benchmarks"
    paths = [_bench(root / "train" / "a" / "pca" / "seed0.tsv", 2.0, 100.0),
             _bench(root / "train" / "b" / "pca" / "seed0.tsv", 6.0, 300.0),
             _bench(root / "train" / "c" / "pca" / "seed0.tsv", 4.0, 200.0),
             _bench(root / "gather_metrics.tsv", 1.0, "-")]  # Snakemake writes '-' when it could not measure
    table = summarize_benchmarks(paths)
    assert list(table.columns) == BENCHMARK_COLUMNS
    train = table.set_index("rule").loc["train"]
    assert (train["jobs"], train["total_s"], train["median_s"], train["max_s"], train["max_rss_mb"]) == \
        (3, 12.0, 4.0, 6.0, 300.0)
    assert table["rule"].tolist() == ["train", "gather_metrics"]  # slowest rule first
    assert pd.isna(table.set_index("rule").loc["gather_metrics", "max_rss_mb"])


def test_failed_run_row_survives_gathering(tmp_path):
    ok = pd.DataFrame([{"dataset": "d", "method": "pca", "seed": 0, "metric": "NMI", "value": 0.5,
                        "status": "ok", "reason": ""}], columns=STATUS_COLUMNS)
    write_tsv_atomic(ok, tmp_path / "ok.tsv")
    write_tsv_atomic(failed_metric_table("ValueError: bad kernel", dataset="d", method="kpca", seed=0),
                     tmp_path / "failed.tsv")
    table = gather_metric_tables([tmp_path / "ok.tsv", tmp_path / "failed.tsv"])
    write_tsv_atomic(table, tmp_path / "all.tsv")
    back = read_metrics(tmp_path / "all.tsv")
    assert back.loc[back["method"] == "kpca", "status"].tolist() == ["failed"]
    assert back.loc[back["method"] == "kpca", "metric"].isna().all()
    assert back.loc[back["method"] == "pca", "reason"].tolist() == [""]
    assert failures(back).to_dict("records") == [{"dataset": "d", "method": "kpca", "seed": 0,
                                                  "reason": "ValueError: bad kernel"}]


def test_a_dataset_called_NA_stays_a_name(tmp_path):
    table = pd.DataFrame([{"dataset": "NA", "method": "pca", "seed": 0, "metric": "NMI", "value": None,
                           "status": "ok", "reason": ""}], columns=STATUS_COLUMNS)
    write_tsv_atomic(table, tmp_path / "t.tsv")
    back = read_metrics(tmp_path / "t.tsv")
    assert back["dataset"].tolist() == ["NA"] and back["value"].isna().all()
    with pytest.raises(Exception):
        read_metrics(tmp_path / "missing.tsv")
