"""DiffVAE and Graph-DiffVAE (docs/methods.md §6.2-6.3): registration, short fits on real pancreas cells,
and the pieces against brute-force computations; a perturbation planted in synthetic data is recovered.

The analysis rules themselves run in tests/test_analyses_workflow.py (real snakemake).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from baseline_checks import assert_carries_labels, twice_fitted
from livaebench.analyses import diffvae as dv
from livaebench.errors import InputError
from livaebench.methods import all_methods, fit_method
from livaebench.models.diffvae import (DiffVAE, DiffVAEConfig, correlation_graph, correlation_neighbours,
                                       decoder_weight_product, load_model, mmd, top_links)
from livaebench.training import TrainConfig, torch_runtime, train

FAST = {"diffvae": {"epochs": 15, "checkpoint_seconds": 1e9}, "graph_diffvae": {"epochs": 120, "checkpoint_seconds": 1e9}}


@pytest.fixture(scope="module")
def fits(tiny_rna, tmp_path_factory):
    """Two fits per method with seed 0 (the second for determinism): (embeddings, outdir)."""
    return twice_fitted(FAST, tiny_rna, tmp_path_factory, {"latent_dim": 10})


# ---------------------------------------------------------------------------- registry and fits
def test_registered_in_family_diffvae_with_the_papers_settings():
    methods = all_methods()
    for name in FAST:
        m = methods[name]
        assert (m.family, m.modalities, m.uses_gpu, m.artifacts) == ("diffvae", ("rna",), True, ("model",))
        assert m.resolve_params(global_params={"latent_dim": 10})["latent_dim"] == 50  # pinned at the paper's 50
    d = methods["diffvae"].defaults
    assert (d["epochs"], d["batch_size"], d["lr"], d["latent_dim"]) == (100, 128, 1e-3, 50)
    g = methods["graph_diffvae"].defaults
    assert (g["epochs"], g["lr"], g["val_frac"], g["hidden"], g["n_neighbors"]) == (200, 1e-4, 0.0, 512, 1)


@pytest.mark.parametrize("method", sorted(FAST))
def test_fit_carries_labels_and_repeats_with_the_same_seed(fits, tiny_rna, method):
    (first, outdir), (second, _) = fits[method]
    latent = first["X_latent"]
    assert latent.shape == (tiny_rna.n_obs, 50) and np.isfinite(latent).all()
    assert_carries_labels(latent, tiny_rna.obs["clusters"])
    assert np.array_equal(latent, second["X_latent"])
    model = load_model(outdir / "model.pt", tiny_rna, "pancreas")
    if method == "diffvae":  # the saved model reproduces the embedding
        from livaebench.models.diffvae import scaled_input

        x, lo, rng = scaled_input(tiny_rna)
        np.testing.assert_allclose(model.embed(torch.from_numpy(x)), latent, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(model.x_range.numpy(), rng)
    else:
        np.testing.assert_allclose(model.embeddings()[0], latent, rtol=1e-5, atol=1e-5)


def test_predicted_links_are_enriched_for_same_type_pairs(fits, tiny_rna):
    (_, outdir), _ = fits["graph_diffvae"]
    model = load_model(outdir / "model.pt", tiny_rna, "pancreas")
    labels = tiny_rna.obs["clusters"].astype(str).to_numpy()
    given = dv.same_type_enrichment(model.input_adjacency(), labels)
    predicted = dv.same_type_enrichment(top_links(model.embeddings()[1], 10), labels)
    assert predicted["n_links"] == 10 * tiny_rna.n_obs
    # far more same-type partners than random partners would give
    assert predicted["same_type"] > 2.0 * predicted["chance"], predicted
    assert given["same_type"] > 2.0 * given["chance"], given
    fractions = dv.link_fractions(top_links(model.embeddings()[1], 10), labels)
    np.testing.assert_allclose(fractions.sum(axis=1), 1.0)
    assert np.mean(np.diag(fractions.to_numpy())) > 0.4


def test_wrong_modality_fails_with_one_line(tiny_atac, tmp_path):
    for method in FAST:
        with pytest.raises(InputError, match="does not support modality atac"):
            fit_method(method, tiny_atac, dataset="atac_bmmc", seed=0, outdir=tmp_path, overrides=FAST[method])


# ---------------------------------------------------------------------------- pieces against brute force
def test_mmd_equals_the_brute_force_double_sum():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(17, 5, generator=gen, dtype=torch.float64)
    b = torch.randn(23, 5, generator=gen, dtype=torch.float64) + 0.5

    def k(u, v):
        return float(np.exp(-np.sum((u - v) ** 2) / 5 ** 2))

    an, bn = a.numpy(), b.numpy()
    kaa = np.mean([k(u, v) for u in an for v in an])
    kbb = np.mean([k(u, v) for u in bn for v in bn])
    kab = np.mean([k(u, v) for u in an for v in bn])
    assert mmd(a, b).item() == pytest.approx(kaa + kbb - 2 * kab, rel=1e-12)
    assert mmd(a, a).item() == pytest.approx(0.0, abs=1e-12)


def test_decoder_weight_product_equals_decoding_differences_in_the_linear_regime():
    torch.manual_seed(0)
    model = DiffVAE(DiffVAEConfig(n_input=30, latent_dim=6, hidden=(20, 12))).double()
    linears = [m for m in model.decoder if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():  # biases large enough that every hidden ReLU stays active: the decoder is affine
        linears[0].bias.fill_(10.0)
        linears[1].bias.fill_(1000.0)
    z = torch.randn(4, 6, dtype=torch.float64)
    hidden = model.decoder[:2](z)
    assert (hidden > 0).all() and (model.decoder[:4](z) > 0).all()
    omega = decoder_weight_product(model)
    assert omega.shape == (6, 30)
    base = model.decode_logits(z)
    for k in range(6):
        shifted = z.clone()
        shifted[:, k] += 1.0
        diff = (model.decode_logits(shifted) - base).detach().numpy()
        np.testing.assert_allclose(diff, np.broadcast_to(omega[k], diff.shape), rtol=1e-9, atol=1e-9)


def test_correlation_neighbours_and_top_links_equal_dense_brute_force():
    rng = np.random.default_rng(0)
    x = rng.random((57, 12))
    idx, val = correlation_neighbours(x, k=3, block=10)
    r = np.corrcoef(x)
    np.fill_diagonal(r, -np.inf)
    np.testing.assert_array_equal(idx, np.argsort(-r, axis=1, kind="stable")[:, :3])
    np.testing.assert_allclose(val, np.sort(r, axis=1)[:, ::-1][:, :3])
    a = correlation_graph(x, 1)
    assert (a != a.T).nnz == 0 and a.diagonal().sum() == 0
    assert all(a[i, r[i].argmax()] == 1 for i in range(57))
    z = rng.normal(size=(57, 4))
    links = top_links(z, 5, block=8)
    s = z @ z.T
    np.fill_diagonal(s, -np.inf)
    for i in range(57):
        assert set(links[i].indices) == set(np.argsort(-s[i])[:5])
        np.testing.assert_allclose(np.sort(links[i].data), np.sort(1 / (1 + np.exp(-s[i, links[i].indices]))),
                                   rtol=1e-6)


def test_extreme_cells_shares_and_marker_dimensions_by_hand():
    z = np.array([[0.0, 5.0], [0.0, -5.0], [3.0, 0.0], [-3.0, 0.0], [0.0, 0.0], [0.1, 0.1]])
    groups = ["a", "a", "b", "a", "b", "b"]
    ext = dv.extreme_cells(z)
    np.testing.assert_array_equal(ext[:, 0], [False, False, True, True, False, False])
    np.testing.assert_array_equal(ext[:, 1], [True, True, False, False, False, False])
    shares = dv.dimension_shares(z, groups)
    assert shares.loc["dim0", "a"] == 0.5 and shares.loc["dim1", "a"] == 1.0 and shares.loc["dim1", "n_cells"] == 2
    markers = dv.marker_dimensions(shares, 1)
    assert markers.set_index("group")["dimension"].to_dict() == {"a": "dim1", "b": "dim0"}


def test_a_perturbation_planted_in_synthetic_data_is_recovered():
    """Target cells differ from source cells in genes 0-9 only; shifting the source cells along the target's
    marker dimensions must turn them into the target, more so with a larger λ, and move exactly genes 0-9 up."""
    rng = np.random.default_rng(0)
    labels = np.repeat(["S", "T", "O"], 200)
    x = np.full((600, 40), 0.2)
    x[labels == "T", :10] = 0.8
    x[labels == "O", 20:30] = 0.8
    x = np.clip(x + rng.normal(0, 0.08, x.shape), 0, 1).astype(np.float32)
    with torch_runtime(1, 0):
        model = DiffVAE(DiffVAEConfig(n_input=40, latent_dim=4, hidden=(64, 32)))
        train(model, {"x": torch.from_numpy(x)}, TrainConfig(epochs=40, batch_size=64, lr=1e-3, val_frac=0),
              seed=0, outdir=None, progress=False)
    z = model.embed(torch.from_numpy(x))
    clusters = dv.kmeans_clusters(z, 3, 0)
    markers = dv.marker_dimensions(dv.dimension_shares(z, clusters), 2)
    target_cluster = np.bincount(clusters[labels == "T"]).argmax()
    assert np.mean(clusters[labels == "T"] == target_cluster) > 0.95  # the clusters are the cell types
    dims = [int(d.removeprefix("dim")) for d in markers.loc[markers["group"] == str(target_cluster), "dimension"]]
    step = dv.plan_shift(z, labels == "S", clusters == target_cluster, dims)
    clf = dv.train_classifier(x, labels, seed=0)
    summary, predicted, decoded = dv.perturb(model.decode, clf.predict, z[labels == "S"], step, [0.5, 1.0, 2.0], "T")
    fractions = summary.set_index("lambda")["fraction_target"]
    assert fractions[0.0] < 0.05 and fractions[2.0] > 0.9  # unshifted: still source; shifted: target
    assert fractions.is_monotonic_increasing
    converted = (predicted[2.0] == "T") & (predicted[0.0] != "T")
    genes = dv.moved_genes(decoded[0.0], decoded[2.0], converted, [f"g{i}" for i in range(40)], 10)
    assert set(genes["gene"]) == {f"g{i}" for i in range(10)} and (genes["direction"] == "up").all()


def test_unknown_category_is_a_one_line_error():
    with pytest.raises(InputError, match=r"dataset 'pancreas': .*source 'Gamma' is not one of its cell types "
                                         r"\(Alpha, Beta\)\. Fix: set .*source"):
        dv.check_category(["Alpha", "Beta"], "Gamma", dataset="pancreas", setting="analyses.diffvae.perturbation.source")
    assert sp.issparse(top_links(np.eye(3), 1))
