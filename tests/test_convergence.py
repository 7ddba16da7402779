"""Convergence on every run (issue 15 §3): the under-trained rule against a hand computation, the records carried
from latent.npz through the embedding to the metric tables, the convergence and fairness tables, the figure marks."""
from __future__ import annotations

import math

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from livaebench import convergence as cv  # noqa: E402
from livaebench import plotting as pl  # noqa: E402
from livaebench.embedding import (embedding_adata, load_convergence, load_latents, parse_convergence,  # noqa: E402
                                  save_latents)
from livaebench.methods import get_method  # noqa: E402
from livaebench.methods.registry import Method  # noqa: E402
from livaebench.results import (STATUS_COLUMNS, TABLE_COLUMNS, failed_metric_table, gather_metric_tables,  # noqa: E402
                                metric_table, read_metrics, write_tsv_atomic)
from livaebench.training import convergence_record  # noqa: E402


def history(val, loss=None):
    loss = val if loss is None else loss
    return [{"epoch": i + 1, "loss": l, "val_loss": v} for i, (l, v) in enumerate(zip(loss, val))]


def test_flag_rule_against_a_hand_computation():
    # 30 epochs: the last 10 % are the last 3 (28, 29, 30); validation 100 -> 98: (98 - 100) / 100 = -2 %
    val = [200.0 - i for i in range(27)] + [100.0, 99.0, 98.0]
    record = convergence_record(history(val), max_epochs=30, stop_reason="max_epochs")
    assert record["tail_epochs"] == 3 and record["rel_change_val_loss"] == pytest.approx(-0.02)
    assert cv.tail_improvement(record) == pytest.approx(0.02)
    assert cv.phase_under_trained(record, 0.01) is True  # 2 % > 1 %
    assert cv.phase_under_trained(record, 0.025) is False  # 2 % < 2.5 %
    # the same curve ended by early stopping is converged by definition
    assert cv.phase_under_trained({**record, "stop_reason": "patience"}, 0.01) is False
    # a flat tail at the limit: 100 -> 99.5, 0.5 % < 1 %
    flat = convergence_record(history([150.0] * 27 + [100.0, 99.8, 99.5]), 30, "max_epochs")
    assert cv.tail_improvement(flat) == pytest.approx(0.005) and cv.phase_under_trained(flat, 0.01) is False
    # no validation split: the training loss is judged (50 -> 45: 10 %)
    no_val = convergence_record(history([math.nan] * 30, [60.0] * 27 + [50.0, 47.0, 45.0]), 30, "max_epochs")
    assert math.isnan(no_val["rel_change_val_loss"]) and cv.tail_improvement(no_val) == pytest.approx(0.1)
    assert cv.phase_under_trained(no_val, 0.01) is True
    # one epoch at the limit: nothing to judge
    one = convergence_record(history([5.0]), 1, "max_epochs")
    assert cv.phase_under_trained(one, 0.01) is None
    # negative losses (a likelihood bound): a fall from -100 to -103 is an improvement of 3 %
    neg = convergence_record(history([0.0] * 27 + [-100.0, -101.0, -103.0]), 30, "max_epochs")
    assert cv.tail_improvement(neg) == pytest.approx(0.03)


def test_run_summary_over_phases():
    pre = {"phase": "pretrain", **convergence_record(history([10.0] * 9 + [9.0]), 10, "patience")}
    fit = {"phase": "train", **convergence_record(history([5.0] * 18 + [4.0, 3.0]), 20, "max_epochs")}
    summary = cv.run_summary([pre, fit], 0.01)
    assert summary == {"epochs_run": 30, "stop_reason": "pretrain:patience,train:max_epochs", "under_trained": "true"}
    assert cv.run_summary([pre], 0.01) == {"epochs_run": 10, "stop_reason": "patience", "under_trained": "false"}
    assert cv.run_summary([], 0.01) == {"epochs_run": None, "stop_reason": None, "under_trained": None}
    assert cv.run_summary(None, 0.01)["under_trained"] is None
    # an undecidable phase beside a converged one leaves the run undecided; a flagged one wins
    one = {"phase": "x", **convergence_record(history([1.0]), 1, "max_epochs")}
    assert cv.run_under_trained([pre, one]) is None and cv.run_under_trained([one, fit]) is True


