"""Metrics outside their domain are NaN with a reason (docs/methods.md §3.7), in the panel, the per-run
table and the statistics; inside it they keep their values."""
from __future__ import annotations

import re
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from livaebench import stats as st
from livaebench.metrics import evaluate_embedding
from livaebench.metrics.batch import ilisi, knn, lisi_per_cell
from livaebench.metrics.intrinsic import NAMES as INTRINSIC, covariance_spectrum, intrinsic_from_eigenvalues
from livaebench.metrics.panel import REQUIREMENTS, core_metric_names, requirement, requirements_table
from livaebench.results import metric_table, read_metrics, write_tsv_atomic

DOCS = Path(__file__).resolve().parents[1] / "docs" / "methods.md"


def _embedding(n=120, d=8, seed=0, n_types=3, n_batches=2, labels=True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_types, n)
    z = rng.normal(size=(n_types, d))[y] * 4 + rng.normal(size=(n, d))
    obs = pd.DataFrame(index=[f"c{i}" for i in range(n)])
    if labels:
        obs["cell_type"] = pd.Categorical([f"t{i}" for i in y])
    if n_batches:
        obs["batch"] = [f"b{i}" for i in rng.integers(0, n_batches, n)]
    a = ad.AnnData(np.zeros((n, 0), dtype=np.float32), obs=obs)
    a.obsm["X_latent"] = z.astype(np.float32)
    a.obsm["X_umap"] = z[:, :2] + 0.3 * rng.normal(size=(n, 2))  # stand-in 2-D views
    a.obsm["X_tsne"] = z[:, :2] - 0.2 * rng.normal(size=(n, 2))
    a.uns["livaebench"] = {"dataset": "toy", "method": "m", "seed": seed}
    return a


def _run(a, **kw):
    kw = {"label_key": "cell_type" if "cell_type" in a.obs else "", "batch_key": "batch" if "batch" in a.obs else "",
          "leiden": False, "ilisi_subsample_sizes": (), **kw}
    df = evaluate_embedding(a, **kw)
    return df, dict(zip(df["metric"], df["value"])), dict(zip(df["metric"], df["reason"]))


def test_two_dimensional_latent_has_no_intrinsic_scores_and_the_table_says_why(tmp_path):
    """The scDHMap case: with d = 2 every intrinsic score is NaN with its reason, the rest is computed."""
    a = _embedding(d=2)
    df, v, why = _run(a)
    for name in INTRINSIC:
        assert np.isnan(v[name]) and why[name] == "needs >= 3 latent dimensions (latent has 2)", name
    assert "participation_norm" not in v and "latent has 2" in df.attrs["reasons"]["participation_norm"]
    for name in ("NMI", "ARI", "ASW", "CAL", "DAV", "COR", "umap_dcorr", "tsne_overall", "iLISI"):
        assert np.isfinite(v[name]) and why[name] == "", name
    # the per-run table carries the reason on the metric's row, through writing and reading back
    write_tsv_atomic(metric_table(df, dataset="toy", method="scdhmap", seed=0), tmp_path / "seed0.tsv")
    back = read_metrics(tmp_path / "seed0.tsv").set_index("metric")
    assert back.loc["noise_resilience", "reason"] == "needs >= 3 latent dimensions (latent has 2)"
    assert np.isnan(back.loc["noise_resilience", "value"]) and back.loc["noise_resilience", "status"] == "ok"
    assert back.loc["NMI", "reason"] == "" and np.isfinite(back.loc["NMI", "value"])
    # one more dimension and the scores are back, equal to the formulas on the latent's spectrum
    _, v3, why3 = _run(_embedding(d=3))
    z3 = np.asarray(_embedding(d=3).obsm["X_latent"], dtype=np.float64)
    want = intrinsic_from_eigenvalues(covariance_spectrum(z3))
    for name in INTRINSIC:
        assert v3[name] == pytest.approx(want[name], abs=1e-12) and why3[name] == "", name


def test_one_dimensional_latent_has_no_coupling_degree():
    _, v, why = _run(_embedding(d=1))
    assert np.isnan(v["COR"]) and why["COR"] == "needs >= 2 latent dimensions (latent has 1)"
    assert why["manifold_dim"] == "needs >= 3 latent dimensions (latent has 1)"
    assert np.isfinite(v["NMI"]) and np.isfinite(v["umap_qlocal"])


