"""UniCoord (docs/methods.md §6.1): the model's pieces against independent computations, the registered
method, and the analyses on real pancreas cells (one shared training per model variant).

The analysis fixture trains, on a seeded subsample of the real pancreas data, the two models the
workflow trains (``split``: train cells, cell type + cell-cycle supervision; ``restore``: train cells
without Pre-endocrine, lineage stage only) and checks what the analyses claim: labels of held-out
cells predicted far above chance, reconfigured cells moving most toward their target category,
restoration beating the nearest observed category, the mitotic programme rising along G2M_score.
Generated cells are seeded draws of the modified posterior (the paper's generation): same seed, same cells.
"""
from __future__ import annotations

import json
import math

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from workflow_helpers import shipped_rows, snakemake, write_config, write_registry
from livaebench.analyses import unicoord as U
from livaebench.errors import InputError
from livaebench.methods import all_methods, fit_method
from livaebench.models.unicoord import (UniCoord, build_layout, capacity_at, gaussian_kl, gumbel_softmax_sample,
                                        max_discrete_capacity, model_input, normalize_log1p, posterior_sample,
                                        soft_neighbour_average, uniform_kl)

SUPERVISION = {"discrete_keys": ["clusters"], "continuous_keys": ["S_score", "G2M_score"],
               "parent_keys": {"clusters": "clusters_coarse"}}
STAGES = {"Ductal": 0, "Ngn3 low EP": 1, "Ngn3 high EP": 2, "Pre-endocrine": 3, "Alpha": 4, "Beta": 4, "Delta": 4,
          "Epsilon": 4}
# Tirosh et al. G2M genes (mouse spelling), the list the pancreas G2M_score was computed from
G2M_GENES = ["Hmgb2", "Cdk1", "Nusap1", "Ube2c", "Birc5", "Tpx2", "Top2a", "Ndc80", "Cks2", "Nuf2", "Cks1b", "Mki67",
             "Tmpo", "Cenpf", "Tacc3", "Smc4", "Ccnb2", "Ckap2l", "Ckap2", "Aurkb", "Bub1", "Kif11", "Anp32e",
             "Tubb4b", "Gtse1", "Kif20b", "Hjurp", "Cdca3", "Hn1", "Cdc20", "Ttk", "Cdc25c", "Kif2c", "Rangap1",
             "Ncapd2", "Dlgap5", "Cdca2", "Cdca8", "Ect2", "Kif23", "Hmmr", "Aurka", "Psrc1", "Anln", "Lbr", "Ckap5",
             "Cenpe", "Ctcf", "Nek2", "G2e3", "Gas2l3", "Cbx5", "Cenpa"]
OUT = "results/analyses/unicoord/pancreas"
TARGETS = ["label_prediction/accuracy.tsv", "label_prediction/predictions.tsv", "reconfiguration/generated.h5ad",
           "reconfiguration/reconfiguration.tsv", "interpolation/trajectory.tsv", "restoration/restoration.tsv",
           "reference/query.h5ad", "reference/predictions.tsv", "reference/confusion.tsv"]


# ------------------------------------------------------------------------------------------ pieces
def test_gumbel_softmax_follows_the_softmax_probabilities():
    """Gumbel-max: at a low temperature the sample's argmax is distributed as softmax(logits)."""
    torch.manual_seed(0)
    logits = torch.tensor([[1.5, 0.0, -1.0, 0.5]]).expand(40000, 4)
    sample = gumbel_softmax_sample(logits, 0.05)
    assert torch.allclose(sample.sum(dim=1), torch.ones(40000), atol=1e-5)
    freq = torch.bincount(sample.argmax(dim=1), minlength=4).double() / 40000
    assert torch.allclose(freq, torch.softmax(logits[0].double(), 0), atol=0.01)
    soft = gumbel_softmax_sample(logits[:2000], 0.67)  # the model's temperature: relaxed, not one-hot
    assert soft.max(dim=1).values.mean() < 0.95