def test_records_travel_from_latent_file_to_metric_table(tmp_path, tiny_rna):
    record = {"phase": "train", **convergence_record(history([5.0] * 18 + [4.0, 3.0]), 20, "max_epochs")}
    latent = np.arange(tiny_rna.n_obs * 2, dtype=np.float32).reshape(-1, 2)
    save_latents(tmp_path / "latent.npz", {"X_latent": latent}, convergence=[record])
    arrays = load_latents(tmp_path / "latent.npz")
    assert list(arrays) == ["X_latent"]  # the records are not an array of the method
    back = load_convergence(tmp_path / "latent.npz")
    assert back == [record]
    save_latents(tmp_path / "old.npz", {"X_latent": latent})  # written before the records existed
    assert load_convergence(tmp_path / "old.npz") is None

    emb = embedding_adata(tiny_rna, arrays, {}, method="vae", seed=0, convergence=back)
    emb.write_h5ad(tmp_path / "emb.h5ad")
    uns = ad.read_h5ad(tmp_path / "emb.h5ad").uns["livaebench"]
    records = parse_convergence(uns["convergence"])
    assert records[0]["epochs_run"] == 20 and records[0]["stop_reason"] == "max_epochs"

    panel = pd.DataFrame({"metric": ["NMI", "ARI"], "value": [0.5, 0.4]})
    table = metric_table(panel, dataset="d", method="vae", seed=0, convergence=cv.run_summary(records, 0.01))
    assert list(table.columns) == TABLE_COLUMNS
    write_tsv_atomic(table, tmp_path / "vae.tsv")
    classical = metric_table(panel, dataset="d", method="pca", seed=0, convergence=cv.run_summary([], 0.01))
    write_tsv_atomic(classical, tmp_path / "pca.tsv")
    write_tsv_atomic(failed_metric_table("ValueError: x", dataset="d", method="kpca", seed=0), tmp_path / "f.tsv")
    # a table from before these columns still gathers (its run columns are NA)
    old = pd.DataFrame([{"dataset": "d", "method": "nmf", "seed": 0, "metric": "NMI", "value": 0.3,
                         "status": "ok", "reason": ""}], columns=STATUS_COLUMNS)
    write_tsv_atomic(old, tmp_path / "old.tsv")
    all_ = gather_metric_tables([tmp_path / n for n in ("vae.tsv", "pca.tsv", "f.tsv", "old.tsv")])
    write_tsv_atomic(all_, tmp_path / "all.tsv")
    header, *lines = [line.split("\t") for line in (tmp_path / "all.tsv").read_text().splitlines()]
    assert header == TABLE_COLUMNS
    at = [header.index(c) for c in ("method", "epochs_run", "stop_reason", "under_trained")]
    written = [[row[i] for i in at] for row in lines]  # as the file spells them
    assert [r[1:] for r in written if r[0] == "vae"] == [["20", "max_epochs", "true"]] * 2
    assert all(r[1:] == ["NA", "NA", "NA"] for r in written if r[0] != "vae") and len(written) == 6
    back = read_metrics(tmp_path / "all.tsv").set_index("method")
    assert back.loc["vae", "epochs_run"].tolist() == [20, 20] and back.loc["vae", "under_trained"].tolist() == ["true"] * 2
    assert pd.isna(back.loc["pca", "under_trained"]).all() and pd.isna(back.loc["kpca", "stop_reason"])


def test_convergence_table_and_caption(tmp_path):
    flagged = {"phase": "train", **convergence_record(history([5.0] * 18 + [4.0, 3.0]), 20, "max_epochs")}
    early = {"phase": "train", **convergence_record(history([5.0] * 10), 20, "patience", "no improvement")}
    runs = [("b", "vae", 0, [flagged]), ("a", "vae", 0, [early]), ("a", "pca", 0, []), ("a", "kpca", 0, None)]
    table = cv.convergence_table(runs, 0.01)
    assert list(table.columns) == cv.CONVERGENCE_COLUMNS
    assert table[["dataset", "method", "under_trained"]].values.tolist() == [["a", "vae", "false"], ["b", "vae", "true"]]
    assert table.loc[1, "rel_change_loss"] == pytest.approx((3.0 - 4.0) / 4.0)  # tail of 2 epochs: 4 -> 3
    write_tsv_atomic(table, tmp_path / "convergence.tsv")
    caption = str(cv.FlaggedRunsCaption(tmp_path / "convergence.tsv"))
    assert "Flagged runs (1)" in caption and "``b/vae/seed0``" in caption and "a/vae" not in caption
    write_tsv_atomic(cv.convergence_table(runs[1:], 0.01), tmp_path / "none.tsv")
    assert str(cv.FlaggedRunsCaption(tmp_path / "none.tsv")) == "**No run is flagged.**"
    assert "not been written" in str(cv.FlaggedRunsCaption(tmp_path / "absent.tsv"))


