"""Linearized dynamics against real gradient descent on linear models, an ODE solver, and
a Monte-Carlo ensemble of Gaussian-process initializations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from learnmech.theory.linearized import (
    ensemble_prediction,
    parameter_change,
    predict_outputs,
    residual_modes,
)

G = torch.Generator().manual_seed(0)


def _features(n: int, p: int) -> torch.Tensor:
    return torch.randn(n, p, generator=G, dtype=torch.float64) / p**0.5


def test_gd_prediction_is_exact_for_a_linear_model() -> None:
    """f(x) = φ(x)ᵀθ with θ ∈ R^{p×O}: its NTK is φφᵀ and GD on 1/(2n)Σ‖y−f‖² follows the
    discrete formula exactly, on training and held-out points."""
    n, m, p, o = 12, 5, 40, 2
    phi_train, phi_test = _features(n, p), _features(m, p)
    theta0 = torch.randn(p, o, generator=G, dtype=torch.float64)
    y = torch.randn(n, o, generator=G, dtype=torch.float64)
    lr, steps = 0.7, 37
    theta = theta0.clone()
    for _ in range(steps):
        theta -= lr * phi_train.T @ (phi_train @ theta - y) / n
    train, test = predict_outputs(
        phi_train @ phi_train.T, y, phi_train @ theta0, lr * steps,
        ntk_test_train=phi_test @ phi_train.T, f0_test=phi_test @ theta0, lr=lr,
    )
    assert torch.allclose(train, phi_train @ theta, atol=1e-11)
    assert test is not None and torch.allclose(test, phi_test @ theta, atol=1e-11)


def test_parameter_change_is_exact_for_a_linear_model_with_two_learning_rates() -> None:
    """f = φ₁ᵀθ₁ + φ₂ᵀθ₂ trained by GD with per-tensor rates lr·w₁, lr·w₂ on
    1/(2n)Σ(y − f)²: each tensor's displacement is −w_p J_pᵀΘ⁻¹(I − (I − lrΘ/n)^k) r_0
    with Θ = w₁φ₁φ₁ᵀ + w₂φ₂φ₂ᵀ, exactly (iterated here step by step)."""
    n, p1, p2 = 10, 30, 7
    phi1, phi2 = _features(n, p1), _features(n, p2)
    w1, w2, lr, steps = 3.0, 0.5, 0.4, 53
    t1 = torch.randn(p1, generator=G, dtype=torch.float64)
    t2 = torch.randn(p2, generator=G, dtype=torch.float64)
    y = torch.randn(n, generator=G, dtype=torch.float64)
    a1, a2 = t1.clone(), t2.clone()
    for _ in range(steps):
        r = phi1 @ a1 + phi2 @ a2 - y
        a1, a2 = a1 - lr * w1 * phi1.T @ r / n, a2 - lr * w2 * phi2.T @ r / n
    theta = w1 * phi1 @ phi1.T + w2 * phi2 @ phi2.T
    r0 = phi1 @ t1 + phi2 @ t2 - y
    for phi, w, start, end in ((phi1, w1, t1, a1), (phi2, w2, t2, a2)):
        change = parameter_change(phi, w, theta, r0, lr * steps, lr=lr)
        assert torch.allclose(change, end - start, atol=1e-12)


def test_full_multi_output_kernel_equals_the_shared_kernel() -> None:
    n, o = 6, 3
    k = _features(n, 20) @ _features(n, 20).T + 0.1 * torch.eye(n, dtype=torch.float64)
    full = torch.einsum("ij,ab->ijab", k, torch.eye(o, dtype=torch.float64))
    y, f0 = torch.randn(n, o, generator=G, dtype=torch.float64), torch.zeros(n, o,
                                                                               dtype=torch.float64)
    a, _ = predict_outputs(k, y, f0, 3.0)
    b, _ = predict_outputs(full, y, f0, 3.0)
    assert torch.allclose(a, b, atol=1e-12)


def test_gradient_flow_matches_an_ode_solver() -> None:
    """d f_X/dt = −Θ(f_X − y)/n and d f_x/dt = −Θ(x, X)(f_X − y)/n, integrated by RK45.
    The kernel has a zero eigenvalue (rank-deficient) to exercise the λ → 0 limit."""
    n, m = 8, 4
    phi = _features(n + m, 6)  # rank 6 < n
    k = (phi @ phi.T).numpy()
    y = np.random.default_rng(1).normal(size=n)
    f0 = np.random.default_rng(2).normal(size=n + m)
    t_end = 5.0

    def rhs(_t: float, f: np.ndarray) -> np.ndarray:
        return -k[:, :n] @ (f[:n] - y) / n

    sol = solve_ivp(rhs, (0, t_end), f0, rtol=1e-11, atol=1e-12)
    train, test = predict_outputs(
        torch.tensor(k[:n, :n]), torch.tensor(y), torch.tensor(f0[:n]), t_end,
        ntk_test_train=torch.tensor(k[n:, :n]), f0_test=torch.tensor(f0[n:]),
    )
    assert np.allclose(train.numpy().ravel(), sol.y[:n, -1], atol=1e-8)
    assert test is not None and np.allclose(test.numpy().ravel(), sol.y[n:, -1], atol=1e-8)


def test_residual_modes_decay_independently() -> None:
    n = 10
    phi = _features(n, 30)
    k = phi @ phi.T
    r0 = torch.randn(n, 1, generator=G, dtype=torch.float64)
    t = torch.tensor([0.0, 1.0, 4.0])
    evals, evecs, pred = residual_modes(k, r0, t)
    for i, time in enumerate(t.tolist()):
        train, _ = predict_outputs(k, torch.zeros(n, 1, dtype=torch.float64), r0, time)
        assert torch.allclose(evecs.T @ train, pred[i], atol=1e-12)
    assert bool((evals[:-1] >= evals[1:]).all())


def test_ensemble_prediction_matches_monte_carlo_over_initializations() -> None:
    """Sample f_0 ~ GP(0, K) jointly on train and test points, evolve each sample with the
    linearized map, and compare the sample mean and covariance with the closed forms."""
    n, m = 6, 3
    a = _features(n + m, 12)
    nngp = a @ a.T + 0.05 * torch.eye(n + m, dtype=torch.float64)
    b = _features(n + m, 15)
    ntk = b @ b.T + nngp
    y = torch.randn(n, 1, generator=G, dtype=torch.float64)
    t = 2.5
    mean, cov = ensemble_prediction(ntk[:n, :n], nngp[:n, :n], y, t, ntk[n:, :n],
                                    nngp[n:, :n], nngp[n:, n:])
    samples = 40_000
    chol = torch.linalg.cholesky(nngp)
    f0 = chol @ torch.randn(n + m, samples, generator=G, dtype=torch.float64)
    _, test = predict_outputs(ntk[:n, :n], y.expand(n, samples), f0[:n], t,
                              ntk_test_train=ntk[n:, :n], f0_test=f0[n:])
    assert test is not None
    emp_mean = test.mean(1, keepdim=True)
    emp_cov = torch.cov(test)
    scale = cov.diagonal().sqrt()
    assert torch.allclose(emp_mean, mean, atol=float(4 * scale.max() / samples**0.5))
    assert float((emp_cov - cov).abs().max() / cov.abs().max()) < 0.03


def test_ntk_must_be_a_matrix() -> None:
    from learnmech.errors import InputError

    with pytest.raises(InputError, match="kernel"):
        predict_outputs(torch.zeros(3), torch.zeros(3, 1), torch.zeros(3, 1), 1.0)
