"""Deep RNA baselines without a package (docs/methods.md §7): scDeepCluster and scDHMap.

One short two-phase training per method on the real tiny pancreas subset (shared by the checks), a
second one for determinism, and unit checks of the pieces that are easy to get wrong: the Student-t
soft assignment and its target distribution, the ZINB with a per-entry dispersion, the wrapped normal
on the Lorentz model, the perplexity calibration, the row-wise Cauchy KL and the Poincaré conversion.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from baseline_checks import assert_carries_labels, twice_fitted
from livaebench.errors import InputError
from livaebench.methods import all_methods, fit_method
from livaebench.methods.deep_clustering import DEFAULT_N_CLUSTERS, default_n_clusters
from livaebench.models import lorentz
from livaebench.models.likelihoods import ZeroInflatedNegativeBinomial
from livaebench.models.scdeepcluster import cluster_kl, soft_assign, target_distribution, zinb_nll_sum
from livaebench.models.scdhmap import (
    SCDHMap, SCDHMapConfig, cauchy_row_kl, log_sinhc, lorentz_to_poincare, perplexity_affinities,
    poincare_distance, poincare_from_tangent, symmetric_row_affinities, transport_from_origin,
)

FAST = {"pretrain_epochs": 12, "epochs": 12, "checkpoint_seconds": 1e9}
GLOBAL = {"latent_dim": 6}
# loss terms each phase logs: (first phase in outdir/, second phase in outdir/phase_<name>/)
PHASES = {"scdeepcluster": (("pretrain", {"zinb"}), ("cluster", {"zinb", "kl_cluster"})),
          "scdhmap": (("pretrain", {"zinb", "kl"}), ("train", {"zinb", "kl", "tsne"}))}


@pytest.fixture(scope="module")
def fits(tiny_rna, tmp_path_factory):
    """Two fits per method with seed 0 (the second for determinism); outdir of the first."""
    return twice_fitted({method: FAST for method in PHASES}, tiny_rna, tmp_path_factory, GLOBAL)


# ---------------------------------------------------------------------------- registry and fits
def test_registered_in_family_deep_rna():
    methods = all_methods()
    for name in PHASES:
        m = methods[name]
        assert (m.family, m.modalities, m.uses_gpu, m.artifacts) == ("deep_rna", ("rna",), True, ("model",))
    assert methods["scdeepcluster"].resolve_params(global_params={"latent_dim": 7})["latent_dim"] == 7
    assert methods["scdhmap"].resolve_params(global_params={"latent_dim": 7})["latent_dim"] == 2  # pinned
    d = methods["scdhmap"].defaults
    assert (d["tsne_weight"], d["kl_weight"], d["perplexity"], d["pretrain_epochs"], d["epochs"]) == \
        (1000.0, 10.0, 30.0, 100, 200)
    d = methods["scdeepcluster"].defaults
    assert (d["noise_sd"], d["gamma"], d["n_clusters"], d["pretrain_epochs"], d["epochs"]) == (2.5, 1.0, 0, 100, 50)


@pytest.mark.parametrize("method", sorted(PHASES))
def test_fit_shape_finite_and_carries_labels(fits, tiny_rna, method):
    (out, outdir), _ = fits[method]
    latent = out["X_latent"]
    width = GLOBAL["latent_dim"] if method == "scdeepcluster" else 2
    assert latent.shape == (tiny_rna.n_obs, width) and latent.dtype == np.float32
    assert np.isfinite(latent).all()
    if method == "scdhmap":
        assert np.linalg.norm(latent, axis=1).max() < 1.0  # inside the Poincaré disc
    assert_carries_labels(latent, tiny_rna.obs["clusters"])
    assert (outdir / "model.pt").is_file()


@pytest.mark.parametrize("method", sorted(PHASES))
def test_same_seed_gives_identical_embedding(fits, method):
    (first, _), (second, _) = fits[method]
    assert np.array_equal(first["X_latent"], second["X_latent"])


@pytest.mark.parametrize("method", sorted(PHASES))
def test_each_phase_logs_its_loss_terms(fits, method):
    (_, outdir), _ = fits[method]
    (_, first_terms), (second, second_terms) = PHASES[method]
    for path, terms in ((outdir / "train_log.tsv", first_terms),
                        (outdir / f"phase_{second}" / "train_log.tsv", second_terms)):
        lines = path.read_text().splitlines()
        header = lines[0].split("\t")
        assert header[0] == "epoch" and header[-3:] == ["loss", "val_loss", "seconds"]
        assert set(header[1:-3]) == terms
        assert len(lines) > 1
    if method == "scdeepcluster":  # the clustering phase runs its epochs in full (no early stopping)
        info = json.loads((outdir / "phase_cluster" / "train_info.json").read_text())
        assert (info["epochs_run"], info["stopped_early"]) == (FAST["epochs"], False)


def test_wrong_modality_and_bad_parameters_fail_with_one_line(tiny_atac, tiny_rna, tmp_path):
    for method in PHASES:
        with pytest.raises(InputError, match="does not support modality atac"):
            fit_method(method, tiny_atac, dataset="atac_bmmc", seed=0, outdir=tmp_path, overrides=FAST)
    with pytest.raises(InputError, match=r"n_clusters = 1000 for 300 cells\. Fix:"):
        fit_method("scdeepcluster", tiny_rna, dataset="pancreas", seed=0, outdir=tmp_path,
                   overrides={**FAST, "n_clusters": 1000})
    with pytest.raises(InputError, match=r"perplexity 30 needs minibatches of more cells \(batch size 16\)"):
        fit_method("scdhmap", tiny_rna, dataset="pancreas", seed=0, outdir=tmp_path,
                   overrides={**FAST, "batch_size": 16})


def test_number_of_clusters_defaults_to_the_label_categories(tiny_rna):
    assert default_n_clusters(tiny_rna) == tiny_rna.obs["clusters"].nunique()
    unlabelled = tiny_rna.copy()
    unlabelled.uns["livaebench"] = {**tiny_rna.uns["livaebench"], "label_key": ""}
    assert default_n_clusters(unlabelled) == DEFAULT_N_CLUSTERS


# ---------------------------------------------------------------------------- scDeepCluster pieces
def test_student_t_soft_assignment_and_target_by_hand():
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 1.0]], dtype=torch.float64)
    c = torch.tensor([[0.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
    q = soft_assign(z, c, alpha=1.0)
    assert torch.allclose(q.sum(1), torch.ones(3, dtype=torch.float64))
    # by hand: squared distances [[0, 5], [1, 2], [10, 1]] -> kernels 1/(1 + d²)
    kern = np.array([[1.0, 1 / 6], [1 / 2, 1 / 3], [1 / 11, 1 / 2]])
    q_hand = kern / kern.sum(1, keepdims=True)
    np.testing.assert_allclose(q.numpy(), q_hand, rtol=1e-12)
    f = q_hand.sum(0)
    p_hand = np.array([[q_hand[i, j] ** 2 / f[j] for j in range(2)] for i in range(3)])
    p_hand /= p_hand.sum(1, keepdims=True)
    p = target_distribution(q)
    np.testing.assert_allclose(p.numpy(), p_hand, rtol=1e-12)
    assert torch.allclose(p.sum(1), torch.ones(3, dtype=torch.float64))
    # the target sharpens: each cell's largest assignment grows
    assert torch.all(p.max(1).values >= q.max(1).values)
    kl = cluster_kl(p, torch.log(q))
    np.testing.assert_allclose(kl.numpy(), (p_hand * np.log(p_hand / q_hand)).sum(1), rtol=1e-10)
    # other degrees of freedom: (1 + d²/α)^(−(α+1)/2)
    q3 = soft_assign(z, c, alpha=3.0)
    sq = np.array([[0.0, 5.0], [1.0, 2.0], [10.0, 1.0]])
    k3 = (1 + sq / 3.0) ** -2.0
    np.testing.assert_allclose(q3.numpy(), k3 / k3.sum(1, keepdims=True), rtol=1e-12)


def test_zinb_with_per_entry_dispersion_equals_the_distribution():
    gen = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.rand(7, 11, generator=gen, dtype=torch.float64) * 4)
    log_mu = torch.randn(7, 11, generator=gen, dtype=torch.float64)
    log_theta = torch.randn(7, 11, generator=gen, dtype=torch.float64)
    pi_logits = torch.randn(7, 11, generator=gen, dtype=torch.float64)
    log_fact = torch.lgamma(x + 1).sum(1)
    ref = -ZeroInflatedNegativeBinomial(log_mu=log_mu, log_theta=log_theta, pi_logits=pi_logits).log_prob(x).sum()
    assert zinb_nll_sum(x, log_mu, log_theta, pi_logits, log_fact).item() == pytest.approx(ref.item(), rel=1e-12)


# ---------------------------------------------------------------------------- scDHMap pieces
def _tangents(n, d, seed, scale):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen, dtype=torch.float64) * scale


def test_lorentz_and_poincare_distances_agree():
    u, v = _tangents(200, 2, 0, 1.5), _tangents(200, 2, 1, 1.5)
    a, b = lorentz.exp_map0(u), lorentz.exp_map0(v)
    pa, pb = lorentz_to_poincare(a), lorentz_to_poincare(b)
    assert torch.all(pa.norm(dim=1) < 1)
    np.testing.assert_allclose(poincare_distance(pa, pb).numpy(), lorentz.distance(a, b).numpy(), rtol=1e-9)
    np.testing.assert_allclose(lorentz.tangent_distance(u, v).numpy(), lorentz.distance(a, b).numpy(), rtol=1e-9)
    # the exported coordinates tanh(‖u‖/2) u/‖u‖ are the same points
    np.testing.assert_allclose(poincare_from_tangent(u).numpy(), pa.numpy(), rtol=1e-12, atol=1e-15)
    # float32 export stays inside the disc at the clamp radius
    far = poincare_from_tangent(torch.tensor([[40.0, 0.0], [0.0, 15.0]]))
    assert torch.all(far.norm(dim=1) < 1)


def test_wrapped_normal_sample_density_and_prior():
    torch.manual_seed(0)
    model = SCDHMap(SCDHMapConfig(n_input=5)).double()
    m = _tangents(64, 2, 2, 2.0)
    sigma = torch.rand(64, 2, dtype=torch.float64) + 0.2
    z, log_q = model.sample_posterior(m, sigma)
    on_sheet = lorentz.lorentz_inner(z, z) + 1.0
    assert torch.all(on_sheet.abs() <= 1e-12 * z[:, 0].square()) and torch.all(z[:, 0] >= 1)
    # parallel transport gives a tangent vector at mu with the same norm
    mu = lorentz.exp_map0(m)
    v = _tangents(64, 2, 3, 1.0)
    u = transport_from_origin(v, mu)
    assert torch.allclose(lorentz.lorentz_inner(u, mu), torch.zeros(64, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(lorentz.lorentz_inner(u, u), v.square().sum(1), rtol=1e-9)
    # with mean at the origin and unit scale the posterior is the prior: log q(z) = log p(z)
    z0, log_q0 = model.sample_posterior(torch.zeros(64, 2, dtype=torch.float64), torch.ones(64, 2, dtype=torch.float64))
    np.testing.assert_allclose(log_q0.numpy(), model.log_prior(z0).numpy(), rtol=1e-9)
    # the Jacobian term: log(sinh x / x) against numpy, finite gradient at 0
    x = torch.tensor([0.0, 1e-6, 5e-3, 0.02, 1.0, 10.0, 40.0], dtype=torch.float64, requires_grad=True)
    ref = np.array([0.0, 1e-12 / 6, 5e-3 ** 2 / 6] + [math.log(math.sinh(t) / t) for t in (0.02, 1.0, 10.0, 40.0)])
    np.testing.assert_allclose(log_sinhc(x).detach().numpy(), ref, rtol=1e-6, atol=1e-14)
    log_sinhc(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_perplexity_calibration_and_cauchy_kl():
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(120, 10, generator=gen, dtype=torch.float64)
    y[:40] += 4.0
    p = perplexity_affinities(torch.cdist(y, y).square(), 15.0)
    assert torch.allclose(p.sum(1), torch.ones(120, dtype=torch.float64)) and torch.all(p.diag() == 0)
    entropy = -torch.special.xlogy(p, p).sum(1)
    np.testing.assert_allclose(torch.exp(entropy).numpy(), 15.0, rtol=1e-4)
    ps = symmetric_row_affinities(y, 15.0)
    assert torch.allclose(ps.sum(1), torch.ones(120, dtype=torch.float64)) and torch.all(ps.diag() == 0)
    # row-wise KL by hand on a 4-point example
    dist = torch.tensor([[0, 1, 2, 3], [1, 0, 1, 2], [2, 1, 0, 1], [3, 2, 1, 0]], dtype=torch.float64)
    pp = torch.tensor([[0, .5, .3, .2], [.4, 0, .4, .2], [.1, .6, 0, .3], [.2, .2, .6, 0]], dtype=torch.float64)
    kern = 1.0 / (1.0 + dist.numpy() ** 2)
    np.fill_diagonal(kern, 0.0)
    qq = kern / kern.sum(1, keepdims=True)
    off = ~np.eye(4, dtype=bool)
    hand = np.mean([(pp.numpy()[i, off[i]] * np.log(pp.numpy()[i, off[i]] / qq[i, off[i]])).sum() for i in range(4)])
    assert cauchy_row_kl(pp, dist).item() == pytest.approx(hand, rel=1e-12)
    assert cauchy_row_kl(torch.from_numpy(qq), dist).item() == pytest.approx(0.0, abs=1e-12)
