"""The workflow itself, run for real with the snakemake CLI: lint, plans, config errors, end to end."""
from __future__ import annotations

import re
import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from workflow_helpers import REPO, cap_cores, ci_root, shipped_rows, snakemake, write_config, write_registry

ARCHITECTURE_METRICS = ("NMI ARI ASW CAL DAV COR umap_dcorr umap_qlocal umap_qglobal umap_overall tsne_dcorr "
                        "tsne_qlocal tsne_qglobal tsne_overall manifold_dim spectral_decay participation anisotropy "
                        "directionality noise_resilience core_intrinsic overall_intrinsic").split()


def job_counts(output: str) -> dict[str, int]:
    """Parse snakemake's 'Job stats' table of a dry run into {rule: count}."""
    block = output.split("Job stats:", 1)[1]
    counts = {}
    for line in block.splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def test_lint_is_clean():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_default_dry_run_plans_every_dataset_and_method():
    # --forceall: plan every job whatever this checkout has already built (a dry run writes nothing).
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--forceall"], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    import yaml

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    n_datasets = len(pd.read_csv(REPO / config["datasets"], sep="\t"))
    from livaebench.methods.controls import CONTROLS

    assert config["summary"]["controls"]  # every shipped dataset has labels: each control runs on each
    expected_runs = n_datasets * (len(config["methods"]) + len(CONTROLS)) * len(config["seeds"])
    # one train rule per artifact signature: classical methods declare none, neural ones their model
    trains = sum(n for rule, n in counts.items() if rule.startswith("train"))
    assert trains == counts["embed"] == counts["evaluate"] == expected_runs
    from livaebench.methods import get_method

    neural = [m for m in config["methods"] if get_method(m).artifacts == ("model",)]
    assert neural and counts["train_model"] == len(neural) * n_datasets
    assert counts["preprocess"] == counts["assemble_counts"] == n_datasets
    from livaebench.comparisons import paper_comparisons

    methods, paper = set(config["methods"]), paper_comparisons()
    active = [name for name, c in paper.items()
              if c["reference"] in methods and methods & set(c["baselines"])]  # the others are skipped
    assert active == ["fig2_livae_vs_vae_ivae_rna", "fig2_livae_vs_vae_ivae_atac", "fig3_livae_vs_classical"]
    assert counts["compare"] == len(active) and counts["plot_umap_grid"] == n_datasets


def test_one_target_plans_only_its_own_chain(tmp_path):
    registry = write_registry(tmp_path / "datasets.tsv", shipped_rows(300))
    config = write_config(tmp_path, datasets=str(registry), methods=["pca", "nmf"])
    result = snakemake(tmp_path, config, "-n", "results/metrics/pancreas/pca/seed0.tsv")
    assert result.returncode == 0, result.stderr
    assert job_counts(result.stdout) == {"assemble_counts": 1, "preprocess": 1, "train": 1, "embed": 1,
                                         "evaluate": 1, "total": 5}
    result = snakemake(tmp_path, config, "-n", "results/models/pancreas/livae/seed0/model.pt")
    assert result.returncode != 0  # livae is not configured here: no rule makes its artifact


@pytest.mark.parametrize("override, named", [
    ({"methodz": ["pca"]}, "key 'methodz"),
    ({"seeds": ["zero"]}, "key 'seeds.0"),
    ({"metrics": {"max_cells": "many"}}, "key 'metrics.max_cells"),
    ({"method_params": {"nope": {"epochs": 3}}}, "key 'method_params.nope': 'nope' is not a registered method"),
    ({"method_params": {"pca": {"n_comp": 3}}}, "unknown parameter 'n_comp' of method 'pca'"),
    ({"method_params": {"livae": {"epochs": "ten"}}}, "parameter 'epochs' of method 'livae' is 'ten': it must be an"),
    ({"method_params": {"livae": {"likelihood": "gauss"}}}, "parameter 'likelihood' of method 'livae'"),
    ({"method_params": {"livae": {"lr": -1.0}}}, "it must be >= 0"),
    ({"comparisons": {"mine": {"reference": "livae", "baselines": ["pcaa"]}}},
     "comparison 'mine': 'pcaa' is not a registered method"),
    ({"comparisons": {"../x": {"reference": "livae", "baselines": ["pca"]}}}, "key 'comparisons"),
    ({"paper_comparisons": ["fig99"]}, "'fig99' is not one of the paper's comparisons"),
])
def test_bad_config_is_named_before_any_job(tmp_path, override, named):
    registry = write_registry(tmp_path / "datasets.tsv", shipped_rows(300))
    config = write_config(tmp_path, datasets=str(registry), **override)
    result = snakemake(tmp_path, config, "--cores", "1")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert named in output, output[-2000:]
    assert not (tmp_path / "results").exists() and "Fix:" in output


