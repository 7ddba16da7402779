"""Figures of issue 4: each function writes a valid PNG and PDF, and what it draws is the data it was given
(checked against values computed here from the synthetic table)."""
from __future__ import annotations

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

matplotlib.use("Agg")

from livaebench import plotting as pl  # noqa: E402
from livaebench import stats as st  # noqa: E402
from livaebench.results import METRIC_COLUMNS, write_tsv_atomic  # noqa: E402

METHODS = ["livae", "vae", "pca"]


def metric_table(n_datasets=6, methods=METHODS, metrics=st.CORE_METRICS, seeds=2, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n_datasets):
        base = rng.uniform(0.3, 0.7)
        for k, m in enumerate(methods):
            for s in range(seeds):
                for metric in metrics:
                    scale = 500.0 if metric == "CAL" else 1.0
                    rows.append((f"ds{d}", m, s, metric, scale * (base - 0.03 * k + rng.normal(0, 0.02))))
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def assert_outputs(png):
    pdf = png.with_suffix(".pdf")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert min(im.size) > 300
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and b"%%EOF" in data[-1024:]


def visible_axes(fig):
    return [ax for ax in fig.get_axes() if ax.get_visible()]


def scatter_y(ax):
    return np.sort(np.concatenate([c.get_offsets()[:, 1] for c in ax.collections if len(c.get_offsets())]))


def panel_subfigs(fig):
    """The panels of a metric_boxplots figure, row by row."""
    return [sf for row in fig.subfigs for sf in row.subfigs if sf.get_visible()]


def test_metric_boxplots_category_panels_with_marks(tmp_path):
    table = metric_table()
    stats = st.compare(table, comparison="c", reference="livae", baselines=["vae", "pca"],
                       metrics_list=st.CORE_METRICS)
    fig = pl.metric_boxplots(table, stats, reference="livae", baselines=["vae", "pca"],
                             out_png=tmp_path / "box.png", title="LiVAE vs baselines")
    assert_outputs(tmp_path / "box.png")
    panels = [sf.get_suptitle() for sf in panel_subfigs(fig)]
    assert panels == ["Clustering quality", "UMAP embedding fidelity", "t-SNE embedding fidelity",
                      "Latent manifold structure", "Intrinsic quality and robustness"]
    # each panel shows exactly its category's metrics (the paper's Figs. 2, 7–10 group their boxes so)
    shown = [[t.get_text().removesuffix(" (log)").removesuffix(" ↓") for ax in sf.axes for t in ax.get_xticklabels()]
             for sf in panel_subfigs(fig)]
    assert shown == list(st.METRIC_GROUPS.values())
    # one axis per bounded group + CAL, DAV, COR on their own scales
    assert len(visible_axes(fig)) == 8
    marks = [t.get_text() for ax in fig.get_axes() for t in ax.texts]
    expected = [s for s in stats["stars"] if s]
    assert sorted(marks) == sorted(expected) and len(marks) == 2 * len(st.CORE_METRICS)
    # every dataset's seed mean of every method is a point in its panel
    umap_ax = panel_subfigs(fig)[1].axes[0]
    means = st.seed_means(table)
    umap = means[means.metric.str.startswith("umap_")]["value"].to_numpy()
    np.testing.assert_allclose(scatter_y(umap_ax), np.sort(umap))


def test_metric_boxplots_without_tests_show_no_marks(tmp_path):
    table = metric_table(n_datasets=2, metrics=["NMI", "ARI", "umap_dcorr"])
    stats = st.compare(table, comparison="c", reference="livae", baselines=["vae", "pca"],
                       metrics_list=["NMI", "ARI", "umap_dcorr"])
    assert stats["test"].str.startswith("insufficient").all()
    write_tsv_atomic(stats, tmp_path / "c.tsv")  # as the plotting rule gets it: empty stars read back as NaN
    stats = pd.read_csv(tmp_path / "c.tsv", sep="\t")
    fig = pl.metric_boxplots(table, stats, reference="livae", baselines=["vae", "pca"],
                             out_png=tmp_path / "few.png", title="two datasets")
    assert_outputs(tmp_path / "few.png")
    assert not any(t.get_text() in {"*", "**", "***", "ns"} for ax in fig.get_axes() for t in ax.texts)
    assert "no data for these metrics" in [t.get_text() for ax in fig.get_axes() for t in ax.texts]  # no t-SNE


def test_delta_boxplots_show_reference_minus_baseline(tmp_path):
    metrics_list = ["NMI", "ASW", "DAV", "iLISI"]
    table = metric_table(metrics=["NMI", "ASW", "DAV"])
    fig = pl.delta_boxplots(table, reference="livae", baselines=["vae", "pca"], metrics_list=metrics_list,
                            out_png=tmp_path / "delta.png", title="Δ")
    assert_outputs(tmp_path / "delta.png")
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == ["NMI  (n=6)", "ASW  (n=6)", "DAV ↓  (n=6)"]  # no iLISI data
    wide = st.paired_values(st.seed_means(table), "NMI", METHODS)
    expected = np.concatenate([wide["livae"] - wide["vae"], wide["livae"] - wide["pca"]])
    np.testing.assert_allclose(scatter_y(axes[0]), np.sort(expected))
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["vae", "pca"]


