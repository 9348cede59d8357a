"""Kernel ridge regression on a finite pool of points: the experiment that eigenlearning
(:mod:`learnmech.theory.eigenlearning`) predicts.

A pool of ``M`` points stands for the data distribution: its kernel matrix ``K`` ``(M, M)``
and targets ``Y`` ``(M, O)``. KRR trains on ``n`` pool points ``X`` drawn without
replacement, ``f̂(x) = K(x, X) (K(X, X) + δ I)⁻¹ Y_X``, and is tested on the whole pool.
With the pool's eigensystem ``K/M = Σ_i λ_i u_i u_iᵀ`` and eigenfunctions ``φ_i = √M u_i``
(mean ``φ_i² = 1`` over the pool, so ``K = Σ_i λ_i φ_i φ_iᵀ``), the learnability of mode
``i`` on one draw is the fraction of the target ``φ_i`` that KRR recovers along ``φ_i``:
``L̂_i = ⟨φ_i, f̂[φ_i]⟩_pool = λ_i φ_i(X)ᵀ (K(X, X) + δ I)⁻¹ φ_i(X)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class PoolRegression:
    """KRR on ``n`` points of a pool with ridge ``ridge``, averaged over draws.

    MSEs are means over points of the squared error summed over the outputs (no ½);
    ``learnabilities`` holds ``L̂_i`` of the modes asked for, ``(modes,)``.
    """

    n: int
    ridge: float
    test_mse: float
    train_mse: float
    learnabilities: np.ndarray


def pool_regression(kernel: Tensor, targets: Tensor, n: int, ridge: float, trials: int,
                    seed: int, eigenvalues: Tensor, eigenfunctions: Tensor) -> PoolRegression:
    """KRR on ``trials`` draws of ``n`` pool points (seeded by ``seed``), tested on the pool.

    Args:
        kernel: ``K`` on the pool, ``(M, M)``, float64.
        targets: ``Y``, ``(M, O)``.
        n, ridge: training points per draw and the ridge ``δ``.
        eigenvalues: ``λ_i`` of ``K/M`` for the modes whose learnability is measured,
            ``(modes,)``.
        eigenfunctions: their ``φ_i`` on the pool, ``(M, modes)``.
    """
    gen = torch.Generator().manual_seed(seed)
    m = kernel.shape[0]
    tests, trains, learns = [], [], []
    for _ in range(trials):
        idx = torch.randperm(m, generator=gen)[:n]
        rows = kernel[idx]  # K(X, pool), (n, M); K is symmetric
        kxx = rows[:, idx]
        inverse = torch.linalg.inv(kxx + ridge * torch.eye(n, dtype=kernel.dtype))
        inverse = 0.5 * (inverse + inverse.T)
        alpha = inverse @ targets[idx]
        tests.append(float(((rows.T @ alpha - targets) ** 2).sum(1).mean()))
        trains.append(float(((kxx @ alpha - targets[idx]) ** 2).sum(1).mean()))
        phi = eigenfunctions[idx]  # (n, modes)
        learns.append((eigenvalues * torch.einsum("ni,nm,mi->i", phi, inverse, phi)).numpy())
    return PoolRegression(n, ridge, float(np.mean(tests)), float(np.mean(trains)),
                          np.mean(learns, axis=0))
