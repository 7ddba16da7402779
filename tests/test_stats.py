"""Statistics of issue 4: the decision path of docs/methods.md §4.2 and its numbers against scipy/statsmodels called
directly on synthetic metric tables whose answer is known by construction."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.anova import AnovaRM
from statsmodels.stats.libqsturng import psturng
from statsmodels.stats.multicomp import pairwise_tukeyhsd

from livaebench import stats as st
from livaebench.results import METRIC_COLUMNS, read_metrics, write_tsv_atomic
from livaebench.errors import InputError


def long_table(wide: dict[str, np.ndarray], metric: str = "NMI", seeds: int = 1, seed_noise: float = 0.0,
               rng=None) -> pd.DataFrame:
    """Long metric table from method → per-dataset values; seeds scatter symmetrically around them."""
    rows = []
    for method, values in wide.items():
        for d, v in enumerate(values):
            offsets = np.linspace(-seed_noise, seed_noise, seeds) if seeds > 1 else [0.0]
            for s, off in enumerate(offsets):
                rows.append((f"ds{d:02d}", method, s, metric, v + off))
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def normal_design(n=12, seed=0):
    """Dataset effects much larger than method effects, normal noise: the paired parametric case."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.3, 0.7, n)
    return {"livae": base + 0.05 + rng.normal(0, 0.02, n),
            "vae": base + rng.normal(0, 0.02, n),
            "pca": base - 0.02 + rng.normal(0, 0.02, n)}


