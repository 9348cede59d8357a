"""Deep-linear theory against second algorithms: ODE solves, quadrature, simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from learnmech.errors import InputError
from learnmech.theory import dln


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_mode_trajectory_solves_the_mode_ode(depth):
    lam, s0 = 2.0, 1e-3
    t = np.linspace(0, 12, 40)
    ref = solve_ivp(lambda _, s: depth * s ** (2 - 2 / depth) * (lam - s), (0, 12), [s0],
                    t_eval=t, rtol=1e-11, atol=1e-14, method="Radau").y[0]
    np.testing.assert_allclose(dln.mode_trajectory(lam, s0, t, depth), ref, rtol=1e-6,
                               atol=1e-9)


@pytest.mark.parametrize("depth", [2, 3, 5])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_time_to_learn_is_where_the_trajectory_crosses(depth, fraction):
    lam, s0 = 1.5, 1e-4
    t_star = dln.time_to_learn(lam, s0, depth, fraction)
    # two independent numerical routes (quadrature of dt/ds, ODE integration of s(t))
    assert dln.mode_trajectory(lam, s0, [t_star], depth)[0] == pytest.approx(fraction * lam,
                                                                            rel=1e-5)


def test_depth2_half_time_closed_form_and_approximation():
    lam, s0 = 3.0, 1e-6
    assert dln.time_to_learn(lam, s0, 2) == pytest.approx(math.log(lam / s0 - 1) / (2 * lam))
    assert dln.time_to_learn(lam, s0, 2) == pytest.approx(math.log(lam / s0) / (2 * lam),
                                                          rel=1e-5)


def test_effective_initial_strength_matches_the_exact_early_phase():
    """Early phase of a depth-2 net: (a, b) evolve by d/dt [a; b] = λ [[0, I], [I, 0]] [a; b],
    so aᵀb(t) is computed exactly with a matrix exponential; its growing part is
    s₀ e^{2λt} with s₀ = ‖a₀+b₀‖²/4."""
    g = torch.Generator().manual_seed(0)
    h, lam = 20, 1.3
    w1, w2 = 1e-3 * torch.randn(h, 5, generator=g), 1e-3 * torch.randn(4, h, generator=g)
    u, v = torch.zeros(4, 1), torch.zeros(5, 1)
    u[1, 0], v[3, 0] = 1.0, 1.0
    s0 = dln.effective_initial_strength(w1, w2, u, v)[0]
    a0, b0 = (w1.double() @ v.double())[:, 0].numpy(), (w2.double().T @ u.double())[:, 0].numpy()
    gen = lam * np.block([[np.zeros((h, h)), np.eye(h)], [np.eye(h), np.zeros((h, h))]])
    t = 4.0
    ab = expm(gen * t) @ np.concatenate([a0, b0])
    assert ab[:h] @ ab[h:] == pytest.approx(s0 * math.exp(2 * lam * t), rel=1e-3)


def test_conserved_quantity_decays_under_weight_decay_in_simulation():
    """Gradient flow (tiny-step GD) of a depth-2 linear net with weight decay."""
    g = torch.Generator().manual_seed(1)
    w1, w2 = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(
        3, 6, generator=g, dtype=torch.float64)
    target = torch.randn(3, 4, generator=g, dtype=torch.float64)
    wd, dt, steps = 0.3, 1e-4, 20000
    c0 = torch.linalg.norm(w2.T @ w2 - w1 @ w1.T)
    for _ in range(steps):
        e = target - w2 @ w1
        w1, w2 = w1 + dt * (w2.T @ e - wd * w1), w2 + dt * (e @ w1.T - wd * w2)
    c = torch.linalg.norm(w2.T @ w2 - w1 @ w1.T)
    assert float(c) == pytest.approx(float(dln.conserved_decay(float(c0), wd, dt * steps)),
                                     rel=2e-3)


def test_bad_arguments_are_input_errors():
    with pytest.raises(InputError, match="s0"):
        dln.mode_trajectory(1.0, -0.1, [0.0, 1.0], 2)
    with pytest.raises(InputError, match="fraction"):
        dln.time_to_learn(1.0, 0.01, 2, fraction=1.5)


def _gd_balancedness(ws, sxx, syx, lr, steps, wd):
    """Plain float64 GD on ½ tr(WΣ_xxWᵀ) − tr(Σ_yxWᵀ) with weight decay; C_l at the end."""
    ws = [w.clone() for w in ws]
    for _ in range(steps):
        w1, w2, w3 = ws
        err = w3 @ w2 @ w1 @ sxx - syx
        grads = [(w3 @ w2).T @ err, w3.T @ err @ w1.T, err @ (w2 @ w1).T]
        ws = [(1 - lr * wd) * w - lr * g for w, g in zip(ws, grads)]
    return [ws[l + 1].T @ ws[l + 1] - ws[l] @ ws[l].T for l in range(2)]


@pytest.mark.parametrize("wd", [0.0, 0.2])
def test_balancedness_drift_is_the_first_order_term_of_gd(wd):
    """(C_GD(t) − (1 − ηλ)^{2k}C(0))/η converges to D(t) at rate O(η) (halving η halves the gap)."""
    g = torch.Generator().manual_seed(3)
    ws = [0.7 * torch.randn(5, 4, generator=g, dtype=torch.float64),
          0.7 * torch.randn(5, 5, generator=g, dtype=torch.float64),
          0.7 * torch.randn(3, 5, generator=g, dtype=torch.float64)]
    a = torch.randn(4, 4, generator=g, dtype=torch.float64)
    sxx = a @ a.T / 4 + 0.5 * torch.eye(4, dtype=torch.float64)
    syx = torch.randn(3, 4, generator=g, dtype=torch.float64)
    t = 2.0
    d = dln.balancedness_drift(ws, sxx, syx, [0.0, t], weight_decay=wd)
    c0 = [ws[l + 1].T @ ws[l + 1] - ws[l] @ ws[l].T for l in range(2)]
    assert np.abs(d[0][0]).max() == 0.0 and d[0].shape == (2, 5, 5)
    gaps = []
    for lr in (0.004, 0.002):
        c = _gd_balancedness(ws, sxx, syx, lr, round(t / lr), wd)
        shrink = (1 - lr * wd) ** (2 * round(t / lr))
        coef = [(cl - shrink * c0l).numpy() / lr for cl, c0l in zip(c, c0)]
        gaps.append(max(np.linalg.norm(k - dl[-1]) / np.linalg.norm(dl[-1])
                        for k, dl in zip(coef, d)))
    assert gaps[1] < 0.04
    assert gaps[0] / gaps[1] == pytest.approx(2.0, rel=0.15)
