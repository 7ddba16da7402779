"""The results site (livaebench.site) from small hand-made files of the workflow's formats: what each page
shows against the files, escaping, a modality without data, and (browser-marked) the same site in a real
headless Chromium with the exact orders that sorting must give. The site of the real workflow run is checked
in the browser by tests/test_workflow.py (test_end_to_end_site_in_browser)."""
from __future__ import annotations

import re
import zipfile

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from livaebench.results import write_tsv_atomic
from livaebench.site import build_site, default_alpha, fmt
from site_checks import browser, check_family_filter, check_sort, column_values, crawl, open_page

EVIL = "<script>alert(1)</script>"


def png(path, colour):
    fig = Figure(figsize=(1.5, 1))
    fig.add_subplot().plot([0, 1], [0, 1], color=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=40)
    return str(path)


@pytest.fixture
def made(tmp_path):
    """Hand-made results of one RNA dataset (controls, two methods, one failed run, a NaN with a reason),
    no ATAC data; returns (inputs of build_site, the tables)."""
    r = tmp_path / "results"
    board = pd.DataFrame({
        "method": ["livae", "pca", "ctrl_pca", "ctrl_random"],
        "family": ["livae", "classical", "control", "control"],
        "control": ["none", "none", "positive", "negative"],
        "n_datasets": [1, 1, 1, 1],
        "score_clustering": [0.75, 0.5, 1.0, 0.0],
        "overall": [0.625, 0.8125, 1.0, 0.0],
        "mean_rank": [1.5, 1.5, np.nan, np.nan],
        "rank": [1, 2, np.nan, np.nan]})
    write_tsv_atomic(board, r / "summary/rna.tsv")
    scores = pd.DataFrame({
        "dataset": ["pancreas"] * 6, "method": ["livae", "livae", "pca", "pca", "ctrl_pca", "ctrl_pca"],
        "family": ["livae", "livae", "classical", "classical", "control", "control"],
        "control": ["none", "none", "none", "none", "positive", "positive"],
        "category": ["clustering", "overall"] * 3, "metric": ["category", "overall"] * 3,
        "raw": [np.nan] * 6, "scaled": [0.75, 0.625, 0.5, 0.8125, 1.0, 1.0]})
    write_tsv_atomic(scores, r / "summary/rna_scores.tsv")
    metrics = pd.DataFrame({
        "dataset": ["pancreas"] * 5, "method": ["livae", "livae", "pca", "pca", "nmf"],
        "seed": [0, 0, 0, 0, 0], "metric": ["NMI", "COR", "NMI", "COR", np.nan],
        "value": [0.61234567, np.nan, 0.5, 2.0, np.nan], "status": ["ok"] * 4 + ["failed"],
        "reason": ["", f"undefined: one latent dimension {EVIL}", "", "", "nmf diverged"]})
    write_tsv_atomic(metrics, r / "metrics/all.tsv")
    write_tsv_atomic(pd.DataFrame({"dataset": ["pancreas"], "method": ["nmf"], "seed": [0],
                                   "reason": ["nmf diverged"]}), r / "metrics/failures.tsv")
    write_tsv_atomic(pd.DataFrame({"dataset": ["pancreas"], "method": ["livae"], "seed": [0], "phase": ["train"],
                                   "epochs_run": [3], "max_epochs": [3], "stop_reason": ["max_epochs"],
                                   "under_trained": ["true"]}), r / "metrics/convergence.tsv")
    write_tsv_atomic(pd.DataFrame({"method": ["livae", "pca"], "family": ["livae", "classical"],
                                   "origin": ["paper", "scikit-learn"]}), r / "stats/fairness.tsv")
    write_tsv_atomic(pd.DataFrame({"rule": ["train", "embed"], "jobs": [2, 2], "total_s": [10.5, 2.25]}),
                     r / "benchmarks/rules.tsv")
    stats = pd.DataFrame({"comparison": ["c1"] * 2, "metric": ["NMI", "COR"], "reference": ["livae"] * 2,
                          "baseline": ["pca"] * 2, "delta": [0.11234567, np.nan], "p_value": [0.01, np.nan],
                          "test": ["wilcoxon", "insufficient: n_datasets=1 (need >=3)"], "stars": ["*", ""],
                          "n_datasets": [5, 1], "replicate": ["dataset"] * 2, "labels": ["annotated", ""]})
    write_tsv_atomic(stats, r / "stats/c1.tsv")
    prep = ad.AnnData(np.zeros((4, 2), dtype=np.float32),
                      obs=pd.DataFrame({"clusters": ["a", "b", "a", "a"]}, index=list("wxyz")))
    prep.uns["livaebench"] = {"dataset": "pancreas", "modality": "rna", "label_key": "clusters", "batch_key": "",
                              "label_note": ""}
    prep.uns["preprocess"] = {"n_cells_input": 5, "n_cells": 4, "n_features_input": 9, "n_features": 2,
                              "n_features_requested": 5000, "fraction_cells_removed": 0.2, "min_genes": 200,
                              "cells_below_min_genes": 1, "warnings": ["QC removed 20% of the cells"]}
    (r / "data/pancreas").mkdir(parents=True)
    prep.write_h5ad(r / "data/pancreas/preprocessed.h5ad")
    inputs = dict(
        datasets={"pancreas": {"modality": "rna", "label_key": "clusters", "batch_key": "",
                               "umap": png(r / "figures/umap/pancreas.png", "C0"),
                               "preprocessed": str(r / "data/pancreas/preprocessed.h5ad")}},
        modalities={"rna": {"table": str(r / "summary/rna.tsv"), "scores": str(r / "summary/rna_scores.tsv"),
                            "figure": png(r / "summary/rna.png", "C1"), "cd": png(r / "summary/rna_cd.png", "C2")},
                    # no ATAC dataset has a summary: its files do not exist
                    "atac": {m: str(r / f"summary/atac{s}") for m, s in
                             [("table", ".tsv"), ("scores", "_scores.tsv"), ("figure", ".png"), ("cd", "_cd.png")]}},
        comparisons={"c1": {"stats": str(r / "stats/c1.tsv"),
                            "figures": {"boxplots": png(r / "figures/c1/boxplots.png", "C3"),
                                        "delta": png(r / "figures/c1/delta.png", "C4")},
                            "spec": {"reference": "livae", "baselines": ["pca"], "datasets": ["pancreas"],
                                     "test": "auto", "correction": "pairs"}}},
        tables={"metrics": str(r / "metrics/all.tsv"), "failures": str(r / "metrics/failures.tsv"),
                "convergence": str(r / "metrics/convergence.tsv"), "fairness": str(r / "stats/fairness.tsv"),
                "costs": str(r / "benchmarks/rules.tsv")})
    site = r / "site"
    build_site(site, archive=r / "site.zip", **inputs)
    return site, {"board": board, "metrics": metrics, "stats": stats}