def test_fewer_cells_than_dimensions_has_no_spectrum():
    a = _embedding(n=9, d=10, n_types=2, n_batches=0)
    _, v, why = _run(a)
    assert all(np.isnan(v[n]) for n in INTRINSIC)
    assert why["anisotropy"] == "needs more cells than latent dimensions (9 for d = 10)"
    assert np.isfinite(v["COR"]) and np.isfinite(v["umap_dcorr"])


def test_labels_with_one_category_or_none():
    a = _embedding(n=60)
    a.obs["cell_type"] = "t0"
    df, v, why = _run(a)
    for name in ("NMI", "ARI"):
        assert np.isnan(v[name]) and why[name] == "needs >= 2 label categories (label column 'cell_type' has 1 category)"
    for name in ("ASW", "CAL", "DAV"):
        assert np.isnan(v[name])
        assert why[name] == "needs a K-means partition with >= 2 clusters (k = 1 label category)"
    assert "AMI" not in v and "label categories" in df.attrs["reasons"]["AMI"]
    a.obs["cell_type"] = np.nan
    _, v, why = _run(a)
    assert np.isnan(v["NMI"]) and why["NMI"] == "needs labels (label column 'cell_type' is empty)"
    # no labels but a configured k: the partition metrics are back, the agreement metrics are not
    _, v, why = _run(_embedding(n=60, labels=False), n_clusters=3)
    assert why["NMI"] == "needs labels (the dataset has no label column)"
    assert np.isfinite(v["ASW"]) and why["ASW"] == ""
    _, v, why = _run(_embedding(n=60, labels=False))
    assert why["CAL"] == "needs a K-means partition with >= 2 clusters (no labels and no n_clusters configured)"


def test_batch_metrics_need_batches_and_enough_neighbours():
    df, v, _ = _run(_embedding(n=60, n_batches=0))
    assert "iLISI" not in v and not any(re.match(r"(iLISI|[KL][KL]_)", m) for m in v)  # not part of the panel
    assert "iLISI" not in core_metric_names(False)
    a = _embedding(n=60)
    a.obs["batch"] = "only"
    _, v, why = _run(a)
    assert np.isnan(v["iLISI"]) and why["iLISI"] == "needs >= 2 batches (batch column 'batch' has 1 batch)"
    # 8 batches over 24 cells: the neighbourhood perplexity (23/3) cannot reach 8 batches
    a = _embedding(n=24)
    a.obs["batch"] = [f"b{i % 8}" for i in range(a.n_obs)]
    df, v, why = _run(a, ilisi_subsample_sizes=(10,))
    assert np.isnan(v["iLISI"]) and "iLISI_raw" not in v
    assert why["iLISI"] == ("needs >= 25 cells with a batch so that the neighbourhood perplexity "
                            "reaches the 8 batches (has 24)")
    assert "iLISI_n10" not in v and "has 10)" in df.attrs["reasons"]["iLISI_n10"]
    # one cell more: computed
    a = _embedding(n=25)
    a.obs["batch"] = [f"b{i % 8}" for i in range(a.n_obs)]
    _, v, why = _run(a)
    assert np.isfinite(v["iLISI"]) and why["iLISI"] == ""


