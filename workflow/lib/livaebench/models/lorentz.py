"""Lorentz (hyperboloid) model of hyperbolic space with curvature -1, as LiVAE's regularizer uses it.

Points live on H^d = {x in R^{d+1} : <x,x>_L = -1, x_0 > 0}; the origin is o = (1, 0, ..., 0).
Both functions are written for float32 training (METHODS §2):

* ``exp_map0`` must have a finite gradient at u = 0 (the bottleneck output can be exactly the input at
  initialisation) and must not overflow: ||u|| is clamped at ``max_norm`` (cosh 15 ~ 1.6e6 keeps
  <x,x>_L ~ 1e13 far from float32's limit).
* ``distance`` avoids arcosh(-<a,b>_L): near a = b the argument is 1 + tiny and float32 rounding of
  products of size cosh(r)^2 turns into a distance of order 1 (d(x,x) up to ~8 at norm 12), so the
  regularizer would push on rounding noise. Instead δ = cosh(d) - 1 is formed directly (for close
  points as ½<a-b, a-b>_L, exactly 0 for a = b) and d = log1p(δ + sqrt(δ(δ+2))) = arcosh(1 + δ).
* ``tangent_distance`` gives the same distance between exp0(u) and exp0(v) from u and v, with every
  term non-negative; the loss uses it (see there).
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


def _arcosh1p(delta: torch.Tensor) -> torch.Tensor:
    """arcosh(1 + δ) = log1p(δ + sqrt(δ(δ+2))) for δ >= 0, exactly 0 at δ = 0 with a finite gradient there."""
    q = delta * (delta + 2.0)
    positive = q > 0
    # sqrt has an infinite derivative at 0; evaluating it on a placeholder where q = 0 keeps the backward
    # pass finite (the where() then routes a zero gradient to that branch).
    root = torch.where(positive, torch.sqrt(torch.where(positive, q, torch.ones_like(q))), torch.zeros_like(q))
    return torch.log1p(delta + root)


def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Geodesic distance on H^d between points a, b (last dimension d+1), stable in float32.

    δ = cosh(d) − 1 has two exact forms with different rounding: ½<a−b, a−b>_L (METHODS §2; exact
    for close points, d(x, x) = 0) and −<a,b>_L − 1 (no cancellation for far points, e.g. from the
    origin to radius 12, where the difference form loses ~3 digits in float32). Each pair takes the
    form whose rounding error bound is smaller: ~‖a−b‖² for the first, ~a_0 b_0 for the second.
    """
    diff = a - b
    sq = diff * diff
    delta_diff = 0.5 * (sq[..., 1:].sum(-1) - sq[..., 0])
    delta_inner = -lorentz_inner(a, b) - 1.0
    use_diff = sq.sum(-1) < a[..., 0] * b[..., 0]
    delta = torch.clamp(torch.where(use_diff, delta_diff, delta_inner), min=0.0)  # rounding can give < 0
    return _arcosh1p(delta)


def tangent_distance(u: torch.Tensor, v: torch.Tensor, max_norm: float = 15.0) -> torch.Tensor:
    """d_L(exp0(u), exp0(v)) computed from the tangent vectors, without forming the points.

    By the hyperbolic law of cosines with r = ‖u‖, s = ‖v‖ (clamped at ``max_norm``) and the angle φ
    between them, cosh d − 1 = 2 sinh²((r − s)/2) + ½ sinh r sinh s ‖û − v̂‖². Both terms are
    non-negative, so float32 keeps its relative precision at every distance and radius (the point
    coordinates, ~cosh r, would carry absolute rounding of eps·cosh r). This is what L_geo uses.
    """
    r = torch.sqrt(torch.clamp((u * u).sum(-1, keepdim=True), min=_TINY_SQNORM))
    s = torch.sqrt(torch.clamp((v * v).sum(-1, keepdim=True), min=_TINY_SQNORM))
    chord = (u / r - v / s).square().sum(-1)  # ‖û − v̂‖² = 2 − 2 cos φ  (û := 0 at u = 0: sinh r = 0 there)
    r, s = torch.clamp(r, max=max_norm).squeeze(-1), torch.clamp(s, max=max_norm).squeeze(-1)
    delta = 2.0 * torch.sinh(0.5 * (r - s)).square() + 0.5 * torch.sinh(r) * torch.sinh(s) * chord
    return _arcosh1p(delta)


def origin(d: int, *, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """The origin (1, 0, ..., 0) of H^d as a (d+1)-vector."""
    o = torch.zeros(d + 1, dtype=dtype, device=device)
    o[0] = 1.0
    return o


def squared_distance_loss(u: torch.Tensor, v: torch.Tensor, max_norm: float = 15.0) -> torch.Tensor:
    """L_geo = mean_i d_L(exp0(u_i), exp0(v_i))^2 (LiVAE paper eq. 6) for two batches of tangent vectors."""
    return tangent_distance(u, v, max_norm).square().mean()