def test_kl_terms_match_torch_distributions():
    torch.manual_seed(1)
    mu, logvar, logits = torch.randn(7, 5), torch.randn(7, 5), torch.randn(7, 6)
    normal = torch.distributions.Normal
    expected = torch.distributions.kl_divergence(normal(mu, (0.5 * logvar).exp()), normal(0.0, 1.0)).sum(dim=1)
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-5)
    cat = torch.distributions.Categorical
    expected = torch.distributions.kl_divergence(cat(logits=logits), cat(probs=torch.full((7, 6), 1 / 6)))
    assert torch.allclose(uniform_kl(logits), expected, atol=1e-5)


def test_capacity_schedule_and_the_capacity_controlled_terms(tiny_rna):
    assert [capacity_at(s, 5.0, 25000) for s in (0, 12500, 25000, 60000)] == [0.0, 2.5, 5.0, 5.0]
    layout, arrays = build_layout(tiny_rna, dataset="pancreas", **SUPERVISION, min_obs=10, n_diffusion=2, n_free=4,
                                  free_discrete=[3])
    hyper = {"temperature": 0.67, "gamma": 30.0, "capacity": 5.0, "capacity_steps": 25000, "regression_weight": 100.0,
             "classification_weight": 100.0, "diffusion_weight": 1e-3, "hierarchical_weight": 100.0, "bandwidth": 5.0}
    torch.manual_seed(0)
    model = UniCoord(tiny_rna.n_vars, layout, hyper).eval()  # eval: μ and hard one-hots, no noise
    model.on_step(10000)
    assert model.capacity == pytest.approx(2.0)
    x = torch.from_numpy(model_input(tiny_rna, "tiny"))
    batch = {"x": x, **{k: torch.from_numpy(v) for k, v in arrays.items()}}
    with torch.no_grad():
        terms = model.loss_terms(batch)
        mu, logvar, logits = model.encode(x)
        kl = torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * logvar).exp()),
                                               torch.distributions.Normal(0.0, 1.0)).sum(dim=1).mean()
        kl_disc = sum(float((torch.softmax(lg, 1) * torch.log_softmax(lg, 1)).sum(1).mean()) + math.log(lg.shape[1])
                      for lg in logits)
        ce = torch.nn.functional.cross_entropy(logits[0], batch["y_disc"][:, 0]) + \
            torch.nn.functional.cross_entropy(logits[1], batch["y_disc"][:, 1])
        reg = ((mu[:, :2] - batch["y_cont"]) ** 2).mean()
    assert float(terms["kl_cont"]) == pytest.approx(abs(2.0 - float(kl)), rel=1e-5)
    assert float(terms["kl_disc"]) == pytest.approx(abs(2.0 - kl_disc), rel=1e-5)
    assert float(terms["classification"]) == pytest.approx(float(ce), rel=1e-5)  # CE on logits
    assert float(terms["regression"]) == pytest.approx(float(reg), rel=1e-5)
    g = tiny_rna.n_vars
    assert model.loss_weights == pytest.approx({"recon": 1 / g, "kl_cont": 30 / g, "kl_disc": 30 / g,
                                                "regression": 100 / g, "classification": 100 / g,
                                                "diffusion": 1e-3 / g, "hierarchical": 100 / g})
    # layout: 2 supervised + 2 diffusion + 4 free continuous; clusters, clusters_coarse, one free 3-way
    assert (model.n_cont, model.disc_sizes[2]) == (8, 3)


def test_discrete_capacity_never_exceeds_sum_log_k(tiny_rna):
    """Joint-VAE capacity control: the discrete channels' capacity is C(t) capped at Σ_k log K_k."""
    layout, arrays = build_layout(tiny_rna, dataset="pancreas", discrete_keys=["clusters_coarse"], continuous_keys=[],
                                  parent_keys=None, min_obs=10, n_diffusion=0, n_free=3, free_discrete=[2])
    hyper = {"temperature": 0.67, "gamma": 30.0, "capacity": 5.0, "capacity_steps": 1000, "regression_weight": 100.0,
             "classification_weight": 100.0, "diffusion_weight": 1e-3, "hierarchical_weight": 100.0, "bandwidth": 5.0}
    model = UniCoord(tiny_rna.n_vars, layout, hyper).eval()
    k = tiny_rna.obs["clusters_coarse"].nunique()
    cap = math.log(k) + math.log(2)
    assert model.max_disc_capacity == pytest.approx(cap) == max_discrete_capacity([k, 2])
    seen = []
    for step in range(0, 2001, 50):
        model.on_step(step)
        seen.append(model.disc_capacity)
        assert model.disc_capacity == pytest.approx(min(capacity_at(step, 5.0, 1000), cap))
    assert max(seen) == pytest.approx(cap) and model.capacity == 5.0 > cap  # the cap binds, C(t) goes on
    x = torch.from_numpy(model_input(tiny_rna, "tiny"))
    batch = {"x": x, **{key: torch.from_numpy(v) for key, v in arrays.items()}}
    with torch.no_grad():
        terms = model.loss_terms(batch)
        _, _, logits = model.encode(x)
    kl = sum(float(uniform_kl(lg).mean()) for lg in logits)
    assert float(terms["kl_disc"]) == pytest.approx(abs(cap - kl), rel=1e-5)