def skewed_design(n=10, seed=0):
    """Heavy right-skewed differences (exponential, one extreme value): Shapiro rejects."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.3, 0.7, n)
    jump = rng.exponential(0.02, n)
    jump[0] = 0.8
    return {"livae": base + jump, "vae": base + rng.exponential(0.01, n) * 0.1, "pca": base - rng.exponential(0.03, n)}


def diffs(wide, ref, b):
    return np.asarray(wide[ref]) - np.asarray(wide[b])


def test_columns_are_the_output_contract():
    table = st.compare(long_table(normal_design()), comparison="c", reference="livae", baselines=["vae", "pca"],
                       metrics_list=["NMI"])
    assert list(table.columns) == ["comparison", "metric", "reference", "baseline", "delta", "p_value", "test",
                                   "stars", "n_datasets", "replicate"]
    assert list(table["baseline"]) == ["vae", "pca"] and set(table["comparison"]) == {"c"}


def test_normal_data_takes_rm_anova_tukey_and_matches_statsmodels():
    wide = normal_design()
    for b in ("vae", "pca"):  # the construction is normal: Shapiro (independently) does not reject
        assert sps.shapiro(diffs(wide, "livae", b)).pvalue >= 0.05
    table = st.compare(long_table(wide), comparison="c", reference="livae", baselines=["vae", "pca"],
                       metrics_list=["NMI"])
    assert set(table["test"]) == {"rm-anova+tukey"}

    # Omnibus and error term from statsmodels AnovaRM itself.
    long = pd.DataFrame([(f"d{i}", m, v) for m, vals in wide.items() for i, v in enumerate(vals)],
                        columns=["dataset", "method", "value"])
    anova = AnovaRM(long, "value", "dataset", within=["method"]).fit().anova_table.iloc[0]
    decision = st.decisions(table).iloc[0]
    assert decision["omnibus_p"] == pytest.approx(anova["Pr > F"], rel=1e-9)
    y = np.column_stack([wide[m] for m in ("livae", "vae", "pca")])
    n, k = y.shape
    ms_method = n * ((y.mean(0) - y.mean()) ** 2).sum() / (k - 1)
    ms_error = ms_method / anova["F Value"]
    for row in table.itertuples():
        delta = diffs(wide, "livae", row.baseline).mean()
        assert row.delta == pytest.approx(delta, rel=1e-12)
        q = abs(delta) / np.sqrt(ms_error / n)
        # statsmodels' independent studentized-range implementation (table interpolation: ~1e-3).
        assert row.p_value == pytest.approx(float(psturng(q, k, (n - 1) * (k - 1))), abs=2e-3)
        assert row.stars == st.stars(row.p_value)
        assert row.n_datasets == 12


def test_rm_tukey_with_two_methods_equals_paired_t_test():
    wide = normal_design()
    table = st.compare(long_table({"livae": wide["livae"], "vae": wide["vae"]}), comparison="c",
                       reference="livae", baselines=["vae"], metrics_list=["NMI"], test="parametric")
    expected = sps.ttest_rel(wide["livae"], wide["vae"]).pvalue
    assert table["p_value"].iloc[0] == pytest.approx(expected, rel=1e-6)


def test_independent_tukey_equals_pairwise_tukeyhsd():
    wide = normal_design(n=8, seed=3)
    table = st.compare(long_table(wide), comparison="c", reference="livae", baselines=["vae", "pca"],
                       metrics_list=["NMI"], test="parametric", tukey="independent")
    values = np.concatenate([wide[m] for m in ("livae", "vae", "pca")])
    groups = np.repeat(["livae", "vae", "pca"], 8)
    res = pairwise_tukeyhsd(values, groups)
    table_df = pd.DataFrame(res.summary().data[1:], columns=res.summary().data[0])
    for row in table.itertuples():
        hit = table_df[(table_df.group1.isin(["livae", row.baseline])) & (table_df.group2.isin(["livae", row.baseline]))]
        assert row.test == "rm-anova+tukey(independent)"
        # the summary rounds to 4 decimals
        assert row.p_value == pytest.approx(float(hit["p-adj"].iloc[0]), abs=1e-4)


def test_skewed_data_takes_friedman_and_bonferroni_wilcoxon():
    wide = skewed_design()
    assert sps.shapiro(diffs(wide, "livae", "vae")).pvalue < 0.05
    table = st.compare(long_table(wide), comparison="c", reference="livae", baselines=["vae", "pca"],
                       metrics_list=["NMI"])
    assert set(table["test"]) == {"friedman+wilcoxon-bonferroni"}
    per_baseline = st.compare(long_table(wide), comparison="c", reference="livae", baselines=["vae", "pca"],
                              metrics_list=["NMI"], correction="baselines")
    for row, row_m in zip(table.itertuples(), per_baseline.itertuples()):
        raw = sps.wilcoxon(wide["livae"], wide[row.baseline]).pvalue
        assert row.p_value == pytest.approx(min(1.0, 3 * raw), rel=1e-12)  # k = 3 methods: 3 pairs
        assert row_m.p_value == pytest.approx(min(1.0, 2 * raw), rel=1e-12)  # m = 2 baselines
    decision = st.decisions(table).iloc[0]
    friedman = sps.friedmanchisquare(wide["livae"], wide["vae"], wide["pca"])
    assert decision["omnibus_p"] == pytest.approx(friedman.pvalue, rel=1e-12)
    assert decision["shapiro_min_p"] < 0.05


def test_bonferroni_is_capped_at_one():
    rng = np.random.default_rng(5)
    base = rng.uniform(0, 1, 8)
    noise = rng.exponential(0.05, (4, 8)) * rng.choice([-1, 1], (4, 8))
    wide = {"livae": base, **{f"b{i}": base + noise[i] for i in range(4)}}
    table = st.compare(long_table(wide), comparison="c", reference="livae", baselines=[f"b{i}" for i in range(4)],
                       metrics_list=["NMI"], test="nonparametric")
    for row in table.itertuples():
        raw = sps.wilcoxon(wide["livae"], wide[row.baseline]).pvalue
        assert row.p_value == pytest.approx(min(1.0, 10 * raw))  # k = 5 methods: 10 pairs
    assert (table["p_value"] <= 1.0).all()


@pytest.mark.parametrize("n_baselines, alpha", [(7, 0.0018), (8, 0.0014), (3, 0.0083)])
def test_pairs_correction_reproduces_the_papers_alpha(n_baselines, alpha):
    """Fig. 3 (7 classical), Fig. 4 (8 deep) and Fig. 5/6 (3 baselines): α = 0.05 / (k(k−1)/2)."""
    assert 0.05 / st.bonferroni_factor(n_baselines, "pairs") == pytest.approx(alpha, abs=5e-5)
    assert st.bonferroni_factor(n_baselines, "baselines") == n_baselines


def test_two_methods_non_normal_use_wilcoxon_directly():
    wide = skewed_design()
    table = st.compare(long_table({"livae": wide["livae"], "vae": wide["vae"]}), comparison="c",
                       reference="livae", baselines=["vae"], metrics_list=["NMI"])
    assert table["test"].iloc[0] == "wilcoxon"
    assert table["p_value"].iloc[0] == pytest.approx(sps.wilcoxon(wide["livae"], wide["vae"]).pvalue)


def test_too_few_datasets_say_so_instead_of_a_p_value():
    wide = {m: v[:2] for m, v in normal_design().items()}
    table = st.compare(long_table(wide), comparison="c", reference="livae", baselines=["vae", "pca"],
                       metrics_list=["NMI", "iLISI"])
    assert table["p_value"].isna().all()
    assert (table["stars"] == "").all()
    nmi = table[table.metric == "NMI"]
    assert set(nmi["test"]) == {"insufficient: n_datasets=2 (need >=3)"}
    assert nmi["n_datasets"].tolist() == [2, 2]
    # Δ is a plain mean and is still reported
    assert nmi["delta"].iloc[0] == pytest.approx(diffs(wide, "livae", "vae").mean())
    ilisi = table[table.metric == "iLISI"]  # absent metric: zero datasets, no Δ
    assert set(ilisi["test"]) == {"insufficient: n_datasets=0 (need >=3)"} and ilisi["delta"].isna().all()


def test_wilcoxon_runs_at_small_n_with_its_floor():
    # 4 datasets: a real signed-rank test (exact), Bonferroni over the 3 pairs of 3 methods, never below
    # the exact test's floor 3 * 2^(1-4)
    wide = {m: v[:4] for m, v in skewed_design().items()}
    table = st.compare(long_table(wide), comparison="c", reference="livae", baselines=["vae", "pca"],
                       metrics_list=["NMI"], test="nonparametric")
    assert (table["test"] == "friedman+wilcoxon-bonferroni").all()
    for _, row in table.iterrows():
        expected = min(1.0, 3 * sps.wilcoxon(wide["livae"], wide[row["baseline"]]).pvalue)
        assert row["p_value"] == pytest.approx(expected)
        assert row["p_value"] >= 3 * 2.0 ** (1 - 4) - 1e-12
    # identical methods: every difference is zero
    same = skewed_design()
    same["vae"] = same["livae"].copy()
    table = st.compare(long_table(same), comparison="c", reference="livae", baselines=["vae", "pca"],
                       metrics_list=["NMI"], test="nonparametric")
    row = table.set_index("baseline").loc["vae"]
    assert row["test"].startswith("insufficient: 0 non-zero") and np.isnan(row["p_value"])
    assert table.set_index("baseline").loc["pca", "test"] == "friedman+wilcoxon-bonferroni"


def test_seeds_are_averaged_before_testing():
    wide = normal_design()
    single = st.compare(long_table(wide), comparison="c", reference="livae", baselines=["vae", "pca"],
                        metrics_list=["NMI"])
    seeded = st.compare(long_table(wide, seeds=3, seed_noise=0.1), comparison="c", reference="livae",
                        baselines=["vae", "pca"], metrics_list=["NMI"])
    pd.testing.assert_frame_equal(single, seeded, check_exact=False, rtol=1e-9)
    assert (seeded["n_datasets"] == 12).all()  # seeds never inflate n


def test_pairing_drops_datasets_missing_for_any_method_and_failed_rows():
    wide = normal_design()
    table = long_table(wide)
    table["status"] = "ok"
    table.loc[(table.method == "pca") & (table.dataset == "ds03"), "value"] = np.nan
    table.loc[(table.method == "vae") & (table.dataset == "ds07"), "status"] = "failed: out of memory"
    table.loc[(table.method == "livae") & (table.dataset == "ds09"), "value"] = np.inf
    result = st.compare(table, comparison="c", reference="livae", baselines=["vae", "pca"], metrics_list=["NMI"])
    keep = [i for i in range(12) if i not in (3, 7, 9)]
    assert (result["n_datasets"] == 9).all()
    assert result["delta"].iloc[0] == pytest.approx(diffs(wide, "livae", "vae")[keep].mean())
    assert st.decisions(result).iloc[0]["datasets"] == ",".join(f"ds{i:02d}" for i in keep)


def test_dataset_filter_restricts_the_family():
    wide = normal_design()
    result = st.compare(long_table(wide), comparison="c", reference="livae", baselines=["vae"], metrics_list=["NMI"],
                        datasets=["ds00", "ds01", "ds02", "ds03", "ds04"], test="none")
    assert result["n_datasets"].iloc[0] == 5
    assert result["delta"].iloc[0] == pytest.approx(diffs(wide, "livae", "vae")[:5].mean())


def test_test_none_reports_delta_only():
    wide = skewed_design()
    result = st.compare(long_table(wide), comparison="ablation", reference="livae", baselines=["vae", "pca"],
                        metrics_list=["NMI"], test="none")
    assert (result["test"] == "none").all() and result["p_value"].isna().all() and (result["stars"] == "").all()
    for row in result.itertuples():
        assert row.delta == pytest.approx(diffs(wide, "livae", row.baseline).mean())


@pytest.mark.parametrize("p, mark", [(0.0004, "***"), (0.001, "**"), (0.0099, "**"), (0.01, "*"), (0.049, "*"),
                                     (0.05, "ns"), (0.7, "ns"), (np.nan, "")])
def test_stars(p, mark):
    assert st.stars(p) == mark


def test_bad_input_is_an_input_error():
    table = long_table(normal_design())
    with pytest.raises(InputError, match="scvi"):
        st.compare(table, comparison="c", reference="livae", baselines=["scvi"], metrics_list=["NMI"])
    with pytest.raises(InputError, match="unknown test"):
        st.compare(table, comparison="c", reference="livae", baselines=["vae"], metrics_list=["NMI"], test="t")
    with pytest.raises(InputError, match="also a baseline"):
        st.compare(table, comparison="c", reference="livae", baselines=["livae"], metrics_list=["NMI"])
    with pytest.raises(InputError, match="lacks column"):
        st.compare(table.drop(columns="seed"), comparison="c", reference="livae", baselines=["vae"],
                   metrics_list=["NMI"])


def test_read_and_write_round_trip(tmp_path):
    table = long_table(normal_design())
    table.to_csv(tmp_path / "all.tsv", sep="\t", index=False)
    result = st.compare(read_metrics(tmp_path / "all.tsv"), comparison="c", reference="livae",
                        baselines=["vae", "pca"], metrics_list=["NMI", "ARI"])
    write_tsv_atomic(result, tmp_path / "stats" / "c.tsv")
    back = pd.read_csv(tmp_path / "stats" / "c.tsv", sep="\t", keep_default_na=True)
    assert list(back.columns) == st.STATS_COLUMNS
    assert back["p_value"].isna().sum() == 2  # ARI absent: NA written, read back as missing
    np.testing.assert_allclose(back["p_value"].iloc[:2], result["p_value"].iloc[:2], rtol=1e-12)
    with pytest.raises(InputError, match="not found"):
        read_metrics(tmp_path / "missing.tsv")


# ------------------------------------------------------------------------------------------------
# Replicate unit of the multi-batch family (paper Fig. 11 / Table 10): dataset × subsample size

SIZES = (2000, 4000, 6000)
# iLISI_n{s} of two datasets at three subsample sizes: six conditions, every difference non-zero and distinct.
SUBSAMPLE_ILISI = {
    "livae": [[0.61, 0.64, 0.70], [0.42, 0.47, 0.55]],
    "scvi": [[0.58, 0.66, 0.62], [0.40, 0.39, 0.49]],
    "scgcc": [[0.30, 0.35, 0.52], [0.41, 0.25, 0.20]],
}


def subsample_table(methods=("livae", "scvi"), seeds=2) -> pd.DataFrame:
    """Per-subsample iLISI (seeds scattered ±0.01 around the values above) plus per-dataset metrics."""
    rows = []
    for method in methods:
        for d, per_size in enumerate(SUBSAMPLE_ILISI[method]):
            for s in range(seeds):
                off = 0.01 * (2 * s - 1) if seeds > 1 else 0.0
                rows += [(f"ds{d}", method, s, f"iLISI_n{size}", v + off) for size, v in zip(SIZES, per_size)]
                rows += [(f"ds{d}", method, s, "iLISI", np.mean(per_size) + off),
                         (f"ds{d}", method, s, "KK_NMI", 0.5 + 0.1 * d + off)]
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def six_pairs(reference, baseline):
    return (np.ravel(SUBSAMPLE_ILISI[reference]), np.ravel(SUBSAMPLE_ILISI[baseline]))


def fig11_metrics():
    from livaebench.comparisons import paper_comparisons

    return paper_comparisons()["fig11_multibatch"]["metrics"]


@pytest.mark.parametrize("test", ["nonparametric", "parametric"])
def test_pooled_ilisi_replicates_are_dataset_by_subsample_size(test):
    table = st.compare(subsample_table(), comparison="fig11", reference="livae", baselines=["scvi"],
                       metrics_list=fig11_metrics(), test=test)
    rows = table.set_index("metric")
    # the Fig. 11 family's table: pooled iLISI, iLISI per subsample size, iLISI on all cells, pipelines
    pipelines = [f"{p}_{s}" for p in ("KK", "KL", "LK", "LL") for s in ("NMI", "ARI")]
    assert list(rows.index) == ["iLISI_by_subsample", "iLISI_n2000", "iLISI_n4000", "iLISI_n6000", "iLISI",
                                *pipelines]  # only KK_NMI has values here; the others have rows with n = 0
    pooled = rows.loc["iLISI_by_subsample"]
    assert pooled.n_datasets == 6 and pooled.replicate == "dataset×subsample"  # 2 datasets × 3 sizes
    ref, base = six_pairs("livae", "scvi")  # seeds average to the hand values within each condition
    assert pooled.delta == pytest.approx(np.mean(ref - base))
    decision = next(d for d in table.attrs["decisions"] if d["metric"] == "iLISI_by_subsample")
    assert decision["datasets"] == [f"ds{d}@n{s}" for d in (0, 1) for s in SIZES]
    if test == "nonparametric":  # a single baseline: the Wilcoxon signed-rank test, no correction
        expected = sps.wilcoxon(ref, base)
        assert pooled.test == "wilcoxon"
        assert decision["posthoc_statistic"]["scvi"] == pytest.approx(expected.statistic)
    else:  # two methods: the repeated-measures Tukey p is the paired t-test p
        expected = sps.ttest_rel(ref, base)
        assert pooled.test == "rm-anova+tukey"
        # q of the studentized range with two means is sqrt(2) |t|
        assert decision["posthoc_statistic"]["scvi"] == pytest.approx(np.sqrt(2) * abs(expected.statistic))
    assert pooled.p_value == pytest.approx(expected.pvalue, rel=1e-6)
    # metrics that are not computed per subsample keep the dataset as their replicate
    for metric in ["iLISI_n2000", "iLISI_n4000", "iLISI_n6000", "iLISI", "KK_NMI"]:
        assert rows.loc[metric, "n_datasets"] == 2 and rows.loc[metric, "replicate"] == "dataset"
        assert rows.loc[metric, "test"].startswith("insufficient: n_datasets=2")
    assert rows.loc["iLISI_n4000", "delta"] == pytest.approx(np.mean([0.64 - 0.66, 0.47 - 0.39]))


def test_pooled_ilisi_with_two_baselines_runs_friedman_on_the_conditions():
    table = st.compare(subsample_table(("livae", "scvi", "scgcc")), comparison="fig11", reference="livae",
                       baselines=["scvi", "scgcc"], metrics_list=["iLISI_by_subsample"], test="nonparametric")
    assert (table["n_datasets"] == 6).all() and (table["test"] == "friedman+wilcoxon-bonferroni").all()
    decision = table.attrs["decisions"][0]
    blocks = [np.ravel(SUBSAMPLE_ILISI[m]) for m in ("livae", "scvi", "scgcc")]
    assert decision["omnibus_statistic"] == pytest.approx(sps.friedmanchisquare(*blocks).statistic)
    for b in ("scvi", "scgcc"):  # Bonferroni over the 3 pairs of the 3 methods
        p = sps.wilcoxon(*six_pairs("livae", b)).pvalue
        assert table.set_index("baseline").loc[b, "p_value"] == pytest.approx(min(1.0, 3 * p))


def test_a_condition_missing_for_one_method_leaves_the_block():
    metrics = subsample_table()
    metrics = metrics[~((metrics["method"] == "scvi") & (metrics["dataset"] == "ds1")
                        & (metrics["metric"] == "iLISI_n6000"))]
    table = st.compare(metrics, comparison="c", reference="livae", baselines=["scvi"],
                       metrics_list=["iLISI_by_subsample"], datasets=["ds0", "ds1"])
    assert table["n_datasets"].item() == 5
    only_ds0 = st.compare(metrics, comparison="c", reference="livae", baselines=["scvi"],
                          metrics_list=["iLISI_by_subsample"], datasets=["ds0"])
    assert only_ds0["n_datasets"].item() == 3  # the family's datasets restrict the conditions


def test_expand_metrics_orders_subsample_sizes_numerically():
    available = ["iLISI", "iLISI_n8000", "iLISI_n250", "iLISI_n2000", "iLISI_raw", "NMI"]
    assert st.expand_metrics(["iLISI_by_subsample", "iLISI_n*", "NMI"], available) == [
        "iLISI_by_subsample", "iLISI_n250", "iLISI_n2000", "iLISI_n8000", "NMI"]
    assert st.expand_metrics(["iLISI_n*"], ["NMI"]) == []
