"""Lorentz geometry: exponential map at the origin and the stable distance (docs/methods.md §2.4)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from livaebench.models.lorentz import (
    distance, exp_map0, lorentz_inner, origin, squared_distance_loss, tangent_distance,
)

NORMS = [0.0, 1e-6, 0.01, 0.5, 1.0, 3.0, 8.0, 12.0, 15.0]


def _tangents(norms, d=10, seed=0, dtype=torch.float64):
    """Random directions scaled to the given norms."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(len(norms), d, generator=gen, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True) * torch.tensor(norms, dtype=torch.float64).unsqueeze(1)
    return u.to(dtype)


def _reference_distance(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Independent float64 reference: exp map and arcosh(−<a,b>_L) written out in numpy."""
    def expmap(w):
        r = np.linalg.norm(w, axis=1, keepdims=True)
        direction = np.divide(w, r, out=np.zeros_like(w), where=r > 0)
        return np.concatenate([np.cosh(r), np.sinh(r) * direction], axis=1)
    a, b = expmap(u), expmap(v)
    inner = -a[:, 0] * b[:, 0] + (a[:, 1:] * b[:, 1:]).sum(1)
    return np.arccosh(np.maximum(-inner, 1.0))


def test_points_lie_on_the_upper_sheet_of_the_hyperboloid():
    u64 = _tangents(NORMS)
    x = exp_map0(u64)
    assert x.shape == (len(NORMS), 11) and torch.all(x[:, 0] >= 1)
    # <x,x>_L = −1 up to rounding of terms of size x_0^2
    assert torch.all((lorentz_inner(x, x) + 1).abs() <= 1e-14 * x[:, 0] ** 2 + 1e-15)
    x32 = exp_map0(u64.float())
    assert torch.all((lorentz_inner(x32, x32).double() + 1).abs() <= 1e-6 * x32[:, 0].double() ** 2)


def test_distance_to_self_is_exactly_zero_in_float32():
    x = exp_map0(_tangents(NORMS + [20.0], dtype=torch.float32))
    assert torch.all(distance(x, x) == 0)


def test_distance_from_origin_is_the_tangent_norm():
    for dtype, rtol in ((torch.float64, 1e-10), (torch.float32, 2e-5)):
        norms = [0.01, 0.3, 1.0, 4.0, 12.0, 15.0]
        u = _tangents(norms, dtype=dtype)
        o = origin(10, dtype=dtype).expand(len(norms), 11)
        np.testing.assert_allclose(distance(o, exp_map0(u)).double().numpy(), norms, rtol=rtol)


def test_norm_is_clamped_at_15_but_the_direction_kept():
    u = _tangents([40.0])
    x = exp_map0(u)
    assert distance(origin(10, dtype=torch.float64).unsqueeze(0), x).item() == pytest.approx(15.0, rel=1e-12)
    direction = x[0, 1:] / x[0, 1:].norm()
    torch.testing.assert_close(direction, u[0] / u[0].norm())
    v = _tangents([3.0], seed=1)
    assert tangent_distance(u, v).item() == pytest.approx(distance(x, exp_map0(v)).item(), rel=1e-9)


def test_distance_is_symmetric_and_matches_a_float64_reference():
    u = _tangents([0.0, 0.01, 0.7, 2.0, 5.0, 12.0] * 3, seed=1)
    v = _tangents([0.3, 0.02, 0.7, 6.0, 1.0, 11.0] * 3, seed=2)
    a, b = exp_map0(u), exp_map0(v)
    assert torch.equal(distance(a, b), distance(b, a))
    np.testing.assert_allclose(distance(a, b).numpy(), _reference_distance(u.numpy(), v.numpy()), rtol=1e-8)


def test_float32_stable_form_agrees_with_float64_and_beats_arcosh():
    """docs/methods.md §2.4: at tangent norms 0.01-12 the stable float32 distance has median relative error <= 2e-6."""
    gen = np.random.default_rng(3)
    norms = np.exp(gen.uniform(np.log(0.01), np.log(12.0), size=400))
    u = _tangents(list(norms), seed=4)
    v = u + 0.5 * _tangents(list(gen.uniform(0.01, 1.0, size=400)), seed=5)  # nearby points: the hard case
    ref = _reference_distance(u.numpy(), v.numpy())
    a32, b32 = exp_map0(u.float()), exp_map0(v.float())
    stable = distance(a32, b32).double().numpy()
    naive = torch.acosh(torch.clamp(-lorentz_inner(a32, b32), min=1.0)).double().numpy()
    rel_stable = np.abs(stable - ref) / ref
    rel_naive = np.abs(naive - ref) / ref
    assert np.median(rel_stable) <= 2e-6
    assert np.median(rel_stable) * 10 < np.median(rel_naive)


def test_tangent_form_is_accurate_in_float32_at_every_radius_and_distance():
    """The loss's form: near and far pairs, radii up to the clamp, against the float64 reference."""
    gen = np.random.default_rng(10)
    norms = np.exp(gen.uniform(np.log(1e-3), np.log(15.0), size=600))
    u = _tangents(list(norms), seed=11)
    step = _tangents(list(np.exp(gen.uniform(np.log(1e-3), np.log(20.0), size=600))), seed=12)
    v = u + step
    v = v / v.norm(dim=1, keepdim=True) * torch.clamp(v.norm(dim=1, keepdim=True), max=15.0)
    u, v = u.float().double(), v.float().double()  # reference on the same (float32-rounded) inputs
    ref = _reference_distance(u.numpy(), v.numpy())
    got = tangent_distance(u.float(), v.float()).double().numpy()
    assert np.max(np.abs(got - ref) / ref) <= 2e-5
    # and in float64 it is the point-based distance of the exponential maps
    np.testing.assert_allclose(tangent_distance(u, v).numpy(), distance(exp_map0(u), exp_map0(v)).numpy(), rtol=1e-9)
    zero = torch.zeros_like(u[:5])
    np.testing.assert_allclose(tangent_distance(zero, u[:5]).numpy(), u[:5].norm(dim=1).numpy(), rtol=1e-12)


@pytest.mark.parametrize("scale", [0.0, 1e-8, 1.0, 14.0, 25.0, 1e3])
def test_squared_distance_loss_has_finite_gradients(scale):
    u = (_tangents([scale] * 4, seed=6, dtype=torch.float32)).requires_grad_(True)
    v = (_tangents([scale] * 4, seed=7, dtype=torch.float32)).requires_grad_(True)
    loss = squared_distance_loss(u, v)
    gu, gv = torch.autograd.grad(loss, (u, v))
    assert torch.isfinite(loss) and torch.isfinite(gu).all() and torch.isfinite(gv).all()
    # identical inputs (e.g. ld = z): zero distance, zero gradient, no NaN
    same = _tangents([scale] * 4, seed=6, dtype=torch.float32).requires_grad_(True)
    loss_same = squared_distance_loss(same, same.detach().clone())
    (g_same,) = torch.autograd.grad(loss_same, same)
    assert loss_same.item() == 0 and torch.all(g_same == 0)


def test_loss_gradient_matches_finite_differences():
    u = _tangents([0.3, 2.0, 7.0], seed=8).requires_grad_(True)
    v = _tangents([1.0, 2.5, 6.0], seed=9).requires_grad_(True)
    assert torch.autograd.gradcheck(squared_distance_loss, (u, v))
