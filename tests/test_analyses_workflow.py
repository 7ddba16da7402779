"""The interpretability and DiffVAE analysis rules in a real snakemake run on a pancreas subsample.

One run (module fixture) trains LiVAE, DiffVAE and Graph-DiffVAE briefly through the registered train
rule and runs every analysis rule; the tests read what it wrote. (The marker check on a trained LiVAE is
in tests/test_interpretability.py.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from workflow_helpers import REPO, shipped_rows, snakemake, write_config, write_registry

MAX_CELLS = 400
METHOD_PARAMS = {"livae": {"epochs": 20, "checkpoint_seconds": 1e9},
                 "diffvae": {"epochs": 10, "checkpoint_seconds": 1e9},
                 "graph_diffvae": {"epochs": 60, "checkpoint_seconds": 1e9}}
INTERPRET = "results/analyses/interpretability/pancreas"
DIFFVAE = "results/analyses/diffvae/pancreas"
GRAPH = "results/analyses/graph_diffvae/pancreas"
TARGETS = [f"{INTERPRET}/enrichment.png", f"{DIFFVAE}/perturbation.png", f"{GRAPH}/link_fractions.png"]


def analyses(**diffvae):
    return {"interpretability": {"datasets": ["pancreas"], "method": "livae", "top_genes": 50,
                                 "gene_sets": str(REPO / "resources/genesets/hallmark_subset_mouse.gmt")},
            "diffvae": {"datasets": ["pancreas"], "graph_datasets": ["pancreas"],
                        "perturbation": {"source": "Pre-endocrine", "target": "Beta", "lambdas": [0.5, 1.0]},
                        **diffvae}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("analyses")
    registry = write_registry(workdir / "datasets.tsv", shipped_rows(MAX_CELLS)[:1])
    config = write_config(workdir, datasets=str(registry), methods=["livae", "diffvae", "graph_diffvae"],
                          method_params=METHOD_PARAMS, paper_comparisons=[], analyses=analyses(),
                          threads={"train": 1, "embed": 1, "evaluate": 1})
    result = snakemake(workdir, config, "--cores", "2", *TARGETS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir, config


def read(workdir, path):
    return pd.read_csv(workdir / path, sep="\t")


def test_every_output_is_written_and_benchmarked(run):
    workdir, _ = run
    for folder, names in ((INTERPRET, ["correlations.tsv", "components.tsv", "top_genes.tsv", "enrichment.tsv",
                                       "component_umaps.png", "component_umaps.pdf", "enrichment.pdf"]),
                          (DIFFVAE, ["clusters.tsv", "dimension_shares.tsv", "marker_dimensions.tsv",
                                     "high_weight_genes.tsv", "celltypes.png", "celltypes.pdf", "perturbation.tsv",
                                     "perturbation_genes.tsv", "perturbation.pdf"]),
                          (GRAPH, ["predicted_links.npz", "input_links.npz", "node_embedding.npz",
                                   "link_fractions.tsv", "link_summary.tsv", "link_fractions.pdf"])):
        for name in names:
            assert (workdir / folder / name).stat().st_size > 0, f"{folder}/{name}"
    for rule in ("interpret_components", "diffvae_celltypes", "diffvae_perturbation", "graph_diffvae_links"):
        assert (workdir / f"results/benchmarks/{rule}/pancreas.tsv").is_file()


def test_interpretability_tables_match_the_latent(run):
    import anndata as ad

    from livaebench.embedding import load_latents

    workdir, _ = run
    z = load_latents(workdir / "results/models/pancreas/livae/seed0/latent.npz")["X_latent"]
    prep = ad.read_h5ad(workdir / "results/data/pancreas/preprocessed.h5ad")
    corr = pd.read_csv(workdir / f"{INTERPRET}/correlations.tsv", sep="\t", index_col=0)
    assert corr.shape == (prep.n_vars, z.shape[1])
    gene = prep.var_names[7]
    x = np.asarray(prep[:, gene].layers["lognorm"].todense()).ravel()
    np.testing.assert_allclose(corr.loc[gene], [np.corrcoef(z[:, j], x)[0, 1] for j in range(z.shape[1])], atol=1e-4)
    summary = read(workdir, f"{INTERPRET}/components.tsv")
    assert list(summary["top_gene"]) == [corr[c].abs().idxmax() for c in summary["component"]]
    top = read(workdir, f"{INTERPRET}/top_genes.tsv")
    assert (top.groupby("component").size() == 50).all()
    enrichment = read(workdir, f"{INTERPRET}/enrichment.tsv")
    assert len(enrichment) == 13 * z.shape[1] and enrichment["p_adj"].between(0, 1).all()


def test_diffvae_tables_hold_together(run):
    workdir, _ = run
    cells = read(workdir, f"{DIFFVAE}/clusters.tsv")
    assert len(cells) == MAX_CELLS and cells["cluster"].nunique() == cells["label"].nunique()
    shares = pd.read_csv(workdir / f"{DIFFVAE}/dimension_shares.tsv", sep="\t", index_col=0)
    assert len(shares) == 50
    np.testing.assert_allclose(shares.drop(columns="n_cells").sum(axis=1), 1.0, atol=1e-3)
    markers = read(workdir, f"{DIFFVAE}/marker_dimensions.tsv")
    assert (markers.groupby("group").size() == 5).all() and markers["high_weight_genes"].notna().all()
    pert = read(workdir, f"{DIFFVAE}/perturbation.tsv")
    assert list(pert["lambda"]) == [0.0, 0.5, 1.0]
    assert (pert["n_source"] == (cells["label"] == "Pre-endocrine").sum()).all()


def test_graph_links_are_enriched_for_same_type_pairs(run):
    workdir, _ = run
    predicted = sp.load_npz(workdir / f"{GRAPH}/predicted_links.npz")
    given = sp.load_npz(workdir / f"{GRAPH}/input_links.npz")
    assert predicted.shape == given.shape == (MAX_CELLS, MAX_CELLS)
    assert (np.diff(predicted.indptr) == 10).all() and (given != given.T).nnz == 0
    summary = read(workdir, f"{GRAPH}/link_summary.tsv").set_index("links")
    assert (summary["same_type"] > 2 * summary["chance"]).all(), summary
    emb = np.load(workdir / f"{GRAPH}/node_embedding.npz")
    assert emb["mu"].shape == (MAX_CELLS, 50)


def test_configured_analysis_without_its_method_or_with_a_broken_gene_set_file_fails_in_one_line(run, tmp_path):
    workdir, config = run
    import yaml

    cfg = yaml.safe_load(config.read_text())
    bad = write_config(tmp_path, **{**cfg, "methods": ["livae", "diffvae"]})
    result = snakemake(workdir, bad, "-n", "--cores", "1", TARGETS[0])
    assert result.returncode != 0
    assert ("analyses.diffvae.graph_datasets': the analysis needs the method 'graph_diffvae', which is not in "
            "methods. Fix: add graph_diffvae to methods") in result.stderr + result.stdout
    gmt = tmp_path / "broken.gmt"
    gmt.write_text("ONLY_A_NAME\n")
    interp = {**analyses()["interpretability"], "gene_sets": str(gmt)}
    bad = write_config(tmp_path, **{**cfg, "analyses": {**analyses(), "interpretability": interp}})
    result = snakemake(workdir, bad, "-n", "--cores", "1", TARGETS[0])
    assert result.returncode != 0 and f"gene-set file {gmt}: line 1 is not" in result.stderr + result.stdout