def test_input_is_scanpy_normalize_total_excluding_highly_expressed_genes(pancreas, tiny_rna):
    """The paper's input: normalize_total(target_sum=1e4, exclude_highly_expressed=True) + log1p."""
    import scanpy as sc

    raw = pancreas[:400].copy()
    want = raw.copy()
    sc.pp.normalize_total(want, target_sum=1e4, exclude_highly_expressed=True)
    sc.pp.log1p(want)
    got = normalize_log1p(raw.X)
    assert np.abs(got - np.asarray(want.X.todense())).max() < 1e-4
    assert np.abs(got - normalize_log1p(raw.X, max_fraction=1.0)).max() > 0.5  # hormone genes do leave the sums
    # on preprocessed data: the cells' totals over all genes minus the highly expressed selected genes, by hand
    counts = tiny_rna.layers["counts"].toarray().astype(np.float64)
    totals = tiny_rna.obs["total_counts"].to_numpy(dtype=np.float64)
    high = (counts > 0.05 * totals[:, None]).any(axis=0)
    library = totals - counts[:, high].sum(axis=1)
    assert high.sum() >= 3
    np.testing.assert_allclose(model_input(tiny_rna, "t"), np.log1p(1e4 * counts / library[:, None]), atol=1e-5)


def test_posterior_sample_is_seeded_and_follows_the_posterior():
    torch.manual_seed(0)
    mu, logvar = torch.tensor([[1.0, -2.0]]).expand(20000, 2), torch.tensor([[0.0, math.log(0.25)]]).expand(20000, 2)
    probs = [torch.tensor([[0.7, 0.2, 0.1]]).expand(20000, 3), torch.tensor([[0.5, 0.5]]).expand(20000, 2)]
    z, onehots = posterior_sample(mu, logvar, probs, seed=3)
    z2, onehots2 = posterior_sample(mu, logvar, probs, seed=3)
    assert torch.equal(z, z2) and all(torch.equal(a, b) for a, b in zip(onehots, onehots2))
    z3, _ = posterior_sample(mu, logvar, probs, seed=4)
    assert not torch.equal(z, z3)
    assert torch.allclose(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.03)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 0.5]), atol=0.03)
    assert torch.allclose(onehots[0].mean(0), probs[0][0], atol=0.015)  # categorical draws, not the argmax
    assert (onehots[0].sum(1) == 1).all()
    zf, fixed = posterior_sample(mu, logvar, probs, seed=3, fixed={0: 2})
    assert (fixed[0][:, 2] == 1).all() and torch.equal(fixed[1], onehots[1]) and torch.equal(zf, z)  # shared noise


def test_interpolation_values_are_jittered_within_half_a_unit_and_seeded():
    observed = np.repeat([0.0, 0.5, 1.0, 7.0], 2500)
    values = U.jittered_values(observed, 0.5, seed=1)
    shift = values - observed
    assert (np.abs(shift) <= 0.5).all() and shift.min() < -0.49 and shift.max() > 0.49
    assert abs(shift.mean()) < 0.01 and np.histogram(shift, bins=5, range=(-0.5, 0.5))[0].min() > 1800  # uniform
    assert np.array_equal(values, U.jittered_values(observed, 0.5, seed=1))
    assert not np.array_equal(values, U.jittered_values(observed, 0.5, seed=2))
    assert np.array_equal(U.jittered_values(observed, 0.0, seed=1), observed)


