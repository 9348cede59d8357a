"""Kernel ridge regression on a pool, against scikit-learn's KernelRidge and against the
definition of a mode's learnability (fit the eigenfunction itself, project the fit)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.kernel_ridge import KernelRidge

from learnmech.kernel_regression import pool_regression


def _pool(m: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(m, 3, generator=gen, dtype=torch.float64)
    kernel = torch.exp(-torch.cdist(x, x) ** 2 / 4)
    targets = torch.stack([torch.sin(x[:, 0]), x[:, 1] * x[:, 2]], dim=1)
    return kernel, targets


def _eigen(kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    m = kernel.shape[0]
    evals, evecs = torch.linalg.eigh(kernel / m)
    return evals.flip(0), evecs.flip(1) * math.sqrt(m)


@pytest.mark.parametrize("ridge", [1e-3, 0.5])
def test_errors_match_sklearn_kernel_ridge(ridge):
    kernel, targets = _pool()
    evals, phi = _eigen(kernel)
    n, seed = 20, 3
    got = pool_regression(kernel, targets, n, ridge, 1, seed, evals[:4], phi[:, :4])
    idx = torch.randperm(kernel.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    k, y = kernel.numpy(), targets.numpy()
    model = KernelRidge(alpha=ridge, kernel="precomputed").fit(k[np.ix_(idx, idx)], y[idx])
    test = ((model.predict(k[:, idx]) - y) ** 2).sum(1).mean()
    train = ((model.predict(k[np.ix_(idx, idx)]) - y[idx]) ** 2).sum(1).mean()
    assert got.test_mse == pytest.approx(test, rel=1e-8)
    assert got.train_mse == pytest.approx(train, rel=1e-8, abs=1e-14)


def test_learnability_is_the_recovered_fraction_of_an_eigenfunction():
    kernel, targets = _pool()
    evals, phi = _eigen(kernel)
    n, ridge, seed, modes = 15, 0.1, 1, 5
    got = pool_regression(kernel, targets, n, ridge, 1, seed, evals[:modes], phi[:, :modes])
    idx = torch.randperm(kernel.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    k = kernel.numpy()
    for i in range(modes):
        target = phi[:, i].numpy()
        fit = KernelRidge(alpha=ridge, kernel="precomputed").fit(k[np.ix_(idx, idx)],
                                                                 target[idx])
        recovered = float(np.mean(target * fit.predict(k[:, idx])))  # ⟨φ_i, f̂⟩ on the pool
        assert got.learnabilities[i] == pytest.approx(recovered, rel=1e-7)

