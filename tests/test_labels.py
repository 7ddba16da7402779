"""KMeans pseudo-labels for datasets without cell annotations (registry ``label_key: pseudo:kmeans[:K]``,
docs/methods.md §1.6): computed at preprocessing, used by the metric panel, marked in every table."""
from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from livaebench.data.assemble import assemble_counts
from livaebench.data.io import read_h5ad_checked, write_h5ad_atomic
from livaebench.data.preprocess import preprocess
from livaebench.errors import InputError
from livaebench.labels import (PSEUDO_COLUMN, kmeans_pseudo_labels, label_column, label_summaries,
                               labels_description, observed_label_key, parse_label_key, pseudo_label_options,
                               pseudo_title_note)
from livaebench.metrics import panel as panel_mod
from livaebench.metrics.panel import evaluate_embedding
from livaebench.results import LABEL_METRICS, gather_metric_tables, metric_table, write_tsv_atomic

GROUPS, CELLS_PER_GROUP, GENES_PER_GROUP = 3, 40, 20


def planted_counts(seed: int = 0) -> tuple[ad.AnnData, np.ndarray]:
    """Three cell groups, each expressing its own block of genes (Poisson 20) over a background of 0.5:
    the only sensible 3-partition of the log-normalized data is the planted one."""
    rng = np.random.default_rng(seed)
    n, g = GROUPS * CELLS_PER_GROUP, GROUPS * GENES_PER_GROUP
    truth = np.repeat(np.arange(GROUPS), CELLS_PER_GROUP)
    rate = np.full((n, g), 0.5)
    for group in range(GROUPS):
        rate[truth == group, group * GENES_PER_GROUP:(group + 1) * GENES_PER_GROUP] = 20.0
    order = rng.permutation(n)  # interleave the groups, so cell order says nothing
    counts = rng.poisson(rate[order]).astype(np.int64)
    adata = ad.AnnData(sp.csr_matrix(counts), obs=pd.DataFrame(index=[f"c{i}" for i in range(n)]),
                       var=pd.DataFrame(index=[f"g{j}" for j in range(g)]))
    return adata, truth[order]


def run(adata, label_key="pseudo:kmeans:3", **kw):
    return preprocess(adata, dataset="planted", modality="rna", label_key=label_key, n_features=60, min_genes=1,
                      min_cells=1, **kw)


@pytest.fixture(scope="module")
def planted():
    adata, truth = planted_counts()
    return run(adata, pseudo_labels=pseudo_label_options("pseudo:kmeans:3", latent_dim=10, seed=0)), truth


# ------------------------------------------------------------------------------------------ computing
def test_hand_made_matrix_gives_the_obvious_partition():
    """Six cells in two far-apart triangles: k=2 splits them into the triangles, sparse or dense, any seed."""
    x = np.array([[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10]], dtype=float)
    for seed in (0, 1, 7):
        for matrix in (x, sp.csr_matrix(x)):
            labels = kmeans_pseudo_labels(matrix, 2, seed)
            assert len(set(labels[:3])) == 1 and len(set(labels[3:])) == 1 and labels[0] != labels[3]


def test_pseudo_labels_recover_planted_groups_and_equal_sklearn(planted):
    out, truth = planted
    labels = out.obs[PSEUDO_COLUMN]
    assert isinstance(labels.dtype, pd.CategoricalDtype) and list(labels.cat.categories) == ["0", "1", "2"]
    assert adjusted_rand_score(truth, labels.astype(int)) == 1.0
    # the same settings by hand on the dense lognorm layer: n_init 10, random_state = the seed, no PCA
    ref = KMeans(n_clusters=3, n_init=10, random_state=0).fit_predict(out.layers["lognorm"].toarray().astype(float))
    np.testing.assert_array_equal(labels.astype(int).to_numpy(), ref)
    assert out.uns["livaebench"]["label_key"] == PSEUDO_COLUMN
    assert out.uns["livaebench"]["label_note"] == "pseudo-labels (KMeans, k=3)"
    info = out.uns["pseudo_labels"]
    assert (info["k"], info["seed"], info["n_init"], info["k_rule"], info["spec"]) == (3, 0, 10, "explicit",
                                                                                      "pseudo:kmeans:3")
    assert sorted(info["cluster_sizes"]) == [CELLS_PER_GROUP] * GROUPS


def test_pseudo_labels_are_deterministic_and_survive_a_round_trip(planted, tmp_path):
    out, _ = planted
    again = run(planted_counts()[0], pseudo_labels=pseudo_label_options("pseudo:kmeans:3", latent_dim=10, seed=0))
    np.testing.assert_array_equal(again.obs[PSEUDO_COLUMN], out.obs[PSEUDO_COLUMN])
    write_h5ad_atomic(out, tmp_path / "p.h5ad")
    back = read_h5ad_checked(tmp_path / "p.h5ad", dataset="planted")
    np.testing.assert_array_equal(back.obs[PSEUDO_COLUMN], out.obs[PSEUDO_COLUMN])
    assert back.uns["livaebench"]["label_note"] == "pseudo-labels (KMeans, k=3)"


