"""The whole panel of one embedding: names, missing-metric handling, subsampling, bad input, real data."""
from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from livaebench.errors import InputError
from livaebench.metrics import core_metric_names, evaluate_embedding
from livaebench.metrics.embedding_quality import coranking_scores

ARCHITECTURE_NAMES = (
    "NMI ARI ASW CAL DAV COR umap_dcorr umap_qlocal umap_qglobal umap_overall tsne_dcorr tsne_qlocal "
    "tsne_qglobal tsne_overall manifold_dim spectral_decay participation anisotropy directionality "
    "noise_resilience core_intrinsic overall_intrinsic"
).split()


def _embedding(n=400, seed=0, with_batch=True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    b = rng.integers(0, 2, n)
    z = rng.normal(size=(4, 8))[y] * 4 + rng.normal(size=(n, 8))
    obs = pd.DataFrame({"cell_type": pd.Categorical(np.array(list("abcd"))[y])}, index=[f"c{i}" for i in range(n)])
    if with_batch:
        obs["batch"] = np.where(b == 0, "b0", "b1")
    a = ad.AnnData(np.zeros((n, 0), dtype=np.float32), obs=obs)
    a.obsm["X_latent"] = z.astype(np.float32)
    # stand-ins for UMAP / t-SNE: the panel only needs two 2-D views of the latent
    a.obsm["X_umap"] = z[:, :2] + 0.3 * rng.normal(size=(n, 2))
    a.obsm["X_tsne"] = z[:, 2:4]
    a.uns["livaebench"] = {"dataset": "toy", "method": "m", "seed": seed}
    return a


def _values(df):
    return dict(zip(df["metric"], df["value"]))


@pytest.fixture(scope="module")
def full_panel():
    a = _embedding()
    return a, evaluate_embedding(a, label_key="cell_type", batch_key="batch", seed=0,
                                 ilisi_subsample_sizes=(300, 1000))


def test_names_and_layout(full_panel):
    _, df = full_panel
    assert list(df.columns) == ["metric", "value", "reason"]
    assert df["metric"].is_unique
    assert (df["reason"] == "").all()  # every metric is in its domain here: no reason anywhere
    assert list(df["metric"][:23]) == ARCHITECTURE_NAMES + ["iLISI"] == core_metric_names(True)
    v = _values(df)
    for name in ARCHITECTURE_NAMES + ["iLISI", "AMI", "leiden_NMI", "leiden_ARI", "iLISI_raw", "iLISI_n300"]:
        assert np.isfinite(v[name]), name
    for p in ("KK", "KL", "LK", "LL"):
        assert np.isfinite(v[f"{p}_ARI"]) and np.isfinite(v[f"{p}_NMI"])
    # the subsample larger than the data is absent, with its reason kept
    assert "iLISI_n1000" not in v and "fewer than 1000" in df.attrs["reasons"]["iLISI_n1000"]
    assert v["umap_overall"] == pytest.approx(np.mean([v["umap_dcorr"], v["umap_qlocal"], v["umap_qglobal"]]))
    assert v["NMI"] == 1.0 and v["ARI"] == 1.0  # four well-separated cell types
    assert 0 <= v["iLISI"] <= 1 and 1 <= v["iLISI_raw"] <= 2


def test_all_cells_when_under_the_cap_equal_direct_computation(full_panel):
    a, df = full_panel
    v = _values(df)
    assert df.attrs["n_cells_dre"] == a.n_obs  # 400 cells < max_cells = 3000
    z = np.asarray(a.obsm["X_latent"], dtype=np.float64)
    for view, key in (("umap", "X_umap"), ("tsne", "X_tsne")):
        e = a.obsm[key]
        assert v[f"{view}_dcorr"] == pytest.approx(spearmanr(pdist(z), pdist(e)).statistic, abs=1e-9)
        s = coranking_scores(z, e)
        assert v[f"{view}_qlocal"] == pytest.approx(s.q_local) and v[f"{view}_qglobal"] == pytest.approx(s.q_global)


def test_subsample_is_seeded():
    a = _embedding(n=300)
    kw = dict(label_key="cell_type", max_cells=120, leiden=False)
    one, again, other = (evaluate_embedding(a, seed=s, **kw) for s in (1, 1, 2))
    assert one.attrs["n_cells_dre"] == 120
    pd.testing.assert_frame_equal(one, again)
    assert _values(one)["umap_qlocal"] != _values(other)["umap_qlocal"]


def test_without_labels_metrics_are_nan_with_reasons(caplog):
    a = _embedding(n=200, with_batch=False)
    with caplog.at_level(logging.INFO, logger="livaebench.metrics"):
        df = evaluate_embedding(a, seed=0)
    v = _values(df)
    assert list(df["metric"]) == ARCHITECTURE_NAMES + [k for k in v if k.endswith("_kmax")] + ["participation_norm"]
    for name in ("NMI", "ARI", "ASW", "CAL", "DAV"):
        assert np.isnan(v[name]) and df.attrs["reasons"][name]
    assert "no label column" in df.attrs["reasons"]["NMI"]
    assert "NMI, ARI = NaN" in caplog.text
    assert np.isfinite(v["COR"]) and np.isfinite(v["umap_qlocal"])
    assert "iLISI" not in v and "AMI" not in v and "leiden_ARI" not in v
    with_k = _values(evaluate_embedding(a, seed=0, n_clusters=4))
    assert np.isnan(with_k["NMI"]) and np.isfinite(with_k["ASW"])


def test_missing_view_and_single_batch():
    a = _embedding(n=150)
    del a.obsm["X_tsne"]
    a.obs["batch"] = "only"
    df = evaluate_embedding(a, label_key="cell_type", batch_key="batch", leiden=False)
    v, reasons = _values(df), df.attrs["reasons"]
    assert all(np.isnan(v[f"tsne_{s}"]) for s in ("dcorr", "qlocal", "qglobal", "overall"))
    assert "X_tsne" in reasons["tsne_dcorr"]
    assert np.isfinite(v["umap_dcorr"])
    assert np.isnan(v["iLISI"]) and "1 batch" in reasons["iLISI"]
    assert "KK_ARI" not in v


def test_bad_input_raises_one_line_errors():
    a = _embedding(n=50)
    with pytest.raises(InputError, match="no label column 'celltype'"):
        evaluate_embedding(a, label_key="celltype")
    b = a.copy()
    b.obsm["X_latent"][3, 1] = np.nan
    with pytest.raises(InputError, match="not a finite"):
        evaluate_embedding(b)
    del b.obsm["X_latent"]
    with pytest.raises(InputError, match=r"toy/m/0: the embedding has no obsm\['X_latent'\]"):
        evaluate_embedding(b)


def test_real_multibatch_data(shared_data):
    """CellBench (5 cell lines, 5 batches from 2 protocols) with a PCA latent.

    The protocols separate strongly in PCA, so batch mixing is poor; the panel's iLISI must agree
    with scib-metrics computed independently on the same latent.
    """
    import scanpy as sc

    a = ad.read_h5ad(shared_data / "cellbench.h5ad")
    a.X = a.X.astype(np.float32)
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    sc.pp.pca(a, n_comps=10, random_state=0)
    e = ad.AnnData(np.zeros((a.n_obs, 0), dtype=np.float32), obs=a.obs[["cell_line", "batch"]].copy())
    e.obsm["X_latent"] = a.obsm["X_pca"]
    e.obsm["X_umap"] = a.obsm["X_pca"][:, :2]
    e.obsm["X_tsne"] = a.obsm["X_pca"][:, 1:3]
    v = _values(evaluate_embedding(e, label_key="cell_line", batch_key="batch", seed=0))
    assert np.isfinite([v[k] for k in ARCHITECTURE_NAMES]).all()
    assert v["NMI"] > 0.3
    assert v["iLISI"] < 0.5
    scib = pytest.importorskip("scib_metrics", reason="scib-metrics not installed: comparison skipped")
    from scib_metrics.nearest_neighbors import NeighborsResults
    from sklearn.neighbors import NearestNeighbors

    dist, idx = NearestNeighbors(n_neighbors=91).fit(e.obsm["X_latent"]).kneighbors(e.obsm["X_latent"])
    ref = float(scib.ilisi_knn(NeighborsResults(indices=idx, distances=dist), e.obs["batch"].to_numpy(), perplexity=30))
    assert v["iLISI"] == pytest.approx(ref, abs=2e-3)
