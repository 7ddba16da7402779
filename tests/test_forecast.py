"""The cost forecast (livaebench.forecast, rule `forecast`, docs/forecast.md): the fit recovers known
coefficients, a forecast's CPU-hours and wall times are the hand sums, and the rule runs on the paper's study
offline, saying which dataset sizes it took from the registry."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO
from livaebench.forecast import (MODEL_COLUMNS, Cluster, cells_from_listing, epoch_budget, fit_cost_model,
                                 forecast_run, load_cost_model, predict_jobs)
from workflow_helpers import snakemake

CELLBENCH = REPO / "resources" / "cellbench.h5ad"  # 992 cells x 11,533 genes: 5,000 features after selection


def test_fit_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    rows = []
    truth = {"vae": 40.0, "livae": 300.0, "scvi": 55.0}  # CPU seconds per 1e9 cells x features x epochs
    for method, slope in truth.items():
        for cells, features, epochs in [(600, 1640, 400), (992, 5000, 400), (3696, 1515, 200), (5000, 5000, 50)]:
            work = cells * features * epochs / 1e9
            values = cells * features / 2**20
            rows.append({"class": "train_torch", "rule": "train_model", "method": method, "cells": cells,
                         "features": features, "epochs": epochs, "cpu_s": 9.0 + slope * work,
                         "rss_mb": 450.0 + 16.0 * values})
    for cells in rng.integers(500, 20_000, size=6):
        rows.append({"class": "embed", "rule": "embed", "method": "pca", "cells": int(cells), "features": 2000,
                     "epochs": 0, "cpu_s": 3.5 + 2.0 * cells / 1e3, "rss_mb": 380.0 + 16.0 * cells / 1e3})
    rows += [{"class": "other", "rule": "gather_metrics", "method": "", "cells": 0, "features": 0, "epochs": 0,
              "cpu_s": s, "rss_mb": 100.0} for s in (1.0, 2.0, 9.0)]
    model = fit_cost_model(pd.DataFrame(rows))  # memory slope fitted too (no declared bytes per value)
    cpu = model[model["quantity"] == "cpu_s"].set_index(["class", "method"])
    for method, slope in truth.items():
        assert cpu.loc[("train_torch", method), "slope"] == pytest.approx(slope, rel=1e-6)
        assert cpu.loc[("train_torch", method), "base"] == pytest.approx(9.0, rel=1e-6)
        assert cpu.loc[("train_torch", method), "work"] == "cells*features*epochs"
    assert cpu.loc[("embed", "*"), ["base", "slope"]].tolist() == pytest.approx([3.5, 2.0], rel=1e-6)
    assert cpu.loc[("other", "gather_metrics"), "base"] == 2.0  # a study-wide rule: its median
    rss = model[model["quantity"] == "rss_mb"].set_index(["class", "method"])
    assert rss.loc[("train_torch", "livae"), ["base", "slope"]].tolist() == pytest.approx([450.0, 16.0], rel=1e-6)
    assert rss.loc[("embed", "*"), ["base", "slope"]].tolist() == pytest.approx([380.0, 16.0], rel=1e-6)
    # with the methods' declared bytes per value as the memory slope, the base is what is left
    declared = fit_cost_model(pd.DataFrame(rows), {"vae": 16.0, "livae": 16.0, "scvi": 16.0})
    d = declared[(declared["quantity"] == "rss_mb") & (declared["class"] == "train_torch")]
    assert d["base"].tolist() == pytest.approx([450.0] * 3) and d["slope"].tolist() == [16.0] * 3


def test_epoch_budgets_follow_each_packages_rule():
    assert epoch_budget("scvi", {"epochs": 0}, 40_000) == 200  # scvi-tools: 400 x 20,000 / cells, at most 400
    assert epoch_budget("scvi", {"epochs": 0}, 5_000) == 400
    assert epoch_budget("sctour", {"epochs": 0}, 100_000) == 44  # 400 x 10,000 / training cells (90 %)
    assert epoch_budget("scdhmap", {"epochs": 200, "pretrain_epochs": 100}, 1000) == 300
    scgnn = {"epochs": 200, "em_epochs": 50, "graph_epochs": 200, "n_iterations": 3}
    assert epoch_budget("scgnn", scgnn, 1000) == 200 + 3 * (50 + 200)
    assert epoch_budget("pca", {"n_components": 10}, 1000) == 0
    # kernel PCA: not epochs but the cells its kernel is fitted on (at most max_fit_cells)
    assert epoch_budget("kernelpca", {"max_fit_cells": 5000}, 20_000) == 5000
    assert epoch_budget("kernelpca", {"max_fit_cells": 5000}, 600) == 600


def _hand_model() -> pd.DataFrame:
    rows = [["train_cpu", "pca", "cpu_s", "cells*features", 2.0, 500.0, 1, "hand"],
            ["train_cpu", "pca", "rss_mb", "cells*features*bytes/2^20", 100.0, 12.0, 1, "hand"],
            ["train_torch", "vae", "cpu_s", "cells*features*epochs", 10.0, 4000.0, 1, "hand"],
            ["train_torch", "vae", "rss_mb", "cells*features*bytes/2^20", 400.0, 16.0, 1, "hand"]]
    for cls, base, slope in [("embed", 3.0, 200.0), ("evaluate", 1.0, 100.0), ("preprocess", 1.0, 10.0),
                             ("assemble_counts", 1.0, 5.0)]:
        rows += [[cls, "*", "cpu_s", "cells", base, slope, 1, "hand"],
                 [cls, "*", "rss_mb", "cells", 300.0, 10.0, 1, "hand"]]
    rows += [["other", "gather_metrics", q, "none", v, 0.0, 1, "hand"] for q, v in (("cpu_s", 7.0), ("rss_mb", 90.0))]
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def test_forecast_cpu_hours_and_wall_time_are_the_hand_sums(tmp_path):
    bench = "results/benchmarks"
    targets = [f"{bench}/assemble_counts/cb.tsv", f"{bench}/preprocess/cb.tsv",
               f"{bench}/train/cb/pca/seed0.tsv", f"{bench}/train_model/cb/vae/seed0.tsv",
               *[f"{bench}/{r}/cb/{m}/seed0.tsv" for r in ("embed", "evaluate") for m in ("pca", "vae")],
               f"{bench}/gather_metrics.tsv"]
    config = {"latent_dim": 10, "method_params": {"vae": {"epochs": 7}}, "preprocess": {"n_features_rna": 5000},
              "threads": {"train": 1, "embed": 1, "evaluate": 1}}
    rows = {"cb": {"dataset": "cb", "modality": "rna", "source": "file", "path": str(CELLBENCH), "max_cells": ""}}
    model = _hand_model()
    model.to_csv(tmp_path / "model.tsv", sep="\t", index=False)
    assert load_cost_model(tmp_path / "model.tsv").equals(model)
    c, f = 992, 5000
    by_hand = {"assemble_counts": 1 + 5 * c / 1e3, "preprocess": 1 + 10 * c / 1e3,
               "pca": 2 + 500 * c * f / 1e6, "vae": 10 + 4000 * c * f * 7 / 1e9,
               "embed": 3 + 200 * c / 1e3, "evaluate": 1 + 100 * c / 1e3, "gather_metrics": 7.0}
    total = (by_hand["assemble_counts"] + by_hand["preprocess"] + by_hand["pca"] + by_hand["vae"]
             + 2 * by_hand["embed"] + 2 * by_hand["evaluate"] + by_hand["gather_metrics"])

    serial = forecast_run(config, rows, targets, model, Cluster(cores=1, gpus=0))
    assert serial["sizes"].iloc[0][["cells", "features"]].tolist() == [c, f]
    assert serial["jobs"]["cpu_s"].sum() == pytest.approx(total)
    summary = serial["summary"].set_index("class")
    assert summary.loc["total", "cpu_hours"] == round(total / 3600, 2) and summary.loc["total", "gpu_hours"] == 0
    assert summary.loc["train_torch", "peak_mem_mb"] == int(np.ceil(400 + 16 * c * f / 2**20))
    assert serial["wall_s"] == pytest.approx(total)  # one core: every job after the other

    wide = forecast_run(config, rows, targets, model, Cluster(cores=100, gpus=0))
    chain = max(by_hand["pca"], by_hand["vae"]) + by_hand["embed"] + by_hand["evaluate"]
    assert wide["wall_s"] == pytest.approx(by_hand["assemble_counts"] + by_hand["preprocess"] + chain
                                           + by_hand["gather_metrics"])  # the critical path

    gpu = forecast_run(config, rows, targets, model, Cluster(cores=100, gpus=1, gpu_speedup=4.0))
    g = gpu["summary"].set_index("class")
    assert g.loc["total", "gpu_hours"] == round(by_hand["vae"] / 4 / 3600, 2)
    assert g.loc["total", "cpu_hours"] == round((total - by_hand["vae"]) / 3600, 2)


def test_listing_bytes_become_cells_by_the_documented_rule():
    listing = pd.DataFrame({"file": ["GSM1_matrix.mtx.gz", "GSM1_barcodes.tsv.gz", "GSM2.h5", "GSM3_meta.csv.gz"],
                            "archive": ["", "", "", ""], "selected": ["yes", "yes", "yes", "no"],
                            "bytes": [70_000_000, 0, 50_000_000, 9_000_000],
                            "kind": ["10x part (matrix)", "10x part (barcodes)", "10x HDF5", "metadata table"]})
    cells, total = cells_from_listing(listing, "rna")
    assert total == 120_000_000 and cells == round(70e6 / (2.8 * 2500) + 50e6 / (2.0 * 2500))
    assert cells_from_listing(listing.assign(bytes=""), "rna") is None  # sizes unknown


def test_unknown_method_falls_back_to_a_close_one():
    model = _hand_model()
    jobs = pd.DataFrame([{"class": "train_torch", "rule": "train_model", "method": "livae_k4", "cells": 1000,
                          "features": 1000, "epochs": 100},
                         {"class": "train_torch", "rule": "train_model", "method": "betavae", "cells": 1000,
                          "features": 1000, "epochs": 100}])
    pred = predict_jobs(model, jobs, {"livae_k4": "sweep", "betavae": "vae_family", "vae": "livae"})
    assert pred["source"].tolist() == ["median of class train_torch", "median of class train_torch"]
    model.loc[model["method"] == "vae", "method"] = "livae"
    pred = predict_jobs(model, jobs, {"livae_k4": "sweep", "betavae": "vae_family", "livae": "livae"})
    assert pred["source"].iloc[0] == "as livae" and pred["cpu_s"].iloc[0] == pytest.approx(10 + 4000 * 0.1)


@pytest.mark.workflow
def test_forecast_rule_runs_on_the_paper_study_offline(tmp_path):
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    config["datasets"] = str(REPO / "config" / "paper_datasets.tsv")
    config["forecast"] = {"cost_model": str(REPO / "resources" / "cost_model.tsv")}
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(config))
    # one series listed (as `geo_files` writes it): its size comes from the listing's bytes
    listing = tmp_path / "results" / "geo_files" / "rna_GSE115571.tsv"
    listing.parent.mkdir(parents=True)
    pd.DataFrame({"file": ["GSM1_matrix.mtx.gz"], "sample": ["GSM1"], "url": [""], "bytes": [35_000_000],
                  "kind": ["10x part (matrix)"], "archive": [""], "selected": ["yes"], "note": [""],
                  "unit": ["u1"]}).to_csv(listing, sep="\t", index=False)
    run = snakemake(tmp_path, tmp_path / "paper.yaml", "--cores", "1", "forecast",
                    "--config", "forecast={cores: 64, gpus: 4}", timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    table = pd.read_csv(tmp_path / "results" / "forecast.tsv", sep="\t").set_index("class")
    assert table.loc["total", "jobs"] > 10_000 and table.loc["total", "gpu_hours"] > 0
    assert (table["cores"] == 64).all() and (table["gpus"] == 4).all()
    assert table.loc["total", "wall_hours_on_cluster"] >= table.loc["total", "gpu_hours"] / 4
    text = (tmp_path / "results" / "forecast.md").read_text()
    assert "| rna_GSE115571 | 5,000 | 5,000 | GEO listing: 35 MB selected" in text
    assert "89 of 90 datasets have no size known before running" in text
    log = (tmp_path / "logs" / "forecast.log").read_text()
    assert "89 of 90 datasets have no size known before running; estimated from the registry" in log
    assert "registry default 20,000 cells" in log


def test_local_shapes_come_from_headers_and_label_files(tmp_path):
    import gzip

    import h5py

    from livaebench.forecast import local_shape

    folder = tmp_path / "tenx"
    folder.mkdir()
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as handle:
        handle.write("AAAC-1\nAAAG-1\nAAAT-1\n")
    with gzip.open(folder / "features.tsv.gz", "wt") as handle:
        handle.write("".join(f"G{i}\tGene{i}\tGene Expression\n" for i in range(5)))
    (folder / "matrix.mtx.gz").write_bytes(b"")  # never read
    assert local_shape(folder) == (3, 5)
    with h5py.File(tmp_path / "counts.h5", "w") as handle:
        handle.create_dataset("matrix/shape", data=[7, 4])  # 10x: features x cells
    assert local_shape(tmp_path / "counts.h5") == (4, 7)
    assert local_shape(CELLBENCH) == (992, 11533)
    assert local_shape(tmp_path / "table.csv") is None