def test_unknown_method_and_bad_registry_are_named(tmp_path):
    registry = write_registry(tmp_path / "datasets.tsv", shipped_rows(300))
    config = write_config(tmp_path, datasets=str(registry), methods=["pca", "umapx"])
    result = snakemake(tmp_path, config, "-n")
    assert result.returncode != 0 and "method 'umapx': is not in the method registry" in result.stdout + result.stderr
    rows = shipped_rows(300)
    rows[1]["modality"] = "protein"
    bad = write_registry(tmp_path / "bad.tsv", rows)
    config = write_config(tmp_path, datasets=str(bad), methods=["pca"])
    result = snakemake(tmp_path, config, "-n")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "line 3 (dataset 'cellbench')" in output and "modality" in output


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """The CI test configuration .test/ run for real end to end, as the snakemake-workflows catalogue runs it
    (`snakemake --directory .test --cores 2` from the repository's root): the three shipped datasets reduced to
    250 cells each, six methods (kernelpca made to fail), controls, summary, comparisons, a sweep, the
    interpretability analysis and the site. A copy of .test/config in a scratch root whose resources/ is the
    repository's, so the run writes nothing into the checkout; the console output is kept in console.txt."""
    root = tmp_path_factory.mktemp("e2e")
    workdir = ci_root(root)
    result = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                             "--directory", ".test", *cap_cores(["--cores", "2"])], cwd=root, capture_output=True,
                            text=True, timeout=900)
    (root / "console.txt").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir


@pytest.mark.workflow
def test_end_to_end_embeddings(finished_run):
    for dataset, label, batch in [("pancreas", "clusters", ""), ("cellbench", "cell_line", "batch"),
                                  ("atac_bmmc", "cell_type", "Group")]:
        for method in ["pca", "nmf", "livae", "vae"]:
            emb = ad.read_h5ad(finished_run / f"results/embeddings/{dataset}/{method}/seed0.h5ad")
            assert emb.n_obs == 250
            assert emb.obsm["X_latent"].shape == (250, 10)
            assert emb.obsm["X_umap"].shape == emb.obsm["X_tsne"].shape == (250, 2)
            assert np.isfinite(emb.obsm["X_tsne"]).all()
            assert label in emb.obs and (not batch or batch in emb.obs)
        livae = ad.read_h5ad(finished_run / f"results/embeddings/{dataset}/livae/seed0.h5ad")
        assert livae.obsm["X_bottleneck"].shape == (250, 2)
        assert (finished_run / f"results/models/{dataset}/livae/seed0/train_log.tsv").is_file()


