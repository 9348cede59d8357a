"""Eigenlearning against empirical kernel ridge regression with a Gaussian design (where the
eigenfunctions are the coordinates, so test errors are exact), and the hypersphere
spectrum against closed-form Bessel coefficients."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.special import spherical_in

from learnmech.errors import InputError
from learnmech.theory.eigenlearning import (
    effective_regularization,
    eigensystem,
    learning_curve,
    predict,
    sphere_eigenvalues,
)

M = 800
LAM = np.arange(1, M + 1) ** -1.5
V = np.arange(1, M + 1) ** -0.8 * np.where(np.arange(M) % 3 == 0, -1.0, 1.0)


def test_kappa_solves_its_equation_and_the_conservation_law() -> None:
    for n, ridge in [(10, 0.0), (100, 0.0), (50, 1e-2)]:
        kappa = effective_regularization(LAM, n, ridge)
        learn = LAM / (LAM + kappa)
        assert learn.sum() + ridge / kappa == pytest.approx(n, rel=1e-10)
        p = predict(LAM, V, n, ridge)
        assert p.learnabilities.sum() == pytest.approx(n - ridge / kappa, rel=1e-10)
        assert p.overfitting >= 1.0
    with pytest.raises(InputError, match="n"):
        effective_regularization(LAM[:5], 10, 0.0)


def _krr_trial(n: int, ridge: float, noise: float, rng: np.random.Generator):
    """Exact population test MSE and train MSE of KRR with K(x,x') = Σ λ_i x_i x'_i."""
    x = rng.standard_normal((n, M))
    y = x @ V + noise * rng.standard_normal(n)
    k = (x * LAM) @ x.T
    inverse = np.linalg.pinv(k + ridge * np.eye(n))
    alpha = inverse @ y
    beta = LAM * (x.T @ alpha)  # f̂(x) = Σ β_i x_i
    test = float(np.sum((beta - V) ** 2) + noise**2)
    train = float(np.mean((y - k @ alpha) ** 2))
    # learnability of mode i: ⟨φ_i, f̂⟩ when the target is φ_i(x) = x_i alone
    top = x[:, :10]
    learn = LAM[:10] * np.einsum("ni,nm,mi->i", top, inverse, top)
    return test, train, learn


@pytest.mark.parametrize(("n", "ridge", "noise"), [(30, 0.0, 0.0), (120, 0.0, 0.1),
                                                   (60, 0.05, 0.2)])
def test_predictions_match_empirical_krr(n: int, ridge: float, noise: float) -> None:
    rng = np.random.default_rng(n)
    trials = [_krr_trial(n, ridge, noise, rng) for _ in range(40)]
    test = np.mean([t[0] for t in trials])
    train = np.mean([t[1] for t in trials])
    p = predict(LAM, V, n, ridge, noise)
    assert abs(test - p.test_mse) / p.test_mse < 0.08
    if ridge > 0:
        assert abs(train - p.train_mse) / p.train_mse < 0.12
    if noise == 0:  # per-mode learnability of the top modes
        learn = np.mean([t[2] for t in trials], axis=0)
        assert np.max(np.abs(learn[:10] - p.learnabilities[:10])) < 0.08


def test_learning_curve_decreases_with_n() -> None:
    curve = learning_curve(LAM, V, [5, 20, 80, 320])
    mses = [p.test_mse for p in curve]
    assert all(a > b for a, b in itertools.pairwise(mses))
    assert curve[0].target_learnability < curve[-1].target_learnability


def test_sphere_spectrum_of_the_exponential_kernel() -> None:
    """On S², e^{x·x'} = Σ_ℓ (2ℓ+1) i_ℓ(1) P_ℓ(x·x'): eigenvalues i_ℓ(1) with multiplicity
    2ℓ+1 under the uniform probability measure."""
    lam, mult = sphere_eigenvalues(np.exp, 3, 8)
    assert np.allclose(lam, spherical_in(np.arange(8), 1.0), rtol=1e-12)
    assert list(mult) == [2 * ell + 1 for ell in range(8)]
    for dim in (2, 5, 10):  # trace: Σ_ℓ N(d, ℓ) λ_ℓ = k(1)
        lam, mult = sphere_eigenvalues(np.exp, dim, 30)
        assert float(np.sum(mult * lam)) == pytest.approx(math.e, rel=1e-10)


def test_eigensystem_reconstructs_kernel_and_targets() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=g, dtype=torch.float64)
    k = torch.exp(-torch.cdist(x, x) ** 2)
    y = torch.randn(50, 2, generator=g, dtype=torch.float64)
    lam, v = eigensystem(k, y)
    assert np.all(np.diff(lam) <= 1e-15)
    assert np.sum(lam) == pytest.approx(float(k.trace()) / 50, rel=1e-10)
    assert np.sum(v**2) == pytest.approx(float((y**2).sum()) / 50, rel=1e-10)