def cells(page: str, table_id: str) -> list[list[str]]:
    """The data-value of each body cell of one table, row by row, from the HTML text."""
    body = page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return [re.findall(r'<td[^>]*data-value="([^"]*)"', row) for row in body.split("<tr")[2:]]


def test_pages_show_the_files_numbers(made):
    site, t = made
    assert sorted(p.name for p in site.glob("*.html")) == ["comparison_c1.html", "cost.html", "dataset_pancreas.html",
                                                          "fairness.html", "index.html"]
    index = (site / "index.html").read_text()
    # the leaderboard: every numeric cell's data-value is the TSV's value exactly; controls marked, not ranked
    rows = cells(index, "leaderboard-rna")
    assert [r[1] for r in rows] == list(t["board"]["method"])
    overall = [float(r[5 + 1]) for r in rows]  # rank method family control n_datasets score_clustering overall
    assert overall == list(t["board"]["overall"])
    assert index.count('class="control control-positive"') == 1 and index.count('class="control control-negative"') == 1
    assert "negative control</span>" in index and 'data-column="score_clustering"' in index
    assert "No scATAC-seq dataset has a summary in this run." in index  # a modality without data
    dataset = (site / "dataset_pancreas.html").read_text()
    assert ">0.6123<" in dataset and 'data-value="0.61234567"' in dataset  # shown to 4 digits, exact underneath
    # the NaN metric: NA with its reason on the cell and in the list of reasons, escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dataset and EVIL not in dataset
    assert re.search(r'<td class="na" data-value="" title="undefined: one latent dimension &lt;script&gt;', dataset)
    assert "nmf diverged" in dataset and "No run failed" not in dataset  # the failed run and its reason
    assert '<tr class="flag">' in dataset  # the under-trained phase
    assert "cells (input → kept)</dt><dd>5 → 4" in dataset and "QC removed 20% of the cells" in dataset
    assert "column &#x27;clusters&#x27;: 2 values (a 3, b 1)" in dataset
    comparison = (site / "comparison_c1.html").read_text()
    assert f"<dt>α</dt><dd>{fmt(default_alpha())}</dd>" in comparison and default_alpha() == 0.05
    assert 'class="num sig" data-value="0.01"' in comparison  # p < α in bold
    assert "insufficient: n_datasets=1 (need &gt;=3)" in comparison  # the decision path, escaped
    for image in ["img/umap_pancreas.png", "img/summary_rna.png", "img/summary_rna_cd.png", "img/c1_boxplots.png",
                  "img/c1_delta.png"]:
        assert (site / image).read_bytes()[:4] == b"\x89PNG"
    assert (site / "data/all.tsv").read_text() == (site.parent / "metrics/all.tsv").read_text()
    with zipfile.ZipFile(site.parent / "site.zip") as archive:
        names = set(archive.namelist())
    assert {"site/index.html", "site/img/umap_pancreas.png", "site/data/all.tsv"} <= names


def test_site_without_any_summary(made, tmp_path):
    """No summary at all (summary.controls: false) and no comparison: the site still builds."""
    site = tmp_path / "bare"
    pages = build_site(site, datasets={"d": {"modality": "atac"}}, modalities={}, comparisons={},
                  tables={"metrics": str(made[0].parent / "metrics/all.tsv")})
    assert pages == ["index.html", "dataset_d.html", "fairness.html", "cost.html"]
    text = (site / "dataset_d.html").read_text()
    assert "No summary scores for this dataset." in text and "No UMAP grid." in text


@pytest.mark.browser
def test_hand_made_site_in_browser(made, tmp_path):
    site, t = made
    with browser() as chrome:
        pages = crawl(chrome, site, tmp_path / "screenshots")
        assert set(pages) == {p.name for p in site.glob("*.html")}
        page, problems = open_page(chrome, site / "index.html")
        board = t["board"]
        check_sort(page, "leaderboard-rna", "overall", board["overall"])
        check_sort(page, "leaderboard-rna", "mean_rank", board["mean_rank"])  # NaN (controls) last both ways
        page.locator("#leaderboard-rna th[data-column='method']").click()
        assert column_values(page, "leaderboard-rna", "method") == sorted(board["method"])
        check_family_filter(page, "leaderboard-rna", "control", len(board))
        assert not problems
    assert sorted(p.name for p in (tmp_path / "screenshots").glob("*.png")) == [
        "comparison.png", "cost.png", "dataset.png", "fairness.png", "index.png"]
