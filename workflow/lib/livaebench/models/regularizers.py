"""Latent regularizers of the VAE family (docs/methods.md §2.3 and §7.2), each a per-minibatch scalar.

All take the encoder's posterior parameters (μ, log σ²) and/or samples z of one minibatch (B, d).
"""
from __future__ import annotations

import math

import torch


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per cell: ½ Σ_j (μ² + σ² − log σ² − 1); shape (B,)."""
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1.0).sum(-1)


def _log_normal_pairs(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z_i,k; μ_j,k, σ²_j,k) for every pair (i, j) and dimension k; shape (B, B, d)."""
    diff = z.unsqueeze(1) - mu.unsqueeze(0)
    return -0.5 * (math.log(2 * math.pi) + logvar.unsqueeze(0) + diff.square() * torch.exp(-logvar).unsqueeze(0))


def total_correlation(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int) -> torch.Tensor:
    """Total correlation KL(q(z) ‖ Π_k q(z_k)) by minibatch-weighted sampling (Chen et al. 2018, β-TCVAE).

    q(z_i) ≈ (1/(N B)) Σ_j q(z_i | x_j), and the same per dimension for the marginals q(z_ik).
    """
    b = z.shape[0]
    log_norm = math.log(dataset_size * b)
    pairs = _log_normal_pairs(z, mu, logvar)
    log_qz = torch.logsumexp(pairs.sum(-1), dim=1) - log_norm
    log_prod_marginals = (torch.logsumexp(pairs, dim=1) - log_norm).sum(-1)
    return (log_qz - log_prod_marginals).mean()


def dip_ii_penalty(mu: torch.Tensor, logvar: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """DIP-VAE-II (Kumar et al. 2018): push Cov_q(z) = Cov[μ] + E[diag σ²] towards the identity.

    λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)².
    """
    centered = mu - mu.mean(0, keepdim=True)
    cov = centered.T @ centered / mu.shape[0] + torch.diag(logvar.exp().mean(0))
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * off.square().sum() + lambda_d * (diag - 1.0).square().sum()


def mmd_rbf(a: torch.Tensor, b: torch.Tensor, bandwidth: float | None = None) -> torch.Tensor:
    """Squared maximum mean discrepancy with kernel exp(−‖x−y‖² / bandwidth) (V-statistic, ≥ 0).

    bandwidth defaults to the dimension d, a common scale for comparing a latent batch with N(0, I).
    """
    if bandwidth is None:
        bandwidth = float(a.shape[-1])
    both = torch.cat([a, b])
    sq = both.square().sum(-1)
    # squared distances without a square root, whose gradient is infinite on the zero diagonal
    d2 = torch.clamp(sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * both @ both.T, min=0.0)
    kernel = torch.exp(-d2 / bandwidth)
    na = a.shape[0]
    return kernel[:na, :na].mean() + kernel[na:, na:].mean() - 2.0 * kernel[:na, na:].mean()
