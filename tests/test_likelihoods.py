"""Count likelihoods against scipy's log-pmf, and the fast training form against the direct formula."""
from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy import special, stats

from livaebench.errors import InputError
from livaebench.models.likelihoods import (
    LIKELIHOODS, NegativeBinomial, Poisson, ZeroInflatedNegativeBinomial, ZeroInflatedPoisson, count_tables,
    get_likelihood,
)

# zeros, small and large counts against small, moderate and huge means and dispersions
X = np.array([0, 0, 1, 3, 17, 250, 4096, 100_000, 0, 5], dtype=np.float64)
MU = np.array([1e-3, 40.0, 0.5, 3.0, 20.0, 260.0, 3000.0, 90_000.0, 1e4, 1e-2])
THETA = np.array([0.05, 2.0, 1.0, 50.0, 0.3, 10.0, 1e3, 5.0, 0.7, 1e4])
PI_LOGITS = np.array([-2.0, 1.5, 0.0, -8.0, 3.0, -1.0, 0.5, -30.0, 2.0, 0.3])


def _t(a, dtype=torch.float64):
    return torch.tensor(a, dtype=dtype)


def _scipy_nb(x, mu, theta):
    return stats.nbinom.logpmf(x, theta, theta / (theta + mu))


def _zero_inflated(x, logpmf_x, logpmf_0, pi):
    with np.errstate(divide="ignore"):
        return np.where(x == 0, np.log(pi + (1 - pi) * np.exp(logpmf_0)), np.log1p(-pi) + logpmf_x)


def test_nb_matches_scipy():
    ours = NegativeBinomial(mu=_t(MU), theta=_t(THETA)).log_prob(_t(X)).numpy()
    np.testing.assert_allclose(ours, _scipy_nb(X, MU, THETA), rtol=1e-9, atol=1e-9)


def test_poisson_matches_scipy():
    ours = Poisson(mu=_t(MU)).log_prob(_t(X)).numpy()
    np.testing.assert_allclose(ours, stats.poisson.logpmf(X, MU), rtol=1e-9, atol=1e-9)


def test_zinb_matches_scipy_mixture():
    pi = 1 / (1 + np.exp(-PI_LOGITS))
    ref = _zero_inflated(X, _scipy_nb(X, MU, THETA), _scipy_nb(0 * X, MU, THETA), pi)
    ours = ZeroInflatedNegativeBinomial(mu=_t(MU), theta=_t(THETA), pi_logits=_t(PI_LOGITS)).log_prob(_t(X)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)


def test_zip_matches_scipy_mixture():
    pi = 1 / (1 + np.exp(-PI_LOGITS))
    ref = _zero_inflated(X, stats.poisson.logpmf(X, MU), stats.poisson.logpmf(0 * X, MU), pi)
    ours = ZeroInflatedPoisson(mu=_t(MU), pi_logits=_t(PI_LOGITS)).log_prob(_t(X)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)


def test_float32_is_accurate_to_a_few_ulps_of_its_largest_term():
    lp32 = NegativeBinomial(mu=_t(MU, torch.float32), theta=_t(THETA, torch.float32)).log_prob(_t(X, torch.float32))
    # log p is a difference of terms as large as lgamma(x + θ) (~1e6 at x = 1e5): float32 can only be
    # as exact as those, so the bound scales with them (and is tight, ~1e-6, for small counts).
    scale = special.gammaln(X + THETA) + special.gammaln(X + 1) + X * np.abs(np.log(MU)) + THETA * np.abs(np.log(THETA)) + 1
    err = np.abs(lp32.double().numpy() - _scipy_nb(X, MU, THETA))
    assert np.all(err <= 1e-6 * scale), err / scale


def test_tiny_dropout_is_the_plain_model_and_certain_dropout_is_a_zero_mass():
    x, mu, theta = _t(X), _t(MU), _t(THETA)
    never = ZeroInflatedNegativeBinomial(mu=mu, theta=theta, pi_logits=torch.full_like(mu, -40.0)).log_prob(x)
    torch.testing.assert_close(never, NegativeBinomial(mu=mu, theta=theta).log_prob(x), rtol=1e-12, atol=1e-12)
    always = ZeroInflatedPoisson(mu=mu, pi_logits=torch.full_like(mu, 40.0)).log_prob(torch.zeros_like(mu))
    assert torch.all(always.abs() < 1e-12)  # log 1


def test_sample_moments_match_the_distribution():
    torch.manual_seed(0)
    for dist in (NegativeBinomial(mu=_t([4.0]), theta=_t([2.0])),
                 ZeroInflatedNegativeBinomial(mu=_t([4.0]), theta=_t([2.0]), pi_logits=_t([-0.5])),
                 ZeroInflatedPoisson(mu=_t([6.0]), pi_logits=_t([0.2]))):
        draws = dist.sample((200_000,))
        assert abs(draws.mean().item() - dist.mean.item()) < 0.05 * dist.mean.item()
        assert abs(draws.var().item() - dist.variance.item()) < 0.05 * dist.variance.item()