def test_k_follows_latent_dim_unless_written():
    assert pseudo_label_options("pseudo:kmeans", latent_dim=12, seed=3) == {
        "method": "kmeans", "k": 12, "k_rule": "latent_dim", "seed": 3, "n_init": 10}
    assert pseudo_label_options("pseudo:kmeans:5", latent_dim=12, seed=0)["k"] == 5
    assert pseudo_label_options("cell_type", latent_dim=12, seed=0) is None
    # through preprocess: the rule's options decide k; without options k = the default latent_dim (10)
    adata, _ = planted_counts()
    out = run(adata, label_key="pseudo:kmeans", pseudo_labels=pseudo_label_options("pseudo:kmeans", latent_dim=4,
                                                                                    seed=1))
    assert out.obs[PSEUDO_COLUMN].nunique() == 4 and out.uns["pseudo_labels"]["k_rule"] == "latent_dim"
    assert run(adata, label_key="pseudo:kmeans").uns["livaebench"]["label_note"] == "pseudo-labels (KMeans, k=10)"


def test_too_many_clusters_is_one_line():
    adata, _ = planted_counts()
    with pytest.raises(InputError) as err:
        run(adata[:12].copy(), label_key="pseudo:kmeans:13")
    msg = str(err.value)
    assert "planted" in msg and "k = 13" in msg and "12 cells" in msg and "\n" not in msg


@pytest.mark.parametrize("value, column", [("pseudo:kmeans", PSEUDO_COLUMN), ("pseudo:kmeans:7", PSEUDO_COLUMN),
                                           ("cell_type", "cell_type"), ("", "")])
def test_spec_names_the_columns(value, column):
    assert label_column(value) == column
    assert observed_label_key(value) == ("" if column == PSEUDO_COLUMN else value)
    assert (parse_label_key(value) is None) == (column != PSEUDO_COLUMN)


def test_assembled_counts_need_no_label_column(tmp_path):
    """The pseudo-labels do not exist before preprocessing: assembling a pseudo row asks for no obs column."""
    adata, _ = planted_counts()
    adata.write_h5ad(tmp_path / "x.h5ad")
    row = {"dataset": "planted", "modality": "rna", "source": "file", "label_key": "pseudo:kmeans", "batch_key": ""}
    counts = assemble_counts(row, tmp_path / "x.h5ad")
    assert counts.uns["livaebench"]["label_key"] == ""


# -------------------------------------------------------------------------------------- marking outputs
def test_metric_table_marks_the_label_rows_as_pseudo(planted, tmp_path):
    out, _ = planted
    emb = ad.AnnData(obs=out.obs.copy())
    emb.obsm["X_latent"] = out.layers["lognorm"].toarray()  # the pseudo-labels' own input: NMI must be 1
    info = {**out.uns["livaebench"], "method": "identity", "seed": 0}
    emb.uns["livaebench"] = info
    panel = evaluate_embedding(emb, label_key=info["label_key"], seed=0, leiden=False)
    note = labels_description(info)
    assert note == "pseudo-labels (KMeans, k=3)"
    table = metric_table(panel, dataset="planted", method="identity", seed=0, labels=note)
    marked = table[table["labels"].notna()]
    assert set(marked["metric"]) == {"NMI", "ARI", "AMI"} and (marked["labels"] == note).all()
    assert table.set_index("metric").loc["NMI", "value"] == pytest.approx(1.0)
    # an annotated dataset's rows say which column; the table keeps both through the gather step
    annotated = metric_table(panel, dataset="other", method="identity", seed=0,
                             labels=labels_description({"label_key": "cell_type", "label_note": ""}))
    assert set(annotated["labels"].dropna()) == {"annotated: cell_type"}
    write_tsv_atomic(table, tmp_path / "a.tsv")
    write_tsv_atomic(annotated, tmp_path / "b.tsv")
    both = gather_metric_tables([tmp_path / "a.tsv", tmp_path / "b.tsv"])
    assert both.loc[(both["dataset"] == "planted") & (both["metric"] == "ARI"), "labels"].tolist() == [note]
    summaries = label_summaries(both)
    assert summaries["NMI"] == "pseudo-labels (KMeans, k=3) on 1 of 2 datasets; annotated on 1"
    assert "ASW" not in summaries
    assert label_summaries(both, ["planted"])["ARI"] == note
    assert label_summaries(both, ["other"])["ARI"] == "annotated"
    assert pseudo_title_note(both, ["other"]) == ""
    assert "pseudo-labels (KMeans, k=3)" in pseudo_title_note(both)


def test_label_metrics_cover_the_panels_label_scores():
    pipelines = {f"{p}_{s}" for p in panel_mod.PIPELINES for s in ("ARI", "NMI")}
    assert pipelines | {"NMI", "ARI", "AMI", "leiden_NMI", "leiden_ARI"} == set(LABEL_METRICS)
