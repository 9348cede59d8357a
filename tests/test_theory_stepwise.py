"""Linear self-supervised stepwise theory against numerical integration and GD."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from learnmech.errors import InputError
from learnmech.theory.stepwise import (
    ssl_initial_strengths,
    ssl_loss,
    ssl_mode_trajectory,
    ssl_time_to_learn,
)


def test_logistic_solves_the_mode_ode():
    gamma, c0 = 0.7, 1e-4
    t = np.linspace(0, 4, 50)
    sol = solve_ivp(lambda _, c: 8 * gamma * c * (1 - c), (0, 4), [c0], t_eval=t, rtol=1e-11,
                    atol=1e-14)
    assert np.allclose(ssl_mode_trajectory(gamma, c0, t), sol.y[0], rtol=1e-7, atol=1e-12)
    t_half = ssl_time_to_learn(gamma, c0)
    assert ssl_mode_trajectory(gamma, c0, [t_half])[0] == pytest.approx(0.5)


def test_aligned_gradient_descent_follows_the_theory():
    """GD on L = ‖WΓWᵀ − I‖² from an aligned init W = diag(s)Vᵀ: each c_j is logistic."""
    gamma = torch.tensor([1.0, 0.5], dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0),
                                       dtype=torch.float64))
    big_gamma = q @ torch.diag(torch.tensor([1.0, 0.5, 0.1], dtype=torch.float64)) @ q.T
    c0 = np.array([1e-3, 2e-3])
    w = torch.diag(torch.tensor(np.sqrt(c0) / gamma.numpy())) @ q[:, :2].T
    lr, steps = 1e-3, 6000
    for _ in range(steps):
        c = w @ big_gamma @ w.T
        w = w - lr * 4 * (c - torch.eye(2, dtype=torch.float64)) @ w @ big_gamma
    measured = torch.linalg.eigvalsh(w @ big_gamma @ w.T).flip(0).numpy()
    t = lr * steps
    expected = [ssl_mode_trajectory(float(g), c, [t])[0] for g, c in zip(gamma, c0, strict=True)]
    assert measured == pytest.approx(expected, abs=3e-3)


def test_initial_strengths_by_hand_and_loss():
    w0 = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0]], dtype=torch.float64)
    v = torch.eye(3, 2, dtype=torch.float64)
    gamma = torch.tensor([0.5, 0.25], dtype=torch.float64)
    # W₀V = [[1, 1], [0, 2]]: R₁₁² = 1; the second column minus its projection is (0, 2)
    assert ssl_initial_strengths(w0, v, gamma) == pytest.approx([0.5, 1.0])
    assert ssl_loss(np.array([[0.0, 0.0], [1.0, 0.5]])).tolist() == [2.0, 0.25]
    assert ssl_time_to_learn(1.0, 0.9) == 0.0
    assert ssl_time_to_learn(2.0, 1e-3) == pytest.approx(math.log(999) / 16)
    with pytest.raises(InputError):
        ssl_time_to_learn(-1.0, 0.1)
