"""Analytic NNGP/NTK against independent references: one-dimensional adaptive quadrature
with the inner Gaussian integral done in closed form, and Monte-Carlo kernels of real
random torch networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.special import erf, ndtr
from torch.func import functional_call, jacrev

from learnmech.errors import InputError
from learnmech.models import build_model
from learnmech.system import MLP
from learnmech.theory.kernels import (
    analytic_kernels,
    expectations_with_error,
    gaussian_expectations,
)

PAIRS = [(1.3, 0.7, 0.4), (0.5, 2.0, -0.9), (1.0, 1.0, 0.999), (2.0, 0.3, 0.0)]


def _conditional(q11: float, q22: float, q12: float) -> tuple[float, float]:
    """``v | z1 ~ N(a z1, s²)`` when ``u = √q11 z1``."""
    a = q12 / math.sqrt(q11)
    return a, math.sqrt(max(q22 - a * a, 0.0))


def _gauss(z: float) -> float:
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _reference(name: str, q11: float, q22: float, q12: float) -> tuple[float, float]:
    """``E[φ(u)φ(v)]`` and ``E[φ'(u)φ'(v)]`` by adaptive quadrature over ``z1``."""
    a, s = _conditional(q11, q22, q12)
    r = math.sqrt(q11)
    slope = 0.1

    def relu_mean(mu: float) -> float:  # E[relu(mu + s Z)]
        return mu * ndtr(mu / s) + s * _gauss(mu / s)

    if name in ("relu", "leaky_relu"):
        k_slope = slope if name == "leaky_relu" else 0.0

        def phi(x: float) -> float:
            return x if x > 0 else k_slope * x

        def mean_phi(mu: float) -> float:
            return k_slope * mu + (1 - k_slope) * relu_mean(mu)

        def dphi(x: float) -> float:
            return 1.0 if x > 0 else k_slope

        def mean_dphi(mu: float) -> float:
            return k_slope + (1 - k_slope) * ndtr(mu / s)

    elif name == "erf":
        phi, dphi = erf, lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x)

        def mean_phi(mu: float) -> float:
            return float(erf(mu / math.sqrt(1 + 2 * s * s)))

        def mean_dphi(mu: float) -> float:
            return 2 / math.sqrt(math.pi) * math.exp(-mu * mu / (1 + 2 * s * s)) / math.sqrt(
                1 + 2 * s * s
            )

    else:  # tanh, gelu: inner integral by quadrature as well
        if name == "tanh":
            phi, dphi = math.tanh, lambda x: 1 - math.tanh(x) ** 2
        else:
            phi, dphi = (lambda x: x * ndtr(x)), (lambda x: ndtr(x) + x * _gauss(x))

        def mean_phi(mu: float) -> float:
            return integrate.quad(lambda z: phi(mu + s * z) * _gauss(z), -12, 12,
                                  epsabs=1e-13)[0]

        def mean_dphi(mu: float) -> float:
            return integrate.quad(lambda z: dphi(mu + s * z) * _gauss(z), -12, 12,
                                  epsabs=1e-13)[0]

    def outer(f, mean_f) -> float:
        return integrate.quad(lambda z: f(r * z) * mean_f(a * z) * _gauss(z), -12, 12,
                              points=[0.0], epsabs=1e-13, epsrel=1e-12, limit=200)[0]

    return outer(phi, mean_phi), outer(dphi, mean_dphi)


# large variances put tanh's poles close to the real axis: 64 Gauss–Hermite nodes were
# wrong in the third digit there
WIDE_PAIRS = [(36.0, 30.0, 25.0), (40.0, 40.0, 39.9), (9.0, 0.2, 1.0)]


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "erf", "gelu", "tanh"])
def test_gaussian_expectations_at_defaults_match_adaptive_quadrature(name: str) -> None:
    """Every built-in activation within 1e-10 relative at the default call."""
    for q11, q22, q12 in PAIRS + WIDE_PAIRS:
        k, kdot = gaussian_expectations(
            name, *(torch.tensor(v, dtype=torch.float64) for v in (q11, q22, q12)),
            negative_slope=0.1,
        )
        rk, rkdot = _reference(name, q11, q22, q12)
        tol = 1e-10
        assert abs(float(k) - rk) < tol * max(1.0, abs(rk)), (q11, q22, q12)
        assert abs(float(kdot) - rkdot) < tol * max(1.0, abs(rkdot)), (q11, q22, q12)


def test_quadrature_error_estimate_bounds_the_error() -> None:
    """A fixed coarse rule reports an error estimate at least as large as its real error
    (against the nested adaptive reference); the default rule reports ≤ its tolerance."""
    q = (36.0, 30.0, 25.0)
    args = [torch.tensor(v, dtype=torch.float64) for v in q]
    rk, rkdot = _reference("tanh", *q)
    scale = math.sqrt(_reference("tanh", q[0], q[0], q[0])[0]
                      * _reference("tanh", q[1], q[1], q[1])[0])
    k, _, coarse = expectations_with_error("tanh", *args, quadrature_points=21)
    assert abs(float(k) - rk) / scale > 1e-8  # the coarse rule really is off
    assert coarse >= abs(float(k) - rk) / scale
    k, kdot, fine = expectations_with_error("tanh", *args)
    assert fine <= 1e-12 and abs(float(k) - rk) < 1e-12 and abs(float(kdot) - rkdot) < 1e-12
    with pytest.raises(InputError, match="quadrature_points"):
        gaussian_expectations("tanh", *args, quadrature_points=1)


def test_tanh_series_matches_adaptive_quadrature_on_a_grid_of_correlations() -> None:
    """tanh's Mehler series (one call, many entries with variances up to 3, correlations
    from −1 to 1, and a vanishing variance) against the nested adaptive reference: within
    1e-12 of the scale, and its error estimate below the tolerance."""
    grid = [(q11, q22, r * math.sqrt(q11 * q22)) for q11 in (0.3, 1.0, 3.0)
            for q22 in (0.0, 1.0, 3.0) for r in (-1.0, -0.5, 0.0, 0.7, 0.999, 1.0)]
    q11, q22, q12 = (torch.tensor(v, dtype=torch.float64) for v in zip(*grid, strict=True))
    k, kdot, err = expectations_with_error("tanh", q11, q22, q12)
    assert err <= 1e-12
    for n, (a, b, c) in enumerate(grid):
        rk, rkdot = _reference("tanh", a, b, c)
        assert abs(float(k[n]) - rk) < 1e-12 * max(1.0, abs(rk)), (a, b, c)
        assert abs(float(kdot[n]) - rkdot) < 1e-12 * max(1.0, abs(rkdot)), (a, b, c)


def test_identity_is_the_linear_kernel() -> None:
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    k = analytic_kernels(x, depth=3, activation="identity", w_std=1.5, b_std=0.5)
    w2, b2 = 2.25, 0.25
    lin = w2 * x @ x.T / 4 + b2
    nngp, ntk = lin.clone(), lin.clone()
    for _ in range(2):  # K ← w²K + b², Θ ← K + w²Θ for φ = identity
        nngp = w2 * nngp + b2
        ntk = nngp + w2 * ntk
    assert torch.allclose(k.nngp, nngp, rtol=1e-13)
    assert torch.allclose(k.ntk, ntk, rtol=1e-13)


def test_closed_form_agrees_with_the_quadrature_path() -> None:
    """The erf (arcsine) recursion vs the same network through Gauss–Hermite quadrature of
    a callable (the generic path, derivative by autograd), over a depth-4 recursion."""
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True) * math.sqrt(5)
    exact = analytic_kernels(x, depth=4, activation="erf", w_std=1.2, b_std=0.3)
    quad = analytic_kernels(x, depth=4, activation=torch.erf, w_std=1.2, b_std=0.3,
                            quadrature_points=128)
    for a, b in ((exact.nngp, quad.nngp), (exact.ntk, quad.ntk)):
        assert a is not None and b is not None
        assert float((a - b).abs().max() / a.abs().max()) < 1e-10


def _ntp_networks(activation: str, width: int, count: int, w_std: float, depth: int = 3):
    arch = MLP(width=width, depth=depth, activation=activation, parametrization="ntp",
               init_scale=w_std, bias=False)
    for seed in range(count):
        net, _ = build_model(arch, 4, 1, generator=torch.Generator().manual_seed(seed))
        yield net.double()


def _dense_ntk(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    params = {n: p.detach() for n, p in model.named_parameters()}
    jac = jacrev(lambda p: functional_call(model, p, (x,)))(params)
    j = torch.cat([v.reshape(x.shape[0], -1) for v in jac.values()], dim=1)
    return j @ j.T


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
def test_analytic_kernels_match_monte_carlo_networks(activation: str) -> None:
    """Random width-512 NTK-parametrized networks: the readout-marginalized output
    covariance and the NTK, averaged over 20 networks, within 7% of the analytic kernels
    (one network deviates by ~14% in Frobenius norm at this width, so the average by ~3%).

    learnmech's ``ntp`` draws ``W ~ N(0, σ²)`` with multiplier ``1/√fan_in``, where
    neural-tangents draws ``W ~ N(0, 1)`` with multiplier ``σ/√fan_in``: same function,
    but weight gradients smaller by ``σ``, so without biases its NTK is ``Θ_NT / σ²``."""
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    w_std = 1.5
    theory = analytic_kernels(x, depth=3, activation=activation, w_std=w_std)
    nngp, ntk = torch.zeros(8, 8, dtype=torch.float64), torch.zeros(8, 8, dtype=torch.float64)
    nets = list(_ntp_networks(activation, 512, 20, w_std))
    for net in nets:
        h = x
        with torch.no_grad():  # ntp: W ~ N(0, σ_w²), forward multiplier 1/√fan_in
            for layer in net.layers[:-1]:
                h = net._phi(h @ layer.weight.T / math.sqrt(layer.in_features))
        nngp += w_std**2 * h @ h.T / h.shape[1] / len(nets)
        ntk += _dense_ntk(net, x) / len(nets)
    assert theory.nngp is not None and theory.ntk is not None
    assert float((nngp - theory.nngp).norm() / theory.nngp.norm()) < 0.07
    target = theory.ntk / w_std**2
    assert float((ntk - target).norm() / target.norm()) < 0.07


def test_standard_parameterization_ntk_matches_a_finite_network() -> None:
    """An ``sp`` network (LeCun init, zero biases) of width n: its NTK (unit learning rate)
    is the 'standard' kernel at width n with b_std = 0 (biases present)."""
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    width = 512
    theory = analytic_kernels(x, depth=3, activation="relu", parameterization="standard",
                              width=width, b_std=0.0, get=("ntk",))
    arch = MLP(width=width, depth=3, activation="relu", parametrization="sp", bias=True)
    measured = torch.zeros(6, 6, dtype=torch.float64)
    for seed in range(16):
        net, _ = build_model(arch, 4, 1, generator=torch.Generator().manual_seed(seed))
        measured += _dense_ntk(net.double(), x) / 16
    assert theory.ntk is not None and theory.nngp is None
    assert float((measured - theory.ntk).norm() / theory.ntk.norm()) < 0.07


def test_blocks_and_cross_kernels_agree_with_the_full_matrix() -> None:
    x = torch.randn(24, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    full = analytic_kernels(x, depth=3, activation="tanh", b_std=0.2, quadrature_points=32)
    small = analytic_kernels(x[:15], x[6:], depth=3, activation="tanh", b_std=0.2,
                             quadrature_points=32, max_memory=100_000)
    assert full.ntk is not None and small.ntk is not None
    assert torch.allclose(full.ntk[:15, 6:], small.ntk, rtol=1e-12, atol=0)
    assert torch.allclose(full.ntk, full.ntk.T, rtol=1e-13)
    assert float(torch.linalg.eigvalsh(full.ntk).min()) > -1e-10


@pytest.mark.parametrize("w_std", [1.0, 3.0])
def test_tanh_kernels_by_series_match_a_fixed_fine_rule(w_std: float) -> None:
    """At defaults tanh's kernels come from the Mehler series with per-input tables (and,
    at w_std = 3, the quadrature for the diagonal entries it cannot bound), in blocks of 7
    rows: against a fixed 289-node two-dimensional rule, symmetric and cross kernels."""
    x = torch.randn(40, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    opts = {"depth": 3, "activation": "tanh", "w_std": w_std, "b_std": 0.1}
    ref = analytic_kernels(x, quadrature_points=289, **opts)
    full = analytic_kernels(x, max_memory=12 * 40 * 8 * 7, **opts)
    cross = analytic_kernels(x[:15], x[6:], **opts)
    assert full.error <= 1e-12
    for name in ("nngp", "ntk"):
        r, f = getattr(ref, name), getattr(full, name)
        assert torch.allclose(f, r, rtol=1e-11, atol=1e-11 * float(r.abs().max()))
        assert torch.allclose(getattr(cross, name), f[:15, 6:], rtol=1e-13, atol=1e-13)


def test_relu_kernel_of_equal_inputs_is_exact() -> None:
    """Round-off in the Gram of equal inputs must not leak into θ = arccos c."""
    x = torch.randn(30, 7, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    cross = analytic_kernels(x, x[:10].clone(), depth=5, activation="relu", w_std=1.3,
                             b_std=0.2).ntk
    assert cross is not None
    diag = torch.diagonal(cross[:10])
    q = 1.69 * (x[:10] ** 2).sum(1) / 7 + 0.04
    theta = q.clone()
    for _ in range(4):
        q = 1.69 * q / 2 + 0.04
        theta = q + 1.69 * 0.5 * theta
    assert float((diag - theta).abs().max() / theta.abs().max()) < 1e-14


def test_bad_input_is_named() -> None:
    x = torch.zeros(2, 3)
    with pytest.raises(InputError, match="activation"):
        analytic_kernels(x, depth=2, activation="softsign")
    with pytest.raises(InputError, match="width"):
        analytic_kernels(x, depth=2, parameterization="standard")
    with pytest.raises(InputError, match="depth"):
        analytic_kernels(x, depth=0)
    with pytest.raises(InputError, match="x2"):
        analytic_kernels(x, torch.zeros(2, 4), depth=2)


def test_numpy_free_of_gradients_and_device_follows_input() -> None:
    x = torch.randn(3, 2, dtype=torch.float32)
    k = analytic_kernels(x, depth=2)
    assert k.nngp is not None and k.nngp.dtype == torch.float64
    assert k.nngp.device == x.device and not k.nngp.requires_grad
    assert np.isfinite(k.nngp.numpy()).all()
