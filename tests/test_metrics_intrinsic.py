"""Intrinsic scores on hand-built spectra whose values are worked out by hand (docs/methods.md §3.3)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import ortho_group

from livaebench.metrics.intrinsic import NAMES, covariance_spectrum, intrinsic_from_eigenvalues, intrinsic_metrics

LN2 = math.log(2.0)


def test_spectrum_4_2_1_1_by_hand():
    """λ = (4, 2, 1, 1): shares r = (1/2, 1/4, 1/8, 1/8), cumulative (1/2, 3/4, 7/8, 1), all exact.

    dimensionality efficiencies: k_0.8 = 3 → 1/3, k_0.9 = k_0.95 = 4 → 0; Kaiser: one λ above the
    mean 2 → 1; elbow: ratios (2, 2, 1), first argmax 0 → 1; log λ = (2, 1, 0, 0)·ln2 against
    i = 0..3 has OLS slope −3.5 ln2 / 5 = −0.7 ln2, so decay = 1 / (1 + 2^−0.7).
    PR = 8² / (16 + 4 + 1 + 1) = 64/22. Log-ratios (ln2, ln2, 0): mean 2ln2/3, population variance
    2 ln²2 / 9. Entropy of r = 1.75 ln2 against log 4 = 2 ln2. ρ = r₁ / (1 − r₁) = 1.
    """
    got = intrinsic_from_eigenvalues([1, 4, 1, 2])  # order does not matter
    decay = 1 / (1 + 2 ** -0.7)
    dim = (1 / 3 + 0 + 0 + 1 + 1 + decay) / 6
    pr = 64 / 22
    aniso = (0.25 * math.tanh(math.log(4) / 4)
             + 0.25 * math.tanh(LN2 / 3)
             + 0.20 * math.tanh(2 * LN2**2 / 9)
             + 0.15 * (1 - 1.75 / 2)
             + 0.10 * math.tanh(math.log(4 / 4 + 1) / 2)
             + 0.05 * (1 - pr / 4))
    spectral = 0.6 * decay + 0.4 * 0.5
    part = 1 - pr / 4
    core = (dim + spectral + part + aniso) / 4
    want = {
        "manifold_dim": dim,
        "spectral_decay": spectral,
        "participation": part,
        "anisotropy": aniso,
        "directionality": 0.5,
        "noise_resilience": (6 / 2) / 10,
        "core_intrinsic": core,
        "overall_intrinsic": 0.5 * core + 0.3 * 0.5 + 0.2 * 0.3,
        "participation_norm": pr / 4,  # the extra score: the normalized participation ratio itself
    }
    assert set(got) == set(NAMES) | {"participation_norm"}
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-9), k


def test_single_direction_spectrum():
    """λ = (1, 0, 0): one direction carries everything."""
    got = intrinsic_from_eigenvalues([1.0, 0.0, 0.0])
    # every efficiency is 1 except decay: slope of log(λ + 1e-10) = (0, ln 1e-10, ln 1e-10) is ln(1e-10)/2
    decay = 1 / (1 + math.exp(math.log(1e-10) / 2))
    assert got["manifold_dim"] == pytest.approx((5 + decay) / 6, abs=1e-9)
    assert got["participation"] == pytest.approx(0.0, abs=1e-9)  # PR = 1 over d' = 1 live direction
    assert got["directionality"] == pytest.approx(1.0, abs=1e-9)
    assert got["noise_resilience"] == 1.0  # capped
    assert got["spectral_decay"] == pytest.approx(min(0.6 * decay + 0.4, 1.0), abs=1e-9)


def test_isotropic_spectrum():
    """λ = (1, 1, 1, 1, 1): no preferred direction. PR = d, so participation = 0 and a₆ = 0."""
    got = intrinsic_from_eigenvalues(np.ones(5))
    assert got["participation"] == pytest.approx(0.0, abs=1e-12)
    assert got["directionality"] == pytest.approx(0.2, abs=1e-9)  # ρ = 0.2 / 0.8, ρ / (1 + ρ) = r₁
    # flat spectrum: a₁ = a₂ = a₃ = a₄ = 0 (H = log d), a₅ = tanh(log(1/4 + 1)/2), a₆ = 0
    assert got["anisotropy"] == pytest.approx(0.10 * math.tanh(math.log(1.25) / 2), abs=1e-9)
    # (λ₁ + λ₂) / (λ₃ + λ₄ + λ₅) = 2/3, over 10
    assert got["noise_resilience"] == pytest.approx(2 / 30, abs=1e-12)


def test_data_with_prescribed_covariance_gives_the_spectrum_scores():
    """Exactly whitened Gaussian data, scaled and rotated, has the prescribed covariance spectrum."""
    rng = np.random.default_rng(0)
    lam = np.array([9.0, 4.0, 2.0, 1.0, 0.5, 0.25])
    g = rng.normal(size=(500, 6))
    g -= g.mean(axis=0)
    g = g @ np.linalg.inv(np.linalg.cholesky(np.cov(g, rowvar=False)).T)  # sample covariance = I
    z = (g * np.sqrt(lam)) @ ortho_group.rvs(6, random_state=1) + 3.0
    np.testing.assert_allclose(covariance_spectrum(z), lam, rtol=1e-9)
    got, want = intrinsic_metrics(z), intrinsic_from_eigenvalues(lam)
    for k in NAMES:
        assert got[k] == pytest.approx(want[k], abs=1e-9), k


def test_scores_stay_in_range_and_reject_degenerate_latents():
    rng = np.random.default_rng(2)
    for _ in range(20):
        lam = rng.exponential(size=rng.integers(3, 30)) ** rng.uniform(0.5, 4)
        got = intrinsic_from_eigenvalues(lam)
        for k in ("manifold_dim", "spectral_decay", "directionality", "noise_resilience"):
            assert 0.0 <= got[k] <= 1.0, k
    for d in (1, 2):  # d = 2 is outside the domain: several scores would be fixed by construction
        with pytest.raises(ValueError, match=f"needs >= 3 latent dimensions \\(latent has {d}\\)"):
            intrinsic_metrics(rng.normal(size=(50, d)))
        with pytest.raises(ValueError, match="needs >= 3 latent dimensions"):
            intrinsic_from_eigenvalues(np.arange(1.0, d + 1))
    with pytest.raises(ValueError, match=r"needs more cells than latent dimensions \(5 for d = 8\)"):
        intrinsic_metrics(rng.normal(size=(5, 8)))
    with pytest.raises(ValueError, match="zero variance"):
        intrinsic_metrics(np.ones((50, 4)))
