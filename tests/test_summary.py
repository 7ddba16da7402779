"""The ranked summary (docs/methods.md §8) against a hand computation on a small table: controls, scaling,
categories, weights, ranks with a tie, a failed run and a NaN metric; the critical difference against Demšar's
table; controls never in a comparison; the figures render."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from livaebench import summary as sm
from livaebench.errors import InputError
from livaebench.results import TABLE_COLUMNS

CONTROLS = ("ctrl_random", "ctrl_shuffled", "ctrl_labels", "ctrl_pca")
#            random shuffled labels pca    A     B     C
VALUES = {
    "d1": {"NMI": (0.1, 0.2, 0.9, 0.5, (0.5, 0.6), 1.0, 0.2),
           "DAV": (3.0, 2.0, 0.5, 1.0, 1.25, 2.5, np.nan),  # lower is better; C's is outside its domain
           "umap_qlocal": (0.2, 0.5, 0.3, 0.6, 0.4, 0.5, 0.6)},  # shuffled is no negative here
    "d2": {"NMI": (0.0, 0.1, 0.6, 0.4, 0.35, 0.6, None),  # C failed on d2
           "DAV": (2.0, 2.0, 1.0, 1.5, 1.5, 1.0, None),
           "umap_qlocal": (0.3, 0.3, 0.3, 0.3, 0.2, 0.9, None),  # the controls do not separate: no scale
           "iLISI": (0.9, 0.9, 0.8, 0.2, 0.8, 0.2, None)},  # batch: pca is the negative, labels the positive
}
WEIGHTS = {"clustering": 2.0}
FAMILIES = {**{c: "control" for c in CONTROLS}, "A": "fam", "B": "fam", "C": "other"}


def small_table() -> pd.DataFrame:
    rows = []
    for dataset, metrics in VALUES.items():
        for metric, values in metrics.items():
            for method, value in zip([*CONTROLS, "A", "B", "C"], values):
                if value is None:
                    continue
                for seed, v in enumerate(value if isinstance(value, tuple) else (value,)):
                    rows.append(dict(dataset=dataset, method=method, seed=seed, metric=metric, value=v, status="ok",
                                     reason="" if np.isfinite(v) else "outside its domain"))
    rows.append(dict(dataset="d2", method="C", seed=0, metric=None, value=None, status="failed", reason="boom"))
    return pd.DataFrame(rows).reindex(columns=TABLE_COLUMNS)


@pytest.fixture(scope="module")
def summary():
    return sm.summarize(small_table(), datasets=["d1", "d2"], families=FAMILIES, weights=WEIGHTS)


def scaled(scores, dataset, method, metric):
    row = scores[(scores["dataset"] == dataset) & (scores["method"] == method) & (scores["metric"] == metric)]
    assert len(row) == 1, (dataset, method, metric)
    return row.iloc[0]


def test_metrics_are_scaled_between_the_better_controls_and_clipped(summary):
    _, scores = summary
    assert list(scores.columns) == sm.SCORE_COLUMNS
    # NMI on d1: negative = the better of random (0.1) and shuffled (0.2); positive = labels (0.9); A = mean of seeds
    assert scaled(scores, "d1", "A", "NMI")["raw"] == pytest.approx(0.55)
    assert scaled(scores, "d1", "A", "NMI")["scaled"] == pytest.approx((0.55 - 0.2) / 0.7)
    assert scaled(scores, "d1", "B", "NMI")["scaled"] == 1.0  # 1.14 clipped
    assert scaled(scores, "d1", "ctrl_random", "NMI")["scaled"] == 0.0  # below the better negative: clipped
    # DAV (lower is better): negative = min(3, 2) = 2, positive = 0.5
    assert scaled(scores, "d1", "A", "DAV")["scaled"] == pytest.approx((1.25 - 2.0) / (0.5 - 2.0))
    assert scaled(scores, "d1", "B", "DAV")["scaled"] == 0.0
    assert np.isnan(scaled(scores, "d1", "C", "DAV")["scaled"])  # a NaN metric of a finished run stays NaN
    # umap: positive = the better of pca (0.6) and labels (0.3); negative = random alone (0.2), since the shuffled
    # PCA scores like PCA on metrics that cannot see a permutation of the cells
    assert scaled(scores, "d1", "B", "umap_qlocal")["scaled"] == pytest.approx(0.75)
    assert scaled(scores, "d1", "ctrl_shuffled", "umap_qlocal")["scaled"] == pytest.approx(0.75)
    # d2: controls equal on umap_qlocal -> no scale for anyone
    assert scores[(scores["dataset"] == "d2") & (scores["metric"] == "umap_qlocal")]["scaled"].isna().all()
    # batch: pca (0.2) is the negative, labels (0.8) the positive; random's perfect mixing is not the scale
    assert scaled(scores, "d2", "A", "iLISI")["scaled"] == pytest.approx(1.0)
    assert scaled(scores, "d2", "B", "iLISI")["scaled"] == 0.0
    # the batch category exists only where the dataset has a batch metric
    assert "batch" not in set(scores.loc[scores["dataset"] == "d1", "category"])


def test_a_failed_run_scores_as_the_negative_control(summary):
    _, scores = summary
    failed = scores[(scores["dataset"] == "d2") & (scores["method"] == "C")]
    metric_rows = failed[~failed["metric"].isin(["category", "overall"])]
    assert metric_rows["raw"].isna().all()
    scalable = metric_rows["metric"] != "umap_qlocal"
    assert (metric_rows.loc[scalable, "scaled"] == 0).all() and metric_rows.loc[~scalable, "scaled"].isna().all()
    assert scaled(scores, "d2", "C", "overall")["scaled"] == 0.0


def test_category_and_overall_scores_by_hand(summary):
    _, scores = summary

    def category(dataset, method, slug):
        rows = scores[(scores["dataset"] == dataset) & (scores["method"] == method) & (scores["category"] == slug)
                      & (scores["metric"] == "category")]
        return rows["scaled"].iloc[0]

    assert category("d1", "A", "clustering") == pytest.approx(0.5)
    assert category("d1", "C", "clustering") == pytest.approx(0.0)  # mean over NMI only (DAV NaN)
    assert np.isnan(category("d2", "A", "umap"))
    # weighted: clustering 2, umap 1, batch 1; a NaN category drops out of both sums
    hand = {("d1", "A"): (2 * 0.5 + 0.5) / 3, ("d1", "B"): (2 * 0.5 + 0.75) / 3, ("d1", "C"): (0 + 1) / 3,
            ("d2", "A"): (2 * 0.5 + 1.0) / 3, ("d2", "B"): (2 * 1.0 + 0.0) / 3, ("d2", "C"): 0.0}
    for (dataset, method), value in hand.items():
        assert scaled(scores, dataset, method, "overall")["scaled"] == pytest.approx(value), (dataset, method)


def test_ranks_per_dataset_with_a_tie_and_the_leaderboard(summary):
    board, scores = summary
    ranks = sm.dataset_ranks(scores)
    assert sorted(ranks.columns) == ["A", "B", "C"]  # controls are not ranked
    assert ranks.loc["d1"].to_dict() == {"A": 2.0, "B": 1.0, "C": 3.0}
    assert ranks.loc["d2"].to_dict() == {"A": 1.5, "B": 1.5, "C": 3.0}  # A and B tie at 2/3: average rank
    assert list(board.columns) == ["method", "family", "control", "n_datasets", "score_clustering", "score_umap",
                                   "score_batch", "overall", "mean_rank", "rank"]
    rows = board.set_index("method")
    assert list(board["method"][:3]) == ["B", "A", "C"] and rows.loc[["B", "A", "C"], "rank"].tolist() == [1, 2, 3]
    assert rows.loc["A", "mean_rank"] == pytest.approx(1.75) and rows.loc["B", "mean_rank"] == pytest.approx(1.25)
    assert rows.loc["C", "n_datasets"] == 2 and rows.loc["C", "mean_rank"] == 3.0
    # category columns: means over datasets; overall: their weighted mean
    assert rows.loc["A", ["score_clustering", "score_umap", "score_batch"]].tolist() == pytest.approx([0.5, 0.5, 1.0])
    assert rows.loc["A", "overall"] == pytest.approx((2 * 0.5 + 0.5 + 1.0) / 4)
    assert rows.loc["B", "overall"] == pytest.approx((2 * 0.75 + 0.75 + 0.0) / 4)
    assert rows.loc["C", "overall"] == pytest.approx((0 + 1.0 + 0) / 4)
    # controls: rows of their own, marked, unranked, after the methods (positives first)
    controls = board.iloc[3:]
    assert set(controls["method"]) == set(CONTROLS) and controls["rank"].isna().all()
    assert controls["mean_rank"].isna().all() and (controls["family"] == "control").all()
    assert rows.loc["ctrl_labels", "control"] == "positive" and rows.loc["ctrl_random", "control"] == "negative"
    assert list(controls["control"]) == ["positive", "positive", "negative", "negative"]
    assert rows.loc[["A", "B", "C"], "control"].eq("none").all()


def test_bad_weights_are_named():
    with pytest.raises(InputError, match="'bogus' is not a metric category"):
        sm.check_weights({"bogus": 1})
    with pytest.raises(InputError, match="non-negative"):
        sm.check_weights({"umap": -1})


def test_critical_difference_against_demsar_table():
    # Demšar (2006), Table 5(a): q_0.05 = 2.569 for k = 4, 3.164 for k = 10 (studentized range / sqrt 2)
    assert sm.nemenyi_q(4) == pytest.approx(2.569, abs=5e-4)
    assert sm.nemenyi_q(10) == pytest.approx(3.164, abs=5e-4)
    assert sm.critical_difference(4, 14) == pytest.approx(2.569 * math.sqrt(4 * 5 / (6 * 14)), rel=2e-4)
    assert math.isnan(sm.critical_difference(1, 5))


def test_cd_analysis_with_few_datasets_says_so(summary):
    _, scores = summary
    result = sm.cd_analysis(scores)
    assert result["n"] == 2 and result["k"] == 3
    assert result["cd"] == pytest.approx(sm.nemenyi_q(3) * math.sqrt(3 * 4 / 12))
    assert "too few" in result["note"]
    one = sm.cd_analysis(scores[scores["dataset"] == "d1"])
    assert one["n"] == 1 and math.isnan(one["cd"]) and "no Friedman test" in one["note"]
    assert list(one["mean_ranks"].index) == ["B", "A", "C"]


def test_cliques_group_methods_within_the_cd():
    ranks = pd.Series({"a": 1.0, "b": 1.5, "c": 2.6, "d": 4.0})
    assert sm.cliques(ranks, 1.2) == [["a", "b"], ["b", "c"]]
    assert sm.cliques(ranks, float("nan")) == []


def test_controls_never_join_a_comparison():
    from livaebench.comparisons import check_comparisons, paper_comparisons

    for spec in paper_comparisons().values():
        assert not set(CONTROLS) & {spec["reference"], *spec["baselines"], *(spec.get("sweep") or {})}
    for spec in ({"reference": "ctrl_pca", "baselines": ["pca"]}, {"reference": "livae", "baselines": ["ctrl_random"]}):
        with pytest.raises(InputError, match="is a control"):
            check_comparisons({"mine": spec})


def test_summary_figures_render(summary, tmp_path):
    from livaebench.summary_plots import cd_diagram, summary_figure

    board, scores = summary
    summary_figure(board, scores, out_png=tmp_path / "s.png", title="rna")
    cd_diagram(sm.cd_analysis(scores), out_png=tmp_path / "cd.png", title="rna")
    for name in ("s", "cd"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"


def test_stats_compare_refuses_a_control():
    from livaebench.stats import compare

    with pytest.raises(InputError, match="'ctrl_shuffled' is a control method"):
        compare(small_table(), comparison="x", reference="A", baselines=["B", "ctrl_shuffled"], metrics_list=["NMI"])


def test_controls_in_the_plan_and_the_switch(tmp_path):
    """Planned with the run (a dataset without labels gets no label control); `summary.controls: false` drops the
    controls and the summary."""
    from workflow_helpers import shipped_rows, snakemake, write_config, write_registry

    rows = shipped_rows(300)
    rows[1]["label_key"] = ""  # cellbench without labels
    registry = write_registry(tmp_path / "datasets.tsv", rows)
    on = snakemake(tmp_path, write_config(tmp_path, datasets=str(registry), methods=["pca"], paper_comparisons=[]),
                   "-n", "--forceall", "results/summary/rna.tsv")
    assert on.returncode == 0, on.stderr[-2000:]
    assert "rule summary_table:" in on.stdout
    for dataset in ("pancreas", "cellbench"):
        for control in CONTROLS:
            planned = f"results/metrics/{dataset}/{control}/seed0.tsv" in on.stdout
            assert planned == (dataset == "pancreas" or control != "ctrl_labels"), (dataset, control)
    off = write_config(tmp_path, datasets=str(registry), methods=["pca"], paper_comparisons=[],
                       summary={"controls": False})
    plan = snakemake(tmp_path, off, "-n", "--forceall")
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "ctrl_" not in plan.stdout and "results/summary/" not in plan.stdout


def test_controls_are_what_they_claim(tiny_rna, tmp_path):
    """Seeded and reproducible; the shuffled control is the PCA scores permuted; the label control separates the
    labels; the full PCA has 50 components; no labels: a one-line error."""
    from sklearn.decomposition import PCA

    from livaebench.methods import fit_method

    def fit(name, adata=tiny_rna, seed=0):
        return fit_method(name, adata, dataset="pancreas", seed=seed, outdir=tmp_path / name,
                          global_params={"latent_dim": 10})["X_latent"]

    for name in CONTROLS:
        assert np.array_equal(fit(name), fit(name))
        if name != "ctrl_pca":  # the others draw from the seed
            assert not np.array_equal(fit(name), fit(name, seed=1))
    assert fit("ctrl_random").shape == (300, 10) and fit("ctrl_pca").shape == (300, 50)
    pca = PCA(10, svd_solver="arpack", random_state=0).fit_transform(np.asarray(tiny_rna.X, dtype=np.float32))
    shuffled = fit("ctrl_shuffled")
    order = np.random.default_rng(0).permutation(300)
    np.testing.assert_allclose(np.abs(shuffled), np.abs(pca[order]), atol=1e-3)  # signs of components aside
    labels = fit("ctrl_labels")
    codes = tiny_rna.obs["clusters"].astype("category").cat.codes.to_numpy()
    assert (labels[:, :codes.max() + 1].argmax(axis=1) == codes).all()
    unlabelled = tiny_rna.copy()
    unlabelled.uns["livaebench"] = {**tiny_rna.uns["livaebench"], "label_key": ""}
    with pytest.raises(InputError, match="has no label column"):
        fit("ctrl_labels", unlabelled)