def test_default_likelihood_by_modality():
    assert get_likelihood("auto", "rna").name == "nb"
    assert get_likelihood("auto", "atac").name == "zinb"
    assert get_likelihood("ZIP").name == "zip"
    with pytest.raises(InputError, match="likelihood 'gauss'"):
        get_likelihood("gauss")


@pytest.fixture(scope="module")
def real_counts(shared_data):
    """Raw counts of 64 real pancreas cells x 300 genes (many zeros, a few counts in the hundreds)."""
    counts = ad.read_h5ad(shared_data / "pancreas.h5ad").X[:64, :300]
    return sp.csr_matrix(counts, dtype=np.float64)


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
@pytest.mark.parametrize("cap", [None, 3])  # cap 3 puts many counts in the tail path
def test_training_form_equals_the_direct_log_likelihood(real_counts, name, cap):
    lik = LIKELIHOODS[name]
    x = torch.from_numpy(real_counts.toarray())
    tables, used_cap = count_tables(real_counts, cap)
    assert used_cap == (cap or used_cap) and (cap is not None or 8 <= used_cap <= 64)
    gen = torch.Generator().manual_seed(1)
    g = x.shape[1]
    lib = x.sum(1)
    log_mu = torch.log_softmax(torch.randn(2, *x.shape, generator=gen, dtype=torch.float64), -1) + lib.log().unsqueeze(-1)
    log_theta = torch.randn(g, generator=gen, dtype=torch.float64, requires_grad=True)
    pi_logits = torch.randn(2, *x.shape, generator=gen, dtype=torch.float64) if lik.zero_inflated else None

    direct = lik.log_prob_rowsum(x, log_mu, log_theta if lik.dispersion else None, pi_logits)  # (2, cells)
    fast_rate = lik.rate_rowsum(x, log_mu, log_theta if lik.dispersion else None, pi_logits)
    tables = {k: v.double() if v.is_floating_point() else v for k, v in tables.items()}
    fast_count = lik.count_total(tables, log_theta if lik.dispersion else None, used_cap)
    fast = fast_rate.sum(-1) + fast_count
    # (the per-cell Σ lgamma(x+1) is stored in float32: relative 1e-8)
    torch.testing.assert_close(fast, direct.sum(-1), rtol=1e-8, atol=1e-6)
    if lik.dispersion:  # the histogram path must give the same dispersion gradient as lgamma/digamma
        (g_direct,) = torch.autograd.grad(direct.sum(), log_theta)
        (g_fast,) = torch.autograd.grad(fast.sum(), log_theta)
        torch.testing.assert_close(g_fast, g_direct, rtol=1e-8, atol=1e-6)


@pytest.mark.parametrize("cap", [None, 3])
def test_count_part_from_dense_counts_equals_the_stored_bins_bit_for_bit(real_counts, cap):
    """Training builds the histogram bins from each minibatch's dense counts (no cells x genes code table);
    value and dispersion gradient must be those of the stored ``count_code``, to the last bit."""
    lik = LIKELIHOODS["nb"]
    tables, used_cap = count_tables(real_counts, cap)
    counts = torch.from_numpy(real_counts.toarray().astype(np.float32))
    log_theta = torch.randn(counts.shape[1], generator=torch.Generator().manual_seed(2), requires_grad=True)
    stored = lik.count_total(tables, log_theta, used_cap)
    dense = lik.count_total({**{k: v for k, v in tables.items() if k != "count_code"}, "counts": counts},
                            log_theta, used_cap)
    assert torch.equal(dense, stored)
    (g_stored,) = torch.autograd.grad(stored, log_theta)
    (g_dense,) = torch.autograd.grad(dense, log_theta)
    assert torch.equal(g_dense, g_stored)


def test_count_tables_layout(real_counts):
    tables, cap = count_tables(real_counts, cap=5)
    dense = real_counts.toarray()
    g = dense.shape[1]
    code = tables["count_code"].numpy()
    np.testing.assert_array_equal(code % (cap + 1), np.minimum(dense, cap))
    np.testing.assert_array_equal(code // (cap + 1), np.broadcast_to(np.arange(g), dense.shape))
    tail_vals, tail_cols = tables["tail_vals"].numpy(), tables["tail_cols"].numpy()
    for i in range(dense.shape[0]):
        real = tail_vals[i] > cap
        assert sorted(tail_vals[i][real]) == sorted(dense[i][dense[i] > cap])
        np.testing.assert_array_equal(dense[i, tail_cols[i][real]], tail_vals[i][real])
    np.testing.assert_allclose(tables["log_factorial"].numpy(), special.gammaln(dense + 1).sum(1), rtol=1e-6)
    with pytest.raises(ValueError, match="integer"):
        count_tables(sp.csr_matrix(np.array([[0.5, 1.0]])))
