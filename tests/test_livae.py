"""LiVAE and its variants / VAE-family relatives: registry entries, loss terms, exports, on real data."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from livaebench.errors import InputError
from livaebench.methods import all_methods, fit_method
from livaebench.models.likelihoods import NegativeBinomial, Poisson, ZeroInflatedNegativeBinomial, ZeroInflatedPoisson
from livaebench.models.livae import LiVAE, LiVAEConfig, count_tensors
from livaebench.models.regularizers import dip_ii_penalty, gaussian_kl, mmd_rbf, total_correlation

FAST = {"epochs": 2, "checkpoint_seconds": 1e9}

# (loss terms in train_log.tsv, exports X_bottleneck) for each registered variant, from docs/methods.md §2.6 / §7.2
_LIVAE = ({"nll_main", "nll_bn", "kl", "geo"}, True)
EXPECTED = {
    "vae": ({"nll_main", "kl"}, False),
    "ivae": ({"nll_main", "nll_bn", "kl"}, True),
    "livae": _LIVAE,
    "ivae_nomain": ({"nll_bn", "kl"}, True),
    "ivae_nobn": ({"nll_main", "kl"}, False),
    "livae_nomain": ({"nll_bn", "kl", "geo"}, True),
    "livae_nobn": ({"nll_main", "kl", "geo"}, True),
    "livae_views": _LIVAE,
    **{f"livae_{lik}": _LIVAE for lik in ("nb", "zinb", "poisson", "zip")},
    **{f"livae_lambda{v}": _LIVAE for v in (1, 5, 10)},
    **{f"livae_k{v}": _LIVAE for v in (2, 4, 6, 8, 10)},
    **{f"livae_d{v}": _LIVAE for v in (5, 10, 15, 20)},
    "betavae": ({"nll_main", "kl"}, False),
    "betatcvae": ({"nll_main", "kl", "tc"}, False),
    "dipvae": ({"nll_main", "kl", "dip"}, False),
    "infovae": ({"nll_main", "kl", "mmd"}, False),
}


def test_registry_has_every_variant_with_its_family():
    methods = all_methods()
    assert set(EXPECTED) <= set(methods)
    families = {name: methods[name].family for name in EXPECTED}
    assert {n for n, f in families.items() if f == "livae"} == {"vae", "ivae", "livae"}
    assert {n for n, f in families.items() if f == "vae_family"} == {"betavae", "betatcvae", "dipvae", "infovae"}
    assert {n for n, f in families.items() if f == "likelihood"} == {f"livae_{k}" for k in ("nb", "zinb", "poisson", "zip")}
    assert all(methods[n].uses_gpu for n in EXPECTED)
    assert methods["livae_d15"].resolve_params(global_params={"latent_dim": 8})["latent_dim"] == 15  # pinned
    assert methods["livae"].resolve_params(global_params={"latent_dim": 8})["latent_dim"] == 8
    defaults = methods["livae"].defaults
    assert (defaults["lam"], defaults["beta"], defaults["batch_size"], defaults["lr"], defaults["grad_clip"]) == \
        (10.0, 1.0, 128, 1e-4, 1.0)


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_variant_trains_and_exports(tiny_rna, method, tmp_path):
    out = fit_method(method, tiny_rna, dataset="pancreas", seed=0, outdir=tmp_path, overrides=FAST)
    params = all_methods()[method].resolve_params(FAST)
    terms, bottleneck = EXPECTED[method]
    assert out["X_latent"].dtype == np.float32 and out["X_latent"].shape == (tiny_rna.n_obs, params["latent_dim"])
    assert ("X_bottleneck" in out) == bottleneck
    if bottleneck:
        assert out["X_bottleneck"].shape == (tiny_rna.n_obs, params["bottleneck_dim"])
        assert np.isfinite(out["X_bottleneck"]).all()
    header = (tmp_path / "train_log.tsv").read_text().splitlines()[0].split("\t")
    assert header == ["epoch", *[t for t in header[1:-3]], "loss", "val_loss", "seconds"]
    assert set(header[1:-3]) == terms
    assert (tmp_path / "model.pt").exists()


@pytest.mark.parametrize("likelihood,dist", [("nb", NegativeBinomial), ("zinb", ZeroInflatedNegativeBinomial),
                                             ("poisson", Poisson), ("zip", ZeroInflatedPoisson)])
def test_loss_terms_equal_a_direct_computation(tiny_rna, likelihood, dist):
    """Fused two-path decoding and the fast likelihood form against torch.distributions, term by term."""
    data, cap = count_tensors(tiny_rna)
    torch.manual_seed(0)
    model = LiVAE(LiVAEConfig(n_input=tiny_rna.n_vars, likelihood=likelihood, count_cap=cap))
    with torch.no_grad():  # a non-trivial bottleneck and dispersion, not the initial values
        model.bn_encode.weight.mul_(3.0)
        if hasattr(model, "log_theta"):
            model.log_theta.normal_()
    batch = {k: v[:64] for k, v in data.items()}
    torch.manual_seed(5)
    terms = model.loss_terms(batch)

    x, counts = batch["x"], batch["counts"]
    mu, logvar = model.encoder(x).chunk(2, dim=-1)
    torch.manual_seed(5)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    ld = model.bn_decode(model.bn_encode(z))
    lib = counts.sum(1, keepdim=True)

    def nll(h):
        log_mu = torch.log_softmax(model.decoder(h), -1) + torch.log(lib)
        kwargs = {"log_mu": log_mu}
        if likelihood in ("nb", "zinb"):
            kwargs["log_theta"] = model.log_theta
        if likelihood in ("zinb", "zip"):
            kwargs["pi_logits"] = model.dropout_head(h)
        return -dist(**kwargs).log_prob(counts).sum(-1).mean()

    kl = torch.distributions.kl_divergence(torch.distributions.Normal(mu, torch.exp(0.5 * logvar)),
                                           torch.distributions.Normal(0.0, 1.0)).sum(-1).mean()
    torch.testing.assert_close(terms["nll_main"], nll(z), rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(terms["nll_bn"], nll(ld), rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(terms["kl"], kl, rtol=1e-5, atol=1e-5)
    # L_geo: mean squared arcosh distance of the exponential maps, in float64 numpy
    def expmap(w):
        w = w.detach().double().numpy()
        r = np.linalg.norm(w, axis=1, keepdims=True)
        return np.concatenate([np.cosh(r), np.sinh(r) * w / r], axis=1)
    a, b = expmap(z), expmap(ld)
    geo = np.mean(np.arccosh(np.maximum(a[:, 0] * b[:, 0] - (a[:, 1:] * b[:, 1:]).sum(1), 1.0)) ** 2)
    assert terms["geo"].item() == pytest.approx(geo, rel=1e-4)
    assert set(terms) == {"nll_main", "nll_bn", "kl", "geo"}


def test_likelihood_defaults_follow_the_modality(tiny_rna, tiny_atac, tmp_path):
    fit_method("livae", tiny_atac, dataset="atac_bmmc", seed=0, outdir=tmp_path / "atac", overrides=FAST)
    fit_method("livae", tiny_rna, dataset="pancreas", seed=0, outdir=tmp_path / "rna", overrides=FAST)
    atac = torch.load(tmp_path / "atac" / "model.pt", weights_only=False)
    rna = torch.load(tmp_path / "rna" / "model.pt", weights_only=False)
    assert atac["config"]["likelihood"] == "zinb" and any(k.startswith("dropout_head") for k in atac["state_dict"])
    assert rna["config"]["likelihood"] == "nb" and not any(k.startswith("dropout_head") for k in rna["state_dict"])


def test_exports_are_mu_and_le_of_the_saved_model(tiny_rna, tmp_path):
    out = fit_method("livae", tiny_rna, dataset="pancreas", seed=2, outdir=tmp_path, overrides=FAST)
    saved = torch.load(tmp_path / "model.pt", weights_only=False)
    cfg = {k: v for k, v in saved["config"].items() if k != "class"}
    model = LiVAE(LiVAEConfig(**cfg))
    model.load_state_dict(saved["state_dict"])
    x = torch.from_numpy(tiny_rna.X)
    with torch.no_grad():
        mu = model.encoder(x)[:, :cfg["latent_dim"]]
        le = mu @ model.bn_encode.weight.T + model.bn_encode.bias
    np.testing.assert_allclose(out["X_latent"], mu.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["X_bottleneck"], le.numpy(), rtol=1e-5, atol=1e-6)
    assert saved["var_names"] == list(tiny_rna.var_names)


def test_trained_livae_separates_cell_types(tiny_rna, tmp_path):
    """A short training must already beat chance by far on real labels (a broken model gives ARI ~ 0)."""
    out = fit_method("livae", tiny_rna, dataset="pancreas", seed=0, outdir=tmp_path,
                     overrides={"epochs": 60, "lr": 1e-3, "checkpoint_seconds": 1e9})
    labels = tiny_rna.obs["clusters"].to_numpy()
    pred = KMeans(n_clusters=len(set(labels)), n_init=10, random_state=0).fit_predict(out["X_latent"])
    assert adjusted_rand_score(labels, pred) > 0.3


def test_bad_configuration_and_input_are_one_line_errors(tiny_rna, tmp_path):
    with pytest.raises(InputError, match="w_main and w_bn are both 0"):
        LiVAEConfig(n_input=10, w_main=0.0, w_bn=0.0)
    with pytest.raises(InputError, match="unknown parameter 'lambda'"):
        fit_method("livae", tiny_rna, dataset="pancreas", seed=0, outdir=tmp_path, overrides={"lambda": 3})
    broken = tiny_rna.copy()
    broken.X[0, 0] = np.nan
    with pytest.raises(InputError, match="dataset 'pancreas'.*NaN"):
        fit_method("livae", broken, dataset="pancreas", seed=0, outdir=tmp_path, overrides=FAST)
    del broken.layers["counts"]
    with pytest.raises(InputError, match="layers\\['counts'\\]"):
        fit_method("livae", broken, dataset="pancreas", seed=0, outdir=tmp_path, overrides=FAST)


# ---------------------------------------------------------------------------- regularizers
def test_gaussian_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(20, 5, generator=gen), torch.randn(20, 5, generator=gen)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, torch.exp(0.5 * logvar)),
                                            torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), ref)


def test_total_correlation_matches_an_explicit_minibatch_weighted_estimate():
    rng = np.random.default_rng(1)
    b, d, n = 12, 3, 500
    mu = rng.normal(size=(b, d))
    mu[:, 1] = mu[:, 0] + 0.1 * rng.normal(size=b)  # dependent dimensions: positive TC
    logvar = np.log(rng.uniform(0.05, 0.3, size=(b, d)))
    z = mu + np.exp(0.5 * logvar) * rng.normal(size=(b, d))
    per_dim = stats.norm.logpdf(z[:, None, :], mu[None, :, :], np.exp(0.5 * logvar)[None, :, :])  # (i, j, k)
    log_qz = np.log(np.exp(per_dim.sum(-1)).sum(1)) - np.log(n * b)
    log_marg = (np.log(np.exp(per_dim).sum(1)) - np.log(n * b)).sum(-1)
    expected = np.mean(log_qz - log_marg)
    got = total_correlation(*(torch.tensor(a) for a in (z, mu, logvar)), dataset_size=n)
    assert got.item() == pytest.approx(expected, rel=1e-9)
    assert expected > 0


def test_dip_penalty_against_a_hand_computed_covariance():
    mu = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]], dtype=torch.float64)
    logvar = torch.log(torch.full((4, 2), 0.5, dtype=torch.float64))
    # Cov[μ] = diag(0.5, 2) (population), + E[σ²] = 0.5 → diag(1.0, 2.5), no off-diagonal
    assert dip_ii_penalty(mu, logvar, 10.0, 3.0).item() == pytest.approx(3.0 * (0.0 + 1.5 ** 2))
    mu_corr = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)  # Cov = [[1,1],[1,1]] + 0.5 I
    lv = torch.log(torch.full((2, 2), 0.5, dtype=torch.float64))
    assert dip_ii_penalty(mu_corr, lv, 10.0, 3.0).item() == pytest.approx(10.0 * 2 * 1.0 + 3.0 * 2 * 0.5 ** 2)


def test_mmd_is_zero_for_equal_samples_and_grows_with_a_shift():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(200, 4, generator=gen)
    b = torch.randn(200, 4, generator=gen)
    assert mmd_rbf(a, a).abs().item() < 1e-6
    assert mmd_rbf(a, b).item() < 0.05 < mmd_rbf(a, b + 2.0).item()