def test_soft_neighbour_average_by_brute_force():
    rng = np.random.default_rng(0)
    z_free, z_diff = rng.normal(size=(6, 3)), rng.normal(size=(6, 2)) * 2
    expected = np.zeros_like(z_free)
    for i in range(6):
        w = np.array([0.0 if j == i else np.exp(-np.sum((z_diff[i] - z_diff[j]) ** 2) / 5.0) for j in range(6)])
        expected[i] = (w[:, None] * z_free).sum(axis=0) / w.sum()
    got = soft_neighbour_average(torch.tensor(z_free), torch.tensor(z_diff), 5.0).numpy()
    assert np.allclose(got, expected, atol=1e-10)


def test_layout_pools_rare_categories_and_maps_parents(tiny_rna):
    layout, arrays = build_layout(tiny_rna, dataset="pancreas", **SUPERVISION, min_obs=30, n_diffusion=0, n_free=2,
                                  free_discrete=[])
    counts = tiny_rna.obs["clusters"].astype(str).value_counts()
    clusters = layout["discrete"][0]
    assert clusters["categories"][-1] == "rare"
    assert set(clusters["categories"][:-1]) == set(counts[counts >= 30].index)
    codes = arrays["y_disc"][:, 0]
    rare_cells = tiny_rna.obs["clusters"].astype(str).isin(counts[counts < 30].index).to_numpy()
    assert (codes[rare_cells] == len(clusters["categories"]) - 1).all()
    link = layout["parents"][0]
    coarse = layout["discrete"][1]["categories"]
    for i, cat in enumerate(clusters["categories"][:-1]):  # each child's most frequent parent
        cells = tiny_rna.obs["clusters"].astype(str) == cat
        assert coarse[link["map"][i]] == tiny_rna.obs.loc[cells, "clusters_coarse"].astype(str).mode()[0]
    g2m = tiny_rna.obs["G2M_score"].to_numpy()
    assert layout["continuous"][1] == {"key": "G2M_score", "mean": pytest.approx(g2m.mean()),
                                       "sd": pytest.approx(g2m.std())}
    assert np.allclose(arrays["y_cont"][:, 1], (g2m - g2m.mean()) / g2m.std(), atol=1e-5)


@pytest.mark.parametrize("overrides, message", [
    ({"discrete_keys": ["celltype"]}, "obs has no column 'celltype' (discrete_keys"),
    ({"continuous_keys": ["age"]}, "obs has no column 'age' (continuous_keys"),
    ({"parent_keys": {"clusters": "lineage"}}, "obs has no column 'lineage' (parent_keys"),
    ({"continuous_keys": ["clusters"]}, "continuous column 'clusters' is not numeric"),
])
def test_bad_supervision_is_one_line(tiny_rna, tmp_path, overrides, message):
    with pytest.raises(InputError) as err:
        fit_method("unicoord", tiny_rna, dataset="pancreas", seed=0, outdir=tmp_path, overrides=overrides)
    text = str(err.value)
    assert message in text and "dataset 'pancreas'" in text and "Fix:" in text and "\n" not in text
    if "obs has no column" in text:
        assert "dataset_method_params.pancreas.unicoord" in text