def test_fairness_table_settings_against_the_original():
    livae = get_method("livae")
    record = {"phase": "train", **convergence_record(history([5.0] * 18 + [4.0, 3.0]), 20, "max_epochs")}
    runs = [("d1", "livae", 0, [record]), ("d2", "livae", 0, [{**record, "epochs_run": 12, "stop_reason": "patience"}])]
    conv = cv.convergence_table(runs, 0.01)
    # a method whose origin is not declared yet (not registered: the registry stays as it is)
    bare = Method("bare", "classical", lambda ctx: {}, {"latent_dim": 10, "alpha": 1.0})
    table = cv.fairness_table({"livae": livae, "bare": bare},
                              {"livae": {"d1": {"epochs": 20}, "d2": {"epochs": 20, "lr": 1e-3}},
                               "bare": {"d1": {}}}, conv, global_params={"latent_dim": 8})
    assert list(table.columns) == cv.FAIRNESS_COLUMNS
    row = table.set_index("method").loc["livae"]
    settings = dict(item.split("=", 1) for item in row["settings_run"].split("; "))
    original = dict(item.split("=", 1) for item in row["settings_original"].split("; "))
    assert list(settings) == list(livae.origin.defaults) == list(original)
    assert settings["epochs"] == "20" and original["epochs"] == f"{livae.origin.defaults['epochs']:g}"
    assert settings["lr"] == "0.0001 (d1) / 0.001 (d2)" and settings["latent_dim"] == "8"
    assert {"epochs", "lr", "latent_dim"} <= set(row["settings_differing"].split(", "))
    assert row["origin"] == livae.origin.source and row["budget_original"] == livae.origin.budget
    assert row["epochs_run"] == "train 12–20/20"
    assert row["stop_reason"] == "train: max_epochs ×1, patience ×1" and row["under_trained_runs"] == "1 of 2"
    assert row["n_deviations"] == len(livae.deviations)
    bare_row = table.set_index("method").loc["bare"]
    assert (bare_row[["origin", "budget_original", "settings_run", "settings_original"]] == cv.NOT_DECLARED).all()
    assert pd.isna(bare_row["epochs_run"]) and bare_row["n_deviations"] == 0


def test_comparison_figures_mark_under_trained_methods(tmp_path):
    rows = []
    for d in range(4):
        for k, m in enumerate(["livae", "vae", "pca"]):
            flag = {"vae": "true" if d == 2 else "false", "livae": "false"}.get(m)
            rows += [(f"ds{d}", m, 0, metric, 0.5 - 0.05 * k + 0.01 * d, "ok", "", None, None, flag)
                     for metric in ("NMI", "ARI")]
    table = pd.DataFrame(rows, columns=STATUS_COLUMNS + cv.RUN_COLUMNS)
    assert pl.under_trained_methods(table, ["livae", "vae", "pca"]) == {"vae": ["ds2"]}
    fig = pl.metric_boxplots(table, None, reference="livae", baselines=["vae", "pca"], out_png=tmp_path / "b.png",
                             title="t")
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["livae", "vae †", "pca"]
    assert "† under-trained" in legend.get_title().get_text() and "vae (ds2)" in legend.get_title().get_text()
    fig = pl.delta_boxplots(table, reference="livae", baselines=["vae", "pca"], metrics_list=["NMI"],
                            out_png=tmp_path / "d.png", title="t")
    ax = [a for a in fig.get_axes() if a.get_visible()][0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["vae †", "pca"]
    assert "† under-trained" in fig.get_suptitle()
    # a table without the column (or no flagged run) draws no mark
    fig = pl.delta_boxplots(table.drop(columns="under_trained"), reference="livae", baselines=["vae", "pca"],
                            metrics_list=["NMI"], out_png=tmp_path / "e.png", title="t")
    assert "†" not in fig.get_suptitle()