@pytest.mark.workflow
def test_end_to_end_metrics_stats_figures(finished_run):
    table = pd.read_csv(finished_run / "results/metrics/all.tsv", sep="\t")
    assert list(table.columns[:5]) == ["dataset", "method", "seed", "metric", "value"]
    assert set(ARCHITECTURE_METRICS) <= set(table["metric"])
    ilisi = table[table["metric"] == "iLISI"]
    assert set(ilisi["dataset"]) == {"cellbench", "atac_bmmc"}  # only the datasets with a batch column
    assert len(table) == table[["dataset", "method", "seed", "metric"]].drop_duplicates().shape[0]
    stats = pd.read_csv(finished_run / "results/stats/livae_vs_baselines.tsv", sep="\t")
    assert list(stats.columns[:10]) == ["comparison", "metric", "reference", "baseline", "delta", "p_value", "test",
                                        "stars", "n_datasets", "replicate"]
    assert set(stats["baseline"]) == {"vae", "pca", "nmf", "kernelpca"}
    assert set(stats["metric"]) == set(ARCHITECTURE_METRICS) | {"iLISI"}  # the paper's panel, no extras
    # every shipped dataset has annotated labels: the label rows say so, nothing says pseudo-labels
    assert (stats.loc[stats["metric"].isin(["NMI", "ARI"]), "labels"] == "annotated").all()
    assert table.loc[table["metric"] == "NMI", "labels"].str.startswith("annotated: ").all()
    failed_rows = stats[stats["baseline"] == "kernelpca"]
    assert (failed_rows["test"] == "insufficient: no finished run of kernelpca").all()
    stats = stats[stats["baseline"] != "kernelpca"]
    n_datasets = stats.set_index("metric")["n_datasets"]
    assert (n_datasets.drop("iLISI") == 3).all() and (n_datasets["iLISI"] == 2).all()
    atac = pd.read_csv(finished_run / "results/stats/livae_vs_vae_atac.tsv", sep="\t")
    assert (atac["n_datasets"] == 1).all() and atac["p_value"].isna().all()  # one dataset: no test, said so
    assert atac["test"].str.contains("insufficient").all()
    # the failed method: one status=failed row per dataset with its reason, listed in failures.tsv
    failed = table[table["status"] == "failed"]
    assert set(failed["method"]) == {"kernelpca"} and len(failed) == 3 and failed["metric"].isna().all()
    assert failed["reason"].str.contains("no-such-kernel").all()
    ok = table[table["status"] == "ok"]
    assert ((ok["reason"].fillna("") == "") == ok["value"].notna()).all()  # a reason exactly where a value is NaN
    listed = pd.read_csv(finished_run / "results/metrics/failures.tsv", sep="\t")
    assert sorted(listed["dataset"]) == ["atac_bmmc", "cellbench", "pancreas"]
    log = (finished_run / "logs/train/pancreas/kernelpca/seed0.log").read_text().strip().splitlines()
    assert "FAILED" in log[-1] and "Fix:" in log[-1]
    rules = pd.read_csv(finished_run / "results/benchmarks/rules.tsv", sep="\t").set_index("rule")
    assert {"train", "train_model", "embed", "evaluate", "preprocess", "plot_comparison"} <= set(rules.index)
    assert rules.loc["embed", "jobs"] == 30 and (rules["total_s"] > 0).all()  # (6 methods + 4 controls) x 3 datasets
    sweep = pd.read_csv(finished_run / "results/stats/sweep_lambda.tsv", sep="\t")
    assert (sweep["test"] == "none").all() and sweep["p_value"].isna().all()  # Δ only, as the paper's sweeps
    for figure in ["livae_vs_baselines/boxplots", "livae_vs_baselines/delta", "umap/pancreas", "umap/cellbench",
                   "ilisi_subsample", "sweep_lambda/sensitivity"]:
        assert (finished_run / f"results/figures/{figure}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (finished_run / f"results/figures/{figure}.pdf").read_bytes()[:5] == b"%PDF-"


@pytest.mark.workflow
def test_end_to_end_summary(finished_run):
    """Issue 16: the ranked summary of each modality, controls as marked rows, the failed method scored 0, the
    figures; the numbers are those of livaebench.summary on this run's all.tsv (tests/test_summary.py checks
    that against a hand computation)."""
    from livaebench.methods.controls import CONTROLS
    from livaebench.results import read_metrics
    from livaebench.summary import summarize

    metrics = read_metrics(finished_run / "results/metrics/all.tsv")
    for modality, datasets, batch in (("rna", ["pancreas", "cellbench"], True), ("atac", ["atac_bmmc"], True)):
        board = pd.read_csv(finished_run / f"results/summary/{modality}.tsv", sep="\t")
        assert list(board.columns) == ["method", "family", "control", "n_datasets", "score_clustering", "score_umap",
                                       "score_tsne", "score_manifold", "score_intrinsic", "score_batch", "overall",
                                       "mean_rank", "rank"]
        methods = {"pca", "nmf", "kernelpca", "livae", "vae", "livae_lambda1"}
        rows = board.set_index("method")
        assert set(rows.index) >= set(CONTROLS) and set(rows.index) - set(CONTROLS) <= methods
        assert rows.loc[list(CONTROLS), "control"].tolist() == [CONTROLS[c] for c in CONTROLS]
        assert rows.loc[list(CONTROLS), "rank"].isna().all() and (rows.loc[list(CONTROLS), "family"] == "control").all()
        ranked = board[board["control"] == "none"]
        assert sorted(ranked["rank"]) == ranked["rank"].tolist() and ranked["rank"].iloc[0] == 1
        assert (rows["n_datasets"] == len(datasets)).all()
        # the failed method scores as the negative control and ranks last on every dataset
        assert rows.loc["kernelpca", "overall"] == 0 and rows.loc["kernelpca", "mean_rank"] == ranked["mean_rank"].max()
        expected, _ = summarize(metrics, datasets=datasets, families=rows["family"].to_dict())
        assert board[["method", "family", "control"]].equals(expected[["method", "family", "control"]])
        for column in board.columns[3:]:
            np.testing.assert_allclose(board[column].astype(float), expected[column].astype(float), rtol=1e-9)
        long = pd.read_csv(finished_run / f"results/summary/{modality}_scores.tsv", sep="\t")
        assert list(long.columns) == ["dataset", "method", "family", "control", "category", "metric", "raw", "scaled"]
        assert set(long["dataset"]) == set(datasets) and {"category", "overall"} <= set(long["metric"])
        assert long["scaled"].dropna().between(0, 1).all()
        for suffix in ("", "_cd"):
            assert (finished_run / f"results/summary/{modality}{suffix}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert (finished_run / f"results/summary/{modality}{suffix}.pdf").read_bytes()[:5] == b"%PDF-"
    log = (finished_run / "logs/summary/atac_cd.log").read_text()
    assert "N=1" in log and "no Friedman test" in log  # one ATAC dataset: the diagram says why there is no CD


@pytest.mark.workflow
def test_end_to_end_convergence_and_fairness(finished_run):
    """Every neural training's record reaches convergence.tsv and the metric tables; the under-trained flag
    follows the rule; fairness.tsv has a row per method; the report's caption lists the flagged runs."""
    from livaebench.convergence import FAIRNESS_COLUMNS, phase_under_trained

    conv = pd.read_csv(finished_run / "results/metrics/convergence.tsv", sep="\t", dtype={"under_trained": str})
    neural, datasets = {"livae", "vae", "livae_lambda1"}, {"pancreas", "cellbench", "atac_bmmc"}
    assert set(conv["method"]) == neural  # classical and failed runs leave no training record
    assert set(map(tuple, conv[["dataset", "method"]].values)) == {(d, m) for d in datasets for m in neural}
    assert (conv["epochs_run"] <= 3).all() and (conv["max_epochs"] == 3).all()
    assert set(conv["stop_reason"]) <= {"patience", "max_epochs"}
    expected = [phase_under_trained(r, 0.01) for r in conv.to_dict("records")]  # the config's threshold
    assert conv["under_trained"].fillna("NA").tolist() == [{True: "true", False: "false", None: "NA"}[e] for e in expected]

    table = pd.read_csv(finished_run / "results/metrics/all.tsv", sep="\t", dtype={"under_trained": str})
    one = pd.read_csv(finished_run / "results/metrics/pancreas/vae/seed0.tsv", sep="\t", dtype={"under_trained": str})
    for t in (table, one):
        assert {"epochs_run", "stop_reason", "under_trained"} <= set(t.columns)
    runs = table.drop_duplicates(["dataset", "method", "seed"]).set_index(["dataset", "method"])
    for row in conv.itertuples():  # one phase per model here: the run's columns are its phase's
        run = runs.loc[(row.dataset, row.method)]
        assert (run["epochs_run"], run["stop_reason"]) == (row.epochs_run, row.stop_reason)
        assert str(run["under_trained"]) == str(row.under_trained)
    classical = runs[runs.index.get_level_values("method").isin(["pca", "nmf", "kernelpca"])]
    assert classical[["epochs_run", "stop_reason", "under_trained"]].isna().all().all()

    fairness = pd.read_csv(finished_run / "results/stats/fairness.tsv", sep="\t")
    assert list(fairness.columns) == FAIRNESS_COLUMNS
    assert sorted(fairness["method"]) == sorted(["pca", "nmf", "kernelpca", "livae", "vae", "livae_lambda1",
                                                 "ctrl_random", "ctrl_shuffled", "ctrl_labels", "ctrl_pca"])
    rows = fairness.set_index("method")
    assert "epochs=3" in rows.loc["livae", "settings_run"] and "epochs" in rows.loc["livae", "settings_differing"]
    assert rows.loc["livae", "epochs_run"].endswith("/3") and rows.loc["vae", "under_trained_runs"].endswith("of 3")
    assert rows.loc[["pca", "nmf"], "epochs_run"].isna().all()
    assert "kernel=no-such-kernel" in rows.loc["kernelpca", "settings_run"]

    result = snakemake(finished_run, finished_run / "config" / "config.yaml", "--report",
                       str(finished_run / "report.html"))
    assert result.returncode == 0, result.stderr[-3000:]
    html = (finished_run / "report.html").read_text()
    flagged = conv[conv["under_trained"] == "true"]
    if flagged.empty:
        assert "No run is flagged." in html
    for r in flagged.itertuples():
        assert f"{r.dataset}/{r.method}/seed{r.seed}" in html
    assert "fairness.tsv" in html and "convergence.tsv" in html
    # issue 16: the tables and the zipped results site are in the report too
    assert all(name in html for name in ("all.tsv", "livae_vs_baselines.tsv", "site.zip"))


@pytest.mark.workflow
@pytest.mark.browser
def test_end_to_end_site_in_browser(finished_run, tmp_path):
    """The results site of this run (rule site, in the default run) in a real headless Chromium: a page per
    dataset and comparison family, controls marked, every page from file:// without a console error, every
    link and image resolving, the leaderboard sorted and filtered; screenshots in tmp_path/screenshots."""
    from site_checks import browser, check_family_filter, check_sort, column_values, crawl, open_page

    site = finished_run / "results/site"
    names = {p.name for p in site.glob("*.html")}
    assert names == {"index.html", "fairness.html", "cost.html",
                     *(f"dataset_{d}.html" for d in ("pancreas", "cellbench", "atac_bmmc")),
                     *(f"comparison_{c}.html" for c in ("livae_vs_baselines", "livae_vs_vae_atac", "sweep_lambda"))}
    for name in names - {"index.html", "fairness.html", "cost.html"}:
        assert "control-negative" in (site / name).read_text() or name.startswith("comparison_"), name
    board = pd.read_csv(finished_run / "results/summary/rna.tsv", sep="\t")
    assert set(board["control"]) == {"none", "negative", "positive"}
    with browser() as chrome:
        pages = crawl(chrome, site, tmp_path / "screenshots")
        assert set(pages) == names  # every page is reachable from index.html
        page, problems = open_page(chrome, site / "index.html")
        assert column_values(page, "leaderboard-rna", "method") == list(board["method"])
        check_sort(page, "leaderboard-rna", "overall", board["overall"])
        check_sort(page, "leaderboard-rna", "mean_rank", board["mean_rank"])
        check_family_filter(page, "leaderboard-rna", "classical", len(board))
        assert not problems
    assert {p.stem for p in (tmp_path / "screenshots").glob("*.png")} == {"index", "dataset", "comparison",
                                                                          "fairness", "cost"}


@pytest.mark.workflow
def test_console_says_what_finished_and_failed_and_the_logs_the_rest(finished_run):
    """Issue 17: on the console, Snakemake's record of each job and the jobs' warnings and errors; the jobs'
    details and progress (epoch lines, peak memory) only in their logs, and no progress bar anywhere."""
    console = (finished_run.parent / "console.txt").read_text()
    planned = job_counts(console)["total"]
    assert len(re.findall(r"^Finished jobid: \d+", console, re.M)) == planned
    assert "\r" not in console and not re.search(r"\d+(\.\d+)?(epoch|it)/s\b|s/(epoch|it)\b", console)
    assert "peak RSS" not in console and " INFO " not in console  # every job's INFO lines stay in its log
    for log in ("embed/pancreas/pca/seed0", "evaluate/cellbench/vae/seed0", "preprocess/atac_bmmc"):
        assert "peak RSS" in (finished_run / f"logs/{log}.log").read_text().splitlines()[-1], log
    train_log = (finished_run / "logs/train/pancreas/livae/seed0.log").read_text()
    assert "pancreas/livae epoch 1/3" in train_log and "pancreas/livae epoch 3/3" in train_log
    # the failed method: its one-line reason on the console for each dataset, its traceback in the log only
    failures = [line for line in console.splitlines() if "kernelpca/seed0: FAILED" in line]
    assert len(failures) == 3 and all("no-such-kernel" in line for line in failures)
    assert "Traceback" not in console
    assert "Traceback" in (finished_run / "logs/train/pancreas/kernelpca/seed0.log").read_text()


@pytest.mark.workflow
def test_rerun_is_up_to_date(finished_run):
    result = snakemake(finished_run, finished_run / "config" / "config.yaml", "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr
