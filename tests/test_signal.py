"""Signal propagation: exact values, an independent adaptive-quadrature implementation,
and correlations measured in wide random tanh networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.optimize import brentq

from learnmech.theory import signal


def test_relu_boundary_is_he_initialization() -> None:
    """For ReLU without biases χ₁ = σ_w²/2 at every q, so the boundary is σ_w² = 2."""
    assert signal.chi1("relu", 1.5, 0.0) == pytest.approx(0.75, rel=1e-12)
    assert signal.critical_w_var("relu", 0.0) == pytest.approx(2.0, rel=1e-10)


def _gauss_mean(f, q: float) -> float:
    return integrate.quad(lambda z: f(math.sqrt(q) * z) * math.exp(-z * z / 2), -12, 12,
                          epsabs=1e-14)[0] / math.sqrt(2 * math.pi)


def test_tanh_boundary_matches_adaptive_quadrature() -> None:
    b_var = 0.05

    def chi(w_var: float) -> float:
        q = 1.0
        for _ in range(200):
            q = w_var * _gauss_mean(lambda x: math.tanh(x) ** 2, q) + b_var
        return w_var * _gauss_mean(lambda x: (1 - math.tanh(x) ** 2) ** 2, q)

    ref = brentq(lambda w: chi(w) - 1.0, 1.0, 2.0, xtol=1e-9)
    assert signal.critical_w_var("tanh", b_var) == pytest.approx(ref, rel=1e-6)


def test_depth_scale_is_the_asymptotic_decay_rate() -> None:
    for w_var in (1.3, 4.0):  # ordered and chaotic at σ_b² = 0.05
        q = signal.length_fixed_point("tanh", w_var, 0.05)
        c_star = signal.correlation_fixed_point("tanh", w_var, 0.05)
        prop = signal.propagate(q, q, c_star - 0.05 if c_star == 1.0 else c_star + 0.05, 40,
                                "tanh", w_var, 0.05)
        gap = np.abs(prop.c - c_star)
        ratio = gap[-1] / gap[-2]
        assert ratio == pytest.approx(math.exp(-1 / signal.depth_scale("tanh", w_var, 0.05)),
                                      rel=2e-3)
    assert signal.correlation_fixed_point("tanh", 1.3, 0.05) == 1.0
    assert signal.correlation_fixed_point("tanh", 4.0, 0.05) < 0.9


def test_correlation_map_matches_wide_random_networks() -> None:
    """Two inputs with correlation 0.2 through width-1000 tanh networks, W ~ N(0, σ_w²/n),
    b ~ N(0, σ_b²): the measured c (mean over 8 networks) and q follow the maps within
    finite-width noise (one network's c deviates by ≈ 0.05 at this width, the mean ≈ 0.02)."""
    g = torch.Generator().manual_seed(0)
    d, width, depth, w_var, b_var, nets = 50, 1000, 8, 2.5, 0.05, 8
    x = torch.randn(2, d, generator=g, dtype=torch.float64)
    x[1] = 0.2 * x[0] / x[0].norm() * x[1].norm() + math.sqrt(1 - 0.04) * x[1]
    cs, qs = np.zeros(depth), np.zeros(depth)
    for _ in range(nets):
        z = x @ torch.randn(d, width, generator=g, dtype=torch.float64) * math.sqrt(w_var / d)
        z = z + math.sqrt(b_var) * torch.randn(width, generator=g, dtype=torch.float64)
        for layer in range(depth):
            q = (z**2).mean(1)
            qs[layer] += float(q[0]) / nets
            cs[layer] += float((z[0] * z[1]).mean() / q.prod().sqrt()) / nets
            w = torch.randn(width, width, generator=g, dtype=torch.float64)
            z = torch.tanh(z) @ w * math.sqrt(w_var / width) + math.sqrt(b_var) * torch.randn(
                width, generator=g, dtype=torch.float64)
    first = w_var * (x**2).sum(1) / d + b_var
    c0 = float((w_var * x[0] @ x[1] / d + b_var) / first.prod().sqrt())
    prop = signal.propagate(float(first[0]), float(first[1]), c0, depth, "tanh", w_var, b_var)
    assert np.max(np.abs(cs - prop.c)) < 0.06
    assert np.max(np.abs(qs / prop.q11 - 1)) < 0.05