def test_registered_and_same_seed_gives_identical_latent(tiny_rna, tmp_path):
    m = all_methods()["unicoord"]
    assert (m.family, m.modalities, m.uses_gpu, m.artifacts) == ("unicoord", ("rna",), True, ("model",))
    assert (m.defaults["lr"], m.defaults["batch_size"], m.defaults["epochs"], m.defaults["temperature"]) == \
        (5e-4, 128, 100, 0.67)
    assert m.defaults["latent_dim"] == 50 == m.origin.defaults["latent_dim"]  # the paper's free coordinates
    runs = [fit_method("unicoord", tiny_rna, dataset="pancreas", seed=3, outdir=tmp_path / f"r{i}",
                       overrides={**SUPERVISION, "epochs": 3}, global_params={"latent_dim": 4}) for i in range(2)]
    other = fit_method("unicoord", tiny_rna, dataset="pancreas", seed=4, outdir=tmp_path / "r2",
                       overrides={**SUPERVISION, "epochs": 3}, global_params={"latent_dim": 4})
    latent = runs[0]["X_latent"]
    # μ of 2 supervised + 4 free (no diffusion coordinates by default, as the authors' package); probabilities
    # of the clusters and clusters_coarse categories
    n_clusters = tiny_rna.obs["clusters"].nunique()
    assert latent.shape == (tiny_rna.n_obs, 6 + n_clusters + tiny_rna.obs["clusters_coarse"].nunique())
    assert np.array_equal(latent, runs[1]["X_latent"]) and not np.array_equal(latent, other["X_latent"])
    saved = torch.load(tmp_path / "r0" / "model.pt", weights_only=True)
    layout = saved["config"]["layout"]
    assert [d["key"] for d in layout["discrete"]] == ["clusters", "clusters_coarse"]
    assert saved["var_names"] == list(tiny_rna.var_names) == layout["var_names"]
    ref = U.Reference(tmp_path / "r0" / "model.pt")  # rebuilt from the file alone
    x = model_input(tiny_rna, "t")
    assert np.allclose(ref.encode(x)[0], latent[:, :6], atol=1e-6)
    data = {"x": torch.from_numpy(x)}  # the embedding is the posterior mean: two calls are identical
    assert np.array_equal(ref.model.latents(data)["X_latent"], ref.model.latents(data)["X_latent"])
    np.testing.assert_allclose(ref.model.latents(data)["X_latent"], latent, atol=1e-6)


def test_query_matrix_matches_genes_by_name_and_zero_fills(tiny_rna, caplog):
    rng = np.random.default_rng(0)
    counts = tiny_rna.layers["counts"][:20].toarray()
    keep = rng.permutation(tiny_rna.n_vars)[: tiny_rna.n_vars - 15]
    query = ad.AnnData(counts[:, keep], var=pd.DataFrame(index=tiny_rna.var_names[keep]))
    got = U.query_matrix(query, list(tiny_rna.var_names), "query", __import__("logging").getLogger("t"))
    sub = counts[:, keep].astype(np.float64)  # normalized on the query's own genes, highly expressed ones excluded
    library = sub.sum(axis=1) - sub[:, (sub > 0.05 * sub.sum(axis=1, keepdims=True)).any(axis=0)].sum(axis=1)
    for j, gene in enumerate(tiny_rna.var_names):
        where = np.flatnonzero(tiny_rna.var_names[keep] == gene)
        want = np.log1p(1e4 * sub[:, where[0]] / library) if len(where) else np.zeros(20)
        assert np.allclose(got[:, j], want, atol=1e-4)
    assert "15 of the reference's" in caplog.text


