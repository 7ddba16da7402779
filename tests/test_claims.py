"""The paper's claims (livaebench.claims): every claim names a paper family and panel metrics; the verdict rule on
hand-made statistics tables (each verdict, insufficient rows, test none, DAV read lower-is-better, the Wilcoxon
floor, the rank claims); and the exporter of a finished run into docs/results (livaebench.study_docs) on a tiny
fake results tree. No training."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from livaebench import claims as cl
from livaebench import study_docs as sd
from livaebench.comparisons import paper_comparisons
from livaebench.metrics.panel import REQUIREMENTS
from livaebench.panels import ILISI_POOLED
from livaebench.results import write_tsv_atomic
from livaebench.stats import DEFAULT_METRICS, STATS_COLUMNS
from livaebench.summary import FEW_DATASETS, SCORE_COLUMNS

TUKEY, WILCOXON = "rm-anova+tukey", "friedman+wilcoxon-bonferroni"


def stats_table(rows, family="fam", reference="livae") -> pd.DataFrame:
    """rows: (metric, baseline, delta, p, test, n)."""
    out = [{"comparison": family, "metric": m, "reference": reference, "baseline": b, "delta": d, "p_value": p,
            "test": t, "stars": "", "n_datasets": n, "replicate": "dataset"} for m, b, d, p, t, n in rows]
    return pd.DataFrame(out, columns=STATS_COLUMNS)


def claim(direction="better", metrics=("NMI",), baselines=(), families=("fam",)) -> cl.Claim:
    return cl.Claim("c", "a claim", "§0", direction, tuple(families), tuple(metrics), tuple(baselines))


def verdict(rows, **kwargs) -> dict:
    return cl.evaluate_claim(claim(**kwargs), {"fam": stats_table(rows)})


# ---------------------------------------------------------------------------------------------------------
# The claims as data


def test_every_claim_names_paper_families_baselines_and_panel_metrics():
    paper = paper_comparisons()
    panel = set(REQUIREMENTS) | {ILISI_POOLED}
    assert len({c.id for c in cl.CLAIMS}) == len(cl.CLAIMS)
    for c in cl.CLAIMS:
        if c.direction == "top":
            assert c.modality in ("rna", "atac") and not c.families, c.id
            continue
        assert c.families and c.metrics, c.id
        assert set(c.families) <= set(paper), f"{c.id}: {set(c.families) - set(paper)} not paper families"
        # the baselines a claim names are the families' (each family of the claim contributes at least one)
        assert set(c.baselines) <= {b for f in c.families for b in paper[f]["baselines"]}, c.id
        for family in c.families:
            spec = paper[family]
            compared = set(spec.get("metrics") or DEFAULT_METRICS)
            assert not c.baselines or set(c.baselines) & set(spec["baselines"]), f"{c.id}: none in {family}"
            for metric in c.metrics:
                assert metric in panel, f"{c.id}: '{metric}' is not a metric of the panel"
                assert metric in compared, f"{c.id}: {family} does not compare '{metric}'"
    # the headline families of the issue each have at least one claim
    named = {f for c in cl.CLAIMS for f in c.families}
    assert set(paper) - named == set(), set(paper) - named
    assert {c.modality for c in cl.CLAIMS if c.direction == "top"} == {"rna", "atac"}


# ---------------------------------------------------------------------------------------------------------
# The verdict rule


def test_holds_when_at_least_half_the_tested_rows_are_significant_for_the_claim():
    out = verdict([("NMI", "a", 0.10, 0.01, TUKEY, 6), ("NMI", "b", 0.05, 0.04, TUKEY, 6),
                   ("NMI", "c", 0.02, 0.30, TUKEY, 6), ("NMI", "d", -0.01, 0.90, TUKEY, 6)])
    assert out["verdict"] == cl.HOLDS
    assert (out["n_pairs"], out["n_tested"], out["n_for"], out["n_against"]) == (4, 4, 3, 1)
    assert out["n_significant_for"] == 2 and out["n_significant_against"] == 0
    assert out["share_for"] == pytest.approx(0.75)
    assert out["mean_delta"] == pytest.approx((0.10 + 0.05 + 0.02 - 0.01) / 4)
    assert out["min_p"] == pytest.approx(0.01) and out["median_p"] == pytest.approx((0.04 + 0.30) / 2)
    assert out["tests"] == f"{TUKEY} ×4" and out["n_datasets"] == "6"


def test_inconclusive_when_fewer_than_half_significant_and_none_against():
    out = verdict([("NMI", "a", 0.10, 0.01, TUKEY, 6), ("NMI", "b", 0.05, 0.20, TUKEY, 6),
                   ("NMI", "c", 0.02, 0.30, TUKEY, 6)])
    assert out["verdict"] == cl.INCONCLUSIVE and "1 of 3" in out["reason"]


def test_does_not_hold_when_one_row_is_significant_against():
    out = verdict([("NMI", "a", 0.10, 0.001, TUKEY, 6), ("NMI", "b", 0.05, 0.001, TUKEY, 6),
                   ("NMI", "c", -0.02, 0.03, TUKEY, 6)])
    assert out["verdict"] == cl.FAILS and out["n_significant_against"] == 1


def test_does_not_hold_when_nothing_is_significant_and_delta_mostly_against():
    out = verdict([("NMI", "a", -0.10, 0.2, TUKEY, 6), ("NMI", "b", -0.05, 0.5, TUKEY, 6),
                   ("NMI", "c", 0.02, 0.9, TUKEY, 6)])
    assert out["verdict"] == cl.FAILS and "mostly against" in out["reason"]
    # half against is not "mostly": inconclusive
    out = verdict([("NMI", "a", -0.10, 0.2, TUKEY, 6), ("NMI", "b", 0.05, 0.5, TUKEY, 6)])
    assert out["verdict"] == cl.INCONCLUSIVE


def test_insufficient_rows_are_not_testable_and_keep_the_delta_direction():
    reason = "insufficient: n_datasets=2 (need >=3)"
    out = verdict([("NMI", "a", 0.10, np.nan, reason, 2), ("NMI", "b", -0.05, np.nan, reason, 2),
                   ("NMI", "c", 0.02, np.nan, reason, 2)])
    assert out["verdict"] == cl.UNTESTABLE and out["n_tested"] == 0
    assert reason in out["reason"] and "in 2 of 3 rows" in out["reason"]
    assert out["n_for"] == 2 and np.isnan(out["min_p"])
    # an insufficient row beside tested ones is left out of the test counts, not of the Δ counts
    mixed = verdict([("NMI", "a", 0.10, 0.01, TUKEY, 6), ("NMI", "b", 0.05, np.nan, reason, 0)])
    assert mixed["verdict"] == cl.HOLDS and (mixed["n_pairs"], mixed["n_tested"]) == (2, 1)
    assert "1 of 2 rows without a test" in mixed["reason"]


def test_test_none_is_untested_by_design():
    out = verdict([("NMI", "a", 0.10, np.nan, "none", 6), ("ARI", "a", 0.20, np.nan, "none", 6)],
                  metrics=("NMI", "ARI"))
    assert out["verdict"] == cl.UNTESTABLE and "untested by design" in out["reason"]
    assert out["tests"] == "none" and out["n_for"] == 2 and "in 2 of 2 rows" in out["reason"]


def test_a_family_missing_from_the_run_is_not_testable():
    out = cl.evaluate_claim(claim(families=("absent",)), {"fam": stats_table([("NMI", "a", 0.1, 0.01, TUKEY, 6)])})
    assert out["verdict"] == cl.UNTESTABLE and "absent" in out["reason"] and out["checked_on"] == "—"


def test_dav_is_read_lower_is_better():
    # the reference has a higher (worse) Davies-Bouldin index, significantly
    rows = [("DAV", "a", 0.5, 0.001, TUKEY, 6), ("DAV", "b", 0.4, 0.002, TUKEY, 6)]
    better = verdict(rows, metrics=("DAV",))
    assert better["verdict"] == cl.FAILS and better["n_against"] == 2 and better["n_significant_against"] == 2
    worse = verdict(rows, metrics=("DAV",), direction="worse")  # a concession that the baselines are better
    assert worse["verdict"] == cl.HOLDS and worse["n_for"] == 2
    # a lower DAV is the reference's gain
    assert verdict([("DAV", "a", -0.5, 0.001, TUKEY, 6)], metrics=("DAV",))["verdict"] == cl.HOLDS
    # oriented Δ by metric turns DAV's sign; unbounded metrics stay out of the mean Δ
    assert better["delta_by_metric"] == "DAV -0.450" and np.isnan(better["mean_delta"])


def test_claims_are_cut_to_their_metrics_and_baselines():
    rows = [("NMI", "a", 0.1, 0.01, TUKEY, 6), ("NMI", "b", -0.1, 0.01, TUKEY, 6), ("ARI", "b", -0.1, 0.01, TUKEY, 6)]
    out = verdict(rows, baselines=("a",))
    assert out["verdict"] == cl.HOLDS and out["n_pairs"] == 1


def test_wilcoxon_floor_by_hand():
    # 8 methods (7 baselines), pairs correction: 28 tests; exact two-sided Wilcoxon at n = 6: 2 / 2^6
    assert cl.wilcoxon_floor({"test": WILCOXON, "n_datasets": 6}, 7) == pytest.approx(28 * 2 / 64)
    assert cl.wilcoxon_floor({"test": WILCOXON, "n_datasets": 6}, 7, "baselines") == pytest.approx(7 * 2 / 64)
    assert cl.wilcoxon_floor({"test": "wilcoxon", "n_datasets": 5}, 1) == pytest.approx(2 / 32)
    assert cl.wilcoxon_floor({"test": WILCOXON, "n_datasets": 3}, 7) == 1.0
    assert cl.wilcoxon_floor({"test": TUKEY, "n_datasets": 3}, 7) == 0.0


def test_an_underpowered_wilcoxon_is_named_and_a_comparable_claim_is_then_inconclusive():
    # 8 baselines on 6 datasets: no Bonferroni-corrected Wilcoxon p can fall below 36 * 2/64 > 0.05
    rows = [("NMI", b, 0.1, 1.0, WILCOXON, 6) for b in "abcdefgh"]
    better = verdict(rows)
    assert better["verdict"] == cl.INCONCLUSIVE and "no row could reach" in better["reason"]
    assert verdict(rows, direction="comparable")["verdict"] == cl.INCONCLUSIVE
    # with a test that could have found a difference, no significant difference: holds
    assert verdict([("NMI", "a", -0.01, 0.8, TUKEY, 6)], direction="comparable")["verdict"] == cl.HOLDS
    assert verdict([("NMI", "a", -0.2, 0.01, TUKEY, 6)], direction="comparable")["verdict"] == cl.FAILS
    # significantly better is still "not worse"
    assert verdict([("NMI", "a", 0.2, 0.01, TUKEY, 6)], direction="comparable")["verdict"] == cl.HOLDS


def scores_table(order_per_dataset: list[list[str]], families: dict[str, str]) -> pd.DataFrame:
    """Overall rows of a summary scores table: the first method of each list scores best on that dataset."""
    rows = []
    for i, order in enumerate(order_per_dataset):
        for rank, method in enumerate(order):
            rows.append({"dataset": f"d{i}", "method": method, "family": families[method], "control": "none",
                         "category": "overall", "metric": "overall", "raw": np.nan, "scaled": 1.0 - rank / 10})
        rows.append({"dataset": f"d{i}", "method": "ctrl_random", "family": "control", "control": "negative",
                     "category": "overall", "metric": "overall", "raw": np.nan, "scaled": 0.0})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


FAMILIES = {"livae": "livae", "pca": "classical", "scvi": "deep_rna", "clear": "graph_contrastive",
            "betavae": "vae_family", "vae": "livae", "livae_lambda1": "sweep", "ctrl_random": "control"}
RANK_CLAIM = next(c for c in cl.CLAIMS if c.id == "rank_rna_top_tier")


def test_rank_claim_against_the_paper_baselines_only():
    field = ["pca", "scvi", "clear", "betavae", "vae"]
    # livae_lambda1 (LiVAE's own sweep variant) is always first: it is not a baseline and must not count
    best = scores_table([["livae_lambda1", "livae", *field]] * 6, FAMILIES)
    out = cl.evaluate_rank_claim(RANK_CLAIM, {"rna": best})
    assert out["verdict"] == cl.HOLDS, out["reason"]
    assert "position 1 of 6" in out["reason"] and out["n_for"] == 5 and out["n_datasets"] == "6"
    assert out["n_significant_for"] >= 1 and out["min_p"] < 0.05
    last = scores_table([[*field, "livae"]] * 6, FAMILIES)
    out = cl.evaluate_rank_claim(RANK_CLAIM, {"rna": last})
    assert out["verdict"] == cl.FAILS and "pca" in out["reason"]
    few = scores_table([["livae", *field]] * (FEW_DATASETS - 1), FAMILIES)
    assert cl.evaluate_rank_claim(RANK_CLAIM, {"rna": few})["verdict"] == cl.UNTESTABLE
    assert cl.evaluate_rank_claim(RANK_CLAIM, {})["verdict"] == cl.UNTESTABLE


def test_evaluate_claims_gives_one_row_per_claim_and_a_readable_report():
    table = cl.evaluate_claims({"fig3_livae_vs_classical": stats_table(
        [("noise_resilience", b, 0.2, 0.001, TUKEY, 6) for b in paper_comparisons()["fig3_livae_vs_classical"]
         ["baselines"]], family="fig3_livae_vs_classical")})
    assert list(table.columns) == cl.CLAIM_COLUMNS and list(table["claim_id"]) == [c.id for c in cl.CLAIMS]
    row = table.set_index("claim_id").loc["fig3_robustness"]
    assert row["verdict"] == cl.HOLDS and row["n_pairs"] == 7  # overall_intrinsic has no rows here
    assert set(table["verdict"]) <= set(cl.VERDICTS)
    md = cl.claims_markdown(table)
    assert "## Verdict rule" in md and "| **fig3_robustness**" in md and "α = 0.05" in md
    assert md.count("\n### ") == len(cl.CLAIMS)


# ---------------------------------------------------------------------------------------------------------
# The exporter

PNG = b"\x89PNG\r\n\x1a\n" + b"fake image bytes"


def fake_results(root) -> None:
    """A tiny results tree as a finished run leaves it (stats, summary, benchmarks; no results/claims/)."""
    stats = root / "stats"
    write_tsv_atomic(stats_table([("NMI", "vae", 0.1, 0.012, TUKEY, 6), ("DAV", "ivae", -0.25, 0.0, TUKEY, 6)],
                                 family="fig2_livae_vs_vae_ivae_rna").assign(stars=["*", "***"]),
                     stats / "fig2_livae_vs_vae_ivae_rna.tsv")
    write_tsv_atomic(stats_table([("NMI", "vae", 0.05, np.nan, "insufficient: n_datasets=2 (need >=3)", 2)],
                                 family="fig2_livae_vs_vae_ivae_atac"), stats / "fig2_livae_vs_vae_ivae_atac.tsv")
    write_tsv_atomic(stats_table([("noise_resilience", "pca", 1234.5, 0.5, WILCOXON, 6)],
                                 family="fig3_livae_vs_classical").assign(stars="ns"),
                     stats / "fig3_livae_vs_classical.tsv")
    write_tsv_atomic(pd.DataFrame({"method": ["livae"], "parameter": ["epochs"]}), stats / "fairness.tsv")
    summary = root / "summary"
    board = pd.DataFrame({"method": ["livae", "pca", "ctrl_random"], "family": ["livae", "classical", "control"],
                          "control": ["none", "none", "negative"], "n_datasets": [6, 6, 6],
                          "score_clustering": [0.8, 0.5, 0.0], "overall": [0.75, 0.5, 0.0],
                          "mean_rank": [1.2, 1.8, np.nan], "rank": pd.array([1, 2, None], dtype="Int64")})
    write_tsv_atomic(board, summary / "rna.tsv")
    write_tsv_atomic(scores_table([["livae", "pca"]] * 6, FAMILIES), summary / "rna_scores.tsv")
    (summary / "rna.png").write_bytes(PNG)
    (summary / "rna_cd.png").write_bytes(PNG + b"cd")
    write_tsv_atomic(pd.DataFrame({"rule": ["train", "evaluate"], "jobs": [4, 4], "total_s": [600.0, 120.0],
                                   "median_s": [150.0, 30.0], "max_s": [200.0, 40.0], "max_rss_mb": [900.0, 300.0]}),
                     root / "benchmarks" / "rules.tsv")


def test_exporter_writes_figures_tables_claims_and_an_index(tmp_path):
    results, out = tmp_path / "results", tmp_path / "docs" / "results"
    fake_results(results)
    (out / "tables").mkdir(parents=True)
    (out / "tables" / "fig99.md").write_text("left by an earlier export\n")
    (out / "keep.txt").write_text("not the exporter's\n")
    notes = tmp_path / "notes.md"
    notes.write_text("Every dataset subsampled to 2,000 cells.\n")
    index = sd.export(results, out, commit="0123abc", machine="Test CPU, 2 logical cores", wall_time="84 min",
                      notes=notes, out_name="docs/results")
    text = index.read_text()
    for fragment in ("Commit: `0123abc`", "Machine: Test CPU, 2 logical cores", "config/study.yaml",
                     "snakemake --configfile config/study.yaml --cores 2",
                     f"python -m livaebench.study_docs {results.as_posix()} docs/results", "84 min",
                     "Every dataset subsampled to 2,000 cells.", "(summary_rna.png)", "(cd_rna.png)",
                     "(tables/fig2.md)", "(tables/fig3.md)", "(claims.md)", "| train | 4 | 600.0 |", "12.0 min"):
        assert fragment in text, fragment
    assert (out / "summary_rna.png").read_bytes() == PNG and (out / "cd_rna.png").read_bytes() == PNG + b"cd"
    # one file per paper figure, one table per family; fairness.tsv is no comparison; a stale table is gone
    assert sorted(p.name for p in (out / "tables").iterdir()) == ["fig2.md", "fig3.md"]
    assert (out / "keep.txt").exists()
    fig2 = (out / "tables" / "fig2.md").read_text()
    assert "## fig2_livae_vs_vae_ivae_rna (panel A)" in fig2 and "## fig2_livae_vs_vae_ivae_atac (panel B)" in fig2
    assert "| `NMI` | vae | +0.1 | 0.012 | * | rm-anova+tukey | 6 |" in fig2
    assert "| `DAV` | ivae | -0.25 | <1e-15 | *** | rm-anova+tukey | 6 |" in fig2
    assert "| `NMI` | vae | +0.05 | — |  | insufficient: n_datasets=2 (need >=3) | 2 |" in fig2
    fig3 = (out / "tables" / "fig3.md").read_text()
    assert "| `noise_resilience` | pca | +1234.5 | 0.500 | ns | friedman+wilcoxon-bonferroni | 6 |" in fig3
    board = (out / "summary_rna.md").read_text()
    assert "| 1 | `livae` | livae |  | 6 | 0.800 | 0.750 | 1.20 |" in board
    assert "|  | `ctrl_random` | control | negative control | 6 | 0.000 | 0.000 |  |" in board
    # no results/claims/ in the run: computed from the tables, one row per claim
    claims = pd.read_csv(out / "claims.tsv", sep="\t")
    assert list(claims["claim_id"]) == [c.id for c in cl.CLAIMS]
    row = claims.set_index("claim_id").loc["fig2_rna_clustering"]
    assert row["verdict"] == cl.UNTESTABLE  # CAL/COR rows are not in the fake table
    assert "## Verdict rule" in (out / "claims.md").read_text() and "computed by the exporter" in text


def test_exporter_copies_the_runs_own_claims(tmp_path):
    results, out = tmp_path / "results", tmp_path / "out"
    fake_results(results)
    table = cl.evaluate_claims({})
    cl.write_claims(table, results / "claims" / "claims.tsv", results / "claims" / "claims.md")
    sd.export(results, out, commit="x", machine="m")
    assert (out / "claims.md").read_text() == (results / "claims" / "claims.md").read_text()
    assert "results/claims/ (rule claims)" in (out / "README.md").read_text()


def test_exporter_cli_names_a_bad_results_folder(tmp_path, capsys):
    assert sd.main([str(tmp_path / "nothing"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert "nothing" in err and "Fix:" in err and "\n" not in err


def test_commit_and_machine_of_the_checkout(tmp_path):
    assert sd.git_commit(tmp_path).startswith("unknown")
    assert f"{os.cpu_count()} logical cores" in sd.machine_description()
