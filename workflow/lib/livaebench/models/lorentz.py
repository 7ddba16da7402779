"""Lorentz (hyperboloid) model of hyperbolic space with curvature -1, as LiVAE's regularizer uses it.

Points live on H^d = {x in R^{d+1} : <x,x>_L = -1, x_0 > 0}; the origin is o = (1, 0, ..., 0).
Both functions are written for float32 training (METHODS §2):

* ``exp_map0`` must have a finite gradient at u = 0 (the bottleneck output can be exactly the input at
  initialisation) and must not overflow: ||u|| is clamped at ``max_norm`` (cosh 15 ~ 1.6e6 keeps
  <x,x>_L ~ 1e13 far from float32's limit).
* ``distance`` avoids arcosh(-<a,b>_L): near a = b the argument is 1 + tiny and float32 rounding of
  products of size cosh(r)^2 turns into a distance of order 1 (d(x,x) up to ~8 at norm 12), so the
  regularizer would push on rounding noise. Instead δ = ½<a-b, a-b>_L = cosh(d) - 1 is formed from the
  difference (exactly 0 for a = b) and d = log1p(δ + sqrt(δ(δ+2))) = arcosh(1 + δ).
"""
from __future__ import annotations

import torch

# Below this squared norm u is treated as the zero vector when forming u/||u|| (float32 still resolves
# ||u|| = 1e-10, and sinh(r)/r is exactly 1 there).
_TINY_SQNORM = 1e-20


def lorentz_inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """<a,b>_L = -a_0 b_0 + sum_{j>=1} a_j b_j over the last dimension."""
    prod = a * b
    return prod[..., 1:].sum(-1) - prod[..., 0]


def exp_map0(u: torch.Tensor, max_norm: float = 15.0) -> torch.Tensor:
    """Exponential map at the origin: u in R^d (tangent space at o) -> (cosh r, sinh r * u/r) in H^d, r = ||u||.

    r is clamped at ``max_norm`` for the magnitude only; the direction u/||u|| is kept.
    """
    sq = (u * u).sum(-1, keepdim=True)
    # Flooring the squared norm before the square root keeps d r/d u finite at u = 0; below the floor
    # the clamp has zero gradient and the sinh(r)/r factor is 1, so x_spatial = u exactly as it should.
    r = torch.sqrt(torch.clamp(sq, min=_TINY_SQNORM))
    r_c = torch.clamp(r, max=max_norm)
    spatial = u * (torch.sinh(r_c) / r)
    return torch.cat([torch.cosh(r_c), spatial], dim=-1)


def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Geodesic distance on H^d between points a, b (last dimension d+1), stable in float32.

    d(x, x) is exactly 0 and d^2 has a finite (zero) gradient there, which the squared-distance loss needs.
    """
    diff = a - b
    delta = torch.clamp(0.5 * lorentz_inner(diff, diff), min=0.0)  # rounding can make it slightly < 0
    q = delta * (delta + 2.0)
    positive = q > 0
    # sqrt has an infinite derivative at 0; evaluating it on a placeholder where q = 0 keeps the backward
    # pass finite (the where() then routes a zero gradient to that branch).
    root = torch.where(positive, torch.sqrt(torch.where(positive, q, torch.ones_like(q))), torch.zeros_like(q))
    return torch.log1p(delta + root)


def origin(d: int, *, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """The origin (1, 0, ..., 0) of H^d as a (d+1)-vector."""
    o = torch.zeros(d + 1, dtype=dtype, device=device)
    o[0] = 1.0
    return o


def squared_distance_loss(u: torch.Tensor, v: torch.Tensor, max_norm: float = 15.0) -> torch.Tensor:
    """L_geo = mean_i d_L(exp0(u_i), exp0(v_i))^2 (LiVAE paper eq. 6) for two batches of tangent vectors."""
    return distance(exp_map0(u, max_norm), exp_map0(v, max_norm)).square().mean()