# ------------------------------------------------------------------------------------------ analyses
@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """One real snakemake run of every UniCoord analysis rule on 1200 real pancreas cells (1000 genes),
    with a short, faster-learning training (40 epochs, lr 2e-3, batch 64); its models are shared by the
    analysis tests below."""
    work = tmp_path_factory.mktemp("unicoord_wf")
    write_registry(work / "datasets.tsv", [r for r in shipped_rows(1200) if r["dataset"] == "pancreas"])
    config = write_config(
        work, datasets=str(work / "datasets.tsv"), methods=["unicoord"],
        preprocess={"min_genes": 50, "min_cells": 3, "n_features_rna": 1000, "n_features_atac": 1000},
        method_params={"unicoord": {"lr": 2e-3, "batch_size": 64}}, threads={"train": 1, "embed": 1, "evaluate": 1},
        analyses={"unicoord": {"datasets": ["pancreas"], "test_frac": 0.25, "epochs": 40,
                               "reconfiguration": {"source": "Ductal", "n_cells": 40,
                                                   "continuous": {"G2M_score": 1.0}},
                               "interpolation": {"key": "G2M_score", "source": "Ductal", "steps": 7},
                               "restoration": {"key": "clusters", "heldout": "Pre-endocrine", "stages": STAGES}}})
    targets = [f"{OUT}/{name}" for name in TARGETS]
    result = snakemake(work, config, "--cores", "2", *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    return work


@pytest.fixture(scope="module")
def analysis(workflow):
    """The workflow's preprocessed cells, split and the two trained models (split, restore)."""
    prep = ad.read_h5ad(workflow / "results/data/pancreas/preprocessed.h5ad")
    test = U.read_split(workflow / OUT / "split.tsv", prep)
    U.add_stage(prep, "clusters", STAGES, "pancreas")
    return {"prep": prep, "test": test, "x": model_input(prep, "p"),
            "split": U.Reference(workflow / OUT / "models/split/model.pt"),
            "restore": U.Reference(workflow / OUT / "models/restore/model.pt")}


def test_workflow_writes_every_analysis_output(workflow, analysis):
    out = workflow / OUT
    for name in TARGETS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for fig in ("label_prediction/accuracy", "reconfiguration/umap", "reconfiguration/dotplot",
                "interpolation/heatmap", "restoration/restoration", "reference/confusion"):
        assert (out / f"{fig}.png").is_file() and (out / f"{fig}.pdf").is_file()
    for step in ("label_prediction", "reconfiguration", "interpolation", "restoration", "reference"):
        assert (workflow / f"results/benchmarks/unicoord_{step}/pancreas.tsv").is_file()
    prep, test = analysis["prep"], analysis["test"]
    # the held-out cells never entered the split model's training
    info = json.loads((out / "models/split/train_info.json").read_text())
    assert info["n_train"] == int((~test).sum())
    accuracy = pd.read_csv(out / "label_prediction/accuracy.tsv", sep="\t").set_index("class")
    assert accuracy.loc["overall", "n_cells"] == test.sum()
    assert accuracy.loc["overall", "UniCoord"] > accuracy.loc["chance (majority class)", "UniCoord"] + 0.4
    generated = ad.read_h5ad(out / "reconfiguration/generated.h5ad")
    n_targets = prep.obs["clusters"].nunique() - 1
    assert generated.n_obs == 40 * (n_targets + 1) and set(generated.obs["source"]) == {"Ductal"}
    assert set(generated.obs["target"]) == set(prep.obs["clusters"]) - {"Ductal"} | {"G2M_score=1"}
    assert list(generated.var_names) == list(prep.var_names)
    moved = pd.read_csv(out / "reconfiguration/reconfiguration.tsv", sep="\t")
    # every target pulls the cells toward it, and most pull hardest toward themselves; with posterior draws
    # from this short training (C(t) ~ 0.1 nats) the transitional Ngn3 low EP (next to Ngn3 high EP) and the
    # rarest type, Delta (~17 training cells), can move slightly more toward a neighbour
    assert (moved["movement_toward_target"] > 0).all() and (moved["shift_correlation"] > 0.5).all()
    assert (moved["moves_most_toward"] == moved["target"]).mean() >= 5 / 7
    restoration = pd.read_csv(out / "restoration/restoration.tsv", sep="\t")
    assert bool(restoration["beats_baseline"].iloc[0])
    query = ad.read_h5ad(out / "reference/query.h5ad")
    assert query.n_obs == test.sum() and query.n_vars == prep.n_vars - round(0.2 * prep.n_vars)
    predictions = pd.read_csv(out / "reference/predictions.tsv", sep="\t")
    assert (predictions["true"] == predictions["clusters"]).mean() > 0.6
    trajectory = pd.read_csv(out / "interpolation/trajectory.tsv", sep="\t", index_col=0)
    assert trajectory.shape == (7, prep.n_vars) and trajectory.index.is_monotonic_increasing
    # the analysis models keep the paper's 50 free coordinates, whatever the workflow's latent_dim
    assert analysis["split"].layout["n_free"] == analysis["restore"].layout["n_free"] == 50


def test_split_is_stratified_and_seeded():
    labels = np.repeat(["a", "b", "c"], [100, 40, 1])
    test = U.heldout_split(labels, 0.25, 7)
    assert (test[labels == "a"].sum(), test[labels == "b"].sum(), test[labels == "c"].sum()) == (25, 10, 0)
    assert np.array_equal(test, U.heldout_split(labels, 0.25, 7))
    assert not np.array_equal(test, U.heldout_split(labels, 0.25, 8))


def test_label_prediction_beats_chance_by_far(analysis):
    prep, test, x, ref = analysis["prep"], analysis["test"], analysis["x"], analysis["split"]
    truth = U.truth_labels(prep.obs["clusters"], ref.discrete["clusters"])
    predicted = ref.predict(x[test])["clusters"].to_numpy()
    knn = U.knn_predict(x[~test], truth[~test], x[test])
    table = U.per_class_accuracy(truth[test], {"UniCoord": predicted, "kNN": knn}).set_index("class")
    chance = table.loc["chance (majority class)", "UniCoord"]
    assert table.loc["overall", "UniCoord"] == pytest.approx(np.mean(predicted == truth[test]))
    assert table.loc["overall", "UniCoord"] > chance + 0.4 and table.loc["balanced", "UniCoord"] > 0.6
    for label in ("Ductal", "Beta"):
        cells = truth[test] == label
        assert table.loc[label, "kNN"] == pytest.approx(np.mean(knn[cells] == label))


def test_reconfigured_cells_move_most_toward_their_target(analysis):
    prep, test, x, ref = analysis["prep"], analysis["test"], analysis["x"], analysis["split"]
    labels = U.truth_labels(prep.obs["clusters"], ref.discrete["clusters"])
    source = np.flatnonzero(test & (labels == "Ductal"))
    targets = ["Ngn3 high EP", "Pre-endocrine", "Alpha", "Beta", "Epsilon"]
    gen = U.reconfigure_cells(ref, x[source], prep.obs.iloc[source], key="clusters", source="Ductal",
                              targets=targets, continuous={"G2M_score": 1.0}, var_names=prep.var_names, seed=5)
    assert gen.n_obs == len(source) * 6 and set(gen.obs["target"]) == {*targets, "G2M_score=1"}
    # generated from a seeded posterior draw: the same seed repeats it, another seed draws other cells
    beta = ref.reconfigure(x[source], discrete={"clusters": "Beta"}, seed=5)
    assert np.array_equal(beta, ref.reconfigure(x[source], discrete={"clusters": "Beta"}, seed=5))
    assert np.array_equal(beta, np.asarray(gen.X[(gen.obs["target"] == "Beta").to_numpy()]))
    assert not np.allclose(beta, ref.reconfigure(x[source], discrete={"clusters": "Beta"}, seed=6))
    table = U.reconfiguration_table(gen, ref.reconfigure(x[source], seed=5), U.category_means(x, labels), "Ductal")
    assert (table["moves_most_toward"] == table["target"]).all(), table
    assert (table["movement_toward_target"] > table["largest_movement_other"]).all()
    assert (table["shift_correlation"] > 0.5).all()


def test_restoration_beats_the_nearest_observed_category(analysis):
    prep, test, x, ref = analysis["prep"], analysis["test"], analysis["x"], analysis["restore"]
    held = (prep.obs["clusters"] == "Pre-endocrine").to_numpy()
    labels = prep.obs["clusters"].astype(str).to_numpy()
    restored = ref.reconfigure(x[test & ~held], continuous={U.STAGE_KEY: 3.0}, seed=0)
    table = U.restoration_table(restored, x[held].mean(axis=0), U.category_means(x[~held], labels[~held]),
                                "Pre-endocrine")
    observed = table[table["kind"] == "observed"]
    best = observed["pearson"].max()
    assert np.corrcoef(x[labels == "Beta"].mean(axis=0), x[held].mean(axis=0))[0, 1] == \
        pytest.approx(observed.set_index("profile").loc["Beta", "pearson"])
    assert table["pearson"].iloc[0] > best and bool(table["beats_baseline"].iloc[0])


def test_interpolation_switches_on_the_mitotic_programme(analysis):
    """The same held-out ductal cells decoded at a low and at a high G2M_score: the mitotic genes rise."""
    prep, test, x, ref = analysis["prep"], analysis["test"], analysis["x"], analysis["split"]
    ductal = x[test & (prep.obs["clusters"] == "Ductal").to_numpy()]
    values = np.repeat([-0.3, 0.6], len(ductal))  # two bins of equal count: the low and the high setting
    trajectory = U.interpolate(ref, np.vstack([ductal, ductal]), "G2M_score", values, prep.var_names, steps=2)
    assert list(trajectory.index) == pytest.approx([-0.3, 0.6])
    g2m = [g for g in G2M_GENES if g in trajectory.columns]
    assert len(g2m) >= 5
    rise = trajectory[g2m].iloc[-1] - trajectory[g2m].iloc[0]
    assert (rise > 0).mean() > 0.8 and rise.mean() > 0.2
    top = U.top_varying_genes(trajectory, 20)
    assert len(set(top) & set(g2m)) >= 5
