"""Intrinsic manifold quality of a latent space from its covariance spectrum (docs/methods.md §3, "Intrinsic").

Every score is a function of the eigenvalues λ₁ ≥ … ≥ λ_d of the sample covariance of Z, so the
module has one entry point on eigenvalues (``intrinsic_from_eigenvalues``, testable on hand-built
spectra) and one on data (``intrinsic_metrics``).

The scores need d ≥ 3 and more cells than dimensions (``REQUIREMENT``); outside that they raise.

Conventions where the spec leaves a choice:
- covariance with ddof = 1 (``np.cov``); eigenvalues below 0 (rounding) are set to 0;
- "Var" in the anisotropy term a₃ is the population variance (ddof = 0) of the d − 1 log-ratios;
- the τ thresholds of the dimensionality efficiencies are compared with a 1e-12 tolerance, so a
  cumulative share that is τ up to rounding (e.g. 0.8 from 0.53 + 0.27) counts as reaching τ;
- 1e-12 guards every division and logarithm of a possibly zero eigenvalue.
"""
from __future__ import annotations

import numpy as np

from ..results import INTRINSIC_METRICS
from .requirements import Domain, Requirement

EPS = 1e-12
NAMES = INTRINSIC_METRICS
EXTRAS = ("participation_norm",)

# What the scores need (requirements.py; docs/methods.md §3.7). With d = 2 the normalized spectrum is one
# number, r₁, and several scores are fixed by construction: the noise-resilience sum from λ₃ on is
# empty (score 1), directionality = r₁ ≥ 0.5, the elbow and Kaiser efficiencies are 1, the decay term of
# a two-point fit equals r₁, and a₃ is the variance of a single log-ratio (0). With n ≤ d cells the last
# d − n + 1 eigenvalues are zero for want of cells, not because of the latent.
REQUIREMENT = Requirement(
    min_dims=3, more_cells_than_dims=True,
    why="at d = 2 the spectrum is one number (r₁) and several scores are fixed by construction; "
        "with n ≤ d cells the last eigenvalues are 0 for want of cells")
REQUIREMENTS: dict[str, Requirement] = {name: REQUIREMENT for name in (*NAMES, *EXTRAS)}


def covariance_spectrum(z: np.ndarray) -> np.ndarray:
    """Eigenvalues of the sample covariance of ``z`` (cells × d), descending, clipped at 0."""
    z = np.asarray(z, dtype=np.float64)
    cov = np.atleast_2d(np.cov(z, rowvar=False))
    lam = np.linalg.eigvalsh(cov)[::-1]
    return np.clip(lam, 0.0, None)


def _log_slope(lam: np.ndarray) -> float:
    """OLS slope of log(λ_i + 1e-10) against the index i."""
    i = np.arange(lam.size, dtype=np.float64)
    y = np.log(lam + 1e-10)
    return float(np.polyfit(i, y, 1)[0])


def intrinsic_from_eigenvalues(eigenvalues) -> dict[str, float]:
    """The eight intrinsic scores from a covariance spectrum (any order; sorted descending here)."""
    lam = np.sort(np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None))[::-1]
    d = lam.size
    if d < REQUIREMENT.min_dims:
        raise ValueError(f"intrinsic scores: needs >= {REQUIREMENT.min_dims} latent dimensions (latent has {d})")
    total = lam.sum()
    if total <= 0:
        raise ValueError("the latent has zero variance in every dimension")
    r = lam / total

    # Manifold dimensionality: six efficiencies, each 1 when one direction suffices.
    cum = np.cumsum(r)
    eff = []
    for tau in (0.8, 0.9, 0.95):
        k_tau = int(np.argmax(cum >= tau - EPS)) + 1
        eff.append(1.0 - (k_tau - 1) / (d - 1))
    n_above_mean = int((lam > lam.mean()).sum())
    eff.append(1.0 - (n_above_mean - 1) / (d - 1))
    ratios = (lam[:-1] + EPS) / (lam[1:] + EPS)  # guarded on both sides: 0/0 counts as 1
    eff.append(1.0 - int(np.argmax(ratios)) / (d - 1))
    slope = _log_slope(lam)
    decay = 1.0 / (1.0 + np.exp(slope))
    eff.append(decay)
    manifold_dim = float(np.clip(np.mean(eff), 0.0, 1.0))

    spectral_decay = float(np.clip(0.6 * decay + 0.4 * r[0], 0.0, 1.0))

    pr = total**2 / (np.sum(lam**2) + EPS)
    d_eff = int((lam > 1e-10).sum())
    participation = float(1.0 - pr / d_eff)

    log_ratios = np.log(ratios)
    entropy = float(-np.sum(r * np.log(r + EPS)))
    a = (
        np.tanh(np.log(lam[0] / (lam[-1] + EPS)) / 4.0),
        np.tanh(np.mean(log_ratios) / 2.0),
        np.tanh(np.var(log_ratios)),
        1.0 - entropy / np.log(d),
        np.tanh(np.log(lam[0] / (lam[1:].sum() + EPS) + 1.0) / 2.0),
        1.0 - pr / d,
    )
    weights = (0.25, 0.25, 0.20, 0.15, 0.10, 0.05)
    anisotropy = float(np.dot(weights, a))

    rho = r[0] / (r[1:].sum() + EPS)
    directionality = float(rho / (1.0 + rho))
    noise_resilience = float(min(((lam[0] + lam[1]) / (lam[2:].sum() + EPS)) / 10.0, 1.0))

    core = float(np.mean([manifold_dim, spectral_decay, participation, anisotropy]))
    overall = 0.5 * core + 0.3 * directionality + 0.2 * noise_resilience
    return {
        "manifold_dim": manifold_dim,
        "spectral_decay": spectral_decay,
        "participation": participation,
        "anisotropy": anisotropy,
        "directionality": directionality,
        "noise_resilience": noise_resilience,
        "core_intrinsic": core,
        "overall_intrinsic": float(overall),
        # Extra (not in the paper): PR/d′ itself, 1 when every dimension carries equal variance. The paper
        # reads a higher `participation` as more uniform use of dimensions, but 1 − PR/d′ grows as the
        # variance collapses onto few dimensions; this is the score that means what the text says.
        "participation_norm": float(pr / d_eff),
    }


def intrinsic_metrics(z: np.ndarray) -> dict[str, float]:
    """The eight intrinsic scores of a latent ``z`` (cells × d), plus the extra ``participation_norm``.

    Outside ``REQUIREMENT`` (d < 3, or no more cells than dimensions) it raises ValueError with the reason.
    """
    z = np.asarray(z, dtype=np.float64)
    unmet = REQUIREMENT.unmet(Domain(dims=z.shape[1], cells={"all": z.shape[0]}))
    if unmet:
        raise ValueError(f"intrinsic scores: {unmet}")
    return intrinsic_from_eigenvalues(covariance_spectrum(z))