def test_lisi_never_exceeds_the_perplexity():
    """Why iLISI needs a perplexity >= B: even perfectly mixed batches score at most the perplexity."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20, 3))
    b = np.arange(20) % 10  # ten batches, every one in every neighbourhood as far as possible
    k = 19
    dist, idx = knn(z, k)
    per_cell = lisi_per_cell(dist, idx, b, 10, perplexity=k / 3)
    assert per_cell.max() <= k / 3 * (1 + 1e-3)  # the perplexity is reached to a tolerance of 1e-5 in entropy
    scaled, _, _ = ilisi(z, b)
    assert scaled <= (k / 3 * (1 + 1e-3) - 1) / (10 - 1) < 0.7  # the scaled score is capped well under 1


def test_coranking_needs_four_cells_distance_correlation_three():
    df, v, why = _run(_embedding(n=40), max_cells=3)
    assert np.isfinite(v["umap_dcorr"]) and why["umap_dcorr"] == ""
    for s in ("qlocal", "qglobal", "overall"):
        assert np.isnan(v[f"umap_{s}"])
        assert why[f"umap_{s}"] == "needs >= 4 cells in the co-ranking subsample (has 3)"
    a = _embedding(n=40)
    del a.obsm["X_umap"]
    _, v, why = _run(a)
    assert why["umap_dcorr"] == "needs obsm['X_umap'] (missing or not finite)" and np.isfinite(v["tsne_dcorr"])


def test_every_metric_declares_its_requirement():
    extras = ["AMI", "leiden_NMI", "leiden_ARI", "iLISI_raw", "iLISI_n2000", "umap_kmax", "tsne_kmax",
              "participation_norm"] + [f"{p}_{s}" for p in ("KK", "KL", "LK", "LL") for s in ("ARI", "NMI")]
    for name in core_metric_names(True) + extras:
        assert requirement(name) is REQUIREMENTS.get(name, REQUIREMENTS.get("iLISI_n{s}")), name
    with pytest.raises(KeyError, match="declares no requirement"):
        requirement("no_such_metric")


def test_the_documented_table_is_the_declared_one():
    """docs/methods.md §3.7 lists the requirements exactly as the metric modules declare them."""
    text = DOCS.read_text()
    section = text[text.index("### 3.7 Missing values"):text.index("### 3.8")]
    documented = [[c.strip() for c in line.strip().strip("|").split("|")]
                  for line in section.splitlines() if line.startswith("| ") and not line.startswith("| metrics")]
    assert documented == requirements_table().to_numpy().tolist()


# --- statistics ------------------------------------------------------------------------------------


def _table(values: dict[str, np.ndarray], metric="noise_resilience") -> pd.DataFrame:
    rows = [(f"ds{d:02d}", m, 0, metric, v, "ok", "") for m, vals in values.items() for d, v in enumerate(vals)]
    return pd.DataFrame(rows, columns=["dataset", "method", "seed", "metric", "value", "status", "reason"])


def _design(n=12, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.3, 0.7, n)
    return {"livae": base + 0.05 + rng.normal(0, 0.02, n), "vae": base + rng.normal(0, 0.02, n),
            "scdhmap": base + rng.normal(0, 0.02, n)}


def test_undefined_everywhere_gets_its_own_row_and_leaves_the_others_tested():
    values = _design()
    table = _table(values)
    undefined = table["method"] == "scdhmap"
    table.loc[undefined, "value"] = np.nan
    table.loc[undefined, "reason"] = "needs >= 3 latent dimensions (latent has 2)"
    result = st.compare(table, comparison="c", reference="livae", baselines=["vae", "scdhmap"],
                        metrics_list=["noise_resilience"]).set_index("baseline")
    assert result.loc["scdhmap", "test"] == ("insufficient: noise_resilience undefined for scdhmap "
                                             "(needs >= 3 latent dimensions (latent has 2))")
    assert result.loc["scdhmap", "n_datasets"] == 0 and np.isnan(result.loc["scdhmap", "p_value"])
    # vae is tested alone on all 12 datasets, exactly as if scdhmap were not in the family
    alone = st.compare(_table({k: values[k] for k in ("livae", "vae")}), comparison="c", reference="livae",
                       baselines=["vae"], metrics_list=["noise_resilience"]).set_index("baseline")
    assert result.loc["vae", "n_datasets"] == 12
    for column in ("delta", "p_value", "test"):
        assert result.loc["vae", column] == alone.loc["vae", column]
    # a method that failed everywhere is still reported as such
    table.loc[undefined, "status"] = "failed"
    result = st.compare(table, comparison="c", reference="livae", baselines=["vae", "scdhmap"],
                        metrics_list=["noise_resilience"]).set_index("baseline")
    assert result.loc["scdhmap", "test"] == "insufficient: no finished run of scdhmap"


def test_undefined_on_one_dataset_takes_that_dataset_out_of_the_block():
    values = _design()
    table = _table(values)
    hole = (table["method"] == "scdhmap") & (table["dataset"] == "ds04")
    table.loc[hole, "value"] = np.nan
    table.loc[hole, "reason"] = "needs more cells than latent dimensions (9 for d = 10)"
    result = st.compare(table, comparison="c", reference="livae", baselines=["vae", "scdhmap"],
                        metrics_list=["noise_resilience"], test="none").set_index("baseline")
    keep = [i for i in range(12) if i != 4]
    assert (result["n_datasets"] == 11).all()
    for b in ("vae", "scdhmap"):
        assert result.loc[b, "delta"] == pytest.approx(np.mean(values["livae"][keep] - values[b][keep]), abs=1e-12)