def test_umap_grid_rows_are_keys_and_columns_methods(tmp_path):
    rng = np.random.default_rng(0)
    embeddings = {}
    for method in METHODS:
        a = ad.AnnData(np.zeros((300, 3), np.float32))
        a.obs["cell_type"] = pd.Categorical(rng.choice(["alpha", "beta", "delta", "ductal"], 300))
        a.obs["batch"] = pd.Categorical(rng.choice(["b1", "b2"], 300))
        a.obsm["X_umap"] = rng.normal(size=(300, 2))
        embeddings[method] = a
    del embeddings["pca"].obs["batch"]
    fig = pl.umap_grid(embeddings, color_keys=["cell_type", "batch"], out_png=tmp_path / "umap.png", title="pancreas")
    assert_outputs(tmp_path / "umap.png")
    axes = np.array(fig.get_axes()).reshape(2, 3)
    assert [ax.get_title() for ax in axes[0]] == METHODS
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["cell_type", "batch"]
    legend = axes[0, -1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["alpha", "beta", "delta", "ductal"]
    # the legend sits outside the data: right of the last column
    fig.canvas.draw()
    assert legend.get_window_extent().x0 >= axes[0, -1].get_window_extent().x1
    assert [t.get_text() for t in axes[1, 2].texts] == ["no 'batch' in obs"]
    assert all(c.get_rasterized() for ax in axes.flat for c in ax.collections)


def test_sensitivity_lines_plot_mean_over_datasets(tmp_path):
    sweep = {"livae_l1": 1.0, "livae_l10": 10.0, "livae_l5": 5.0}
    table = metric_table(methods=list(sweep), metrics=["NMI", "ARI", "CAL"])
    fig = pl.sensitivity_lines(table, sweep=sweep, param_name="λ", metrics_list=["NMI", "ARI", "CAL"],
                               out_png=tmp_path / "sens.png", title="λ sweep")
    assert_outputs(tmp_path / "sens.png")
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == ["Clustering quality", "CAL  (n=6)"]
    means = st.seed_means(table)
    nmi = means[means.metric == "NMI"].groupby("method")["value"].mean()
    line = axes[0].get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), nmi[["livae_l1", "livae_l5", "livae_l10"]].to_numpy())
    assert line.get_xdata()[0] < line.get_xdata()[1] < line.get_xdata()[2]
    assert axes[1].get_lines()[0].get_xdata().tolist() == [1.0, 5.0, 10.0]


def test_ilisi_vs_subsample(tmp_path):
    table = metric_table(metrics=["iLISI", "iLISI_n4000", "iLISI_n2000", "iLISI_n8000"])
    fig = pl.ilisi_vs_subsample(table, methods=METHODS, out_png=tmp_path / "ilisi.png", title="iLISI",
                                reference="livae")
    assert_outputs(tmp_path / "ilisi.png")
    (ax,) = fig.get_axes()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == METHODS
    assert "18 dataset × subsample-size conditions" in ax.get_title()  # 6 datasets × 3 sizes
    summary = pl.ilisi_subsample_table(table, METHODS)
    assert summary["n_cells"].unique().tolist() == [2000, 4000, 8000]
    means = st.seed_means(table)
    expected = means[(means.metric == "iLISI_n4000") & (means.method == "vae")]["value"].mean()
    assert summary.query("method == 'vae' and n_cells == 4000")["mean"].item() == pytest.approx(expected)
    drawn = ax.get_lines()[0].get_ydata()  # livae line
    np.testing.assert_allclose(drawn, summary[summary.method == "livae"]["mean"].to_numpy())


def test_empty_inputs_still_give_a_readable_figure(tmp_path):
    table = metric_table(metrics=["NMI"])
    pl.ilisi_vs_subsample(table, methods=METHODS, out_png=tmp_path / "none.png", title="no batches")
    assert_outputs(tmp_path / "none.png")
    fig = pl.delta_boxplots(table, reference="livae", baselines=["vae"], metrics_list=["iLISI"],
                            out_png=tmp_path / "none_delta.png", title="nothing")
    assert_outputs(tmp_path / "none_delta.png")
    assert "no metric with paired values" in [t.get_text() for ax in fig.get_axes() for t in ax.texts]


def test_a_baseline_failed_everywhere_leaves_the_other_boxes_and_is_named(tmp_path):
    table = metric_table(metrics=["NMI", "ASW"])
    failed = pd.DataFrame([{"dataset": f"ds{d}", "method": "kernelpca", "seed": 0, "metric": None, "value": None,
                            "status": "failed", "reason": "ValueError: bad kernel"} for d in range(6)])
    table = pd.concat([table.assign(status="ok", reason=""), failed], ignore_index=True)
    fig = pl.delta_boxplots(table, reference="livae", baselines=["vae", "kernelpca"], metrics_list=["NMI", "ASW"],
                            out_png=tmp_path / "delta.png", title="Δ")
    axes = visible_axes(fig)
    assert [ax.get_title() for ax in axes] == ["NMI  (n=6)", "ASW  (n=6)"]
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["vae"]
    assert "kernelpca on ds0 (ValueError: bad kernel)" in fig.get_suptitle()
    fig = pl.metric_boxplots(table, reference="livae", baselines=["vae", "kernelpca"], stats=None,
                             out_png=tmp_path / "box.png", title="boxes")
    assert "n = 6 datasets" in fig.get_suptitle()
    assert "kernelpca on ds0" in fig.legends[0].get_title().get_text()
