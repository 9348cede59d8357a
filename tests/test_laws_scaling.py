"""The measurements behind the scaling laws, against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learnmech.data.sparse_parity import MultitaskSparseParity
from learnmech.errors import InputError
from learnmech.laws import scaling as S


def _task(m: int, a: float, b: float, seed: int):
    """The draw `_linear_curves` makes, repeated: eigenvalues, target, samples, features."""
    rng = np.random.default_rng(seed)
    k = np.arange(1, m + 1, dtype=float)
    lam = k**-b
    beta = rng.choice([-1.0, 1.0], m) * np.sqrt(k**-a / lam)
    return rng, lam, beta


def test_ridgeless_learning_curve_matches_lstsq_min_norm_solution():
    m, sizes = 300, np.array([10, 40])
    data, _ = S._linear_curves(m, 2.0, 1.5, sizes, seed=3)
    rng, lam, beta = _task(m, 2.0, 1.5, 3)
    x = rng.standard_normal((40, m)) * np.sqrt(lam)
    for n, measured in zip(sizes, data, strict=True):
        coef = np.linalg.lstsq(x[:n], x[:n] @ beta, rcond=None)[0]  # minimum-norm solution
        assert measured == pytest.approx(np.sum(lam * (beta - coef) ** 2) / np.sum(lam * beta**2),
                                         rel=1e-6)


def test_random_feature_error_matches_monte_carlo_regression():
    m, sizes = 200, np.array([5, 20])
    _, model = S._linear_curves(m, 2.0, 1.5, sizes, seed=1)
    rng, lam, beta = _task(m, 2.0, 1.5, 1)
    rng.standard_normal((20, m))  # the samples drawn before the features
    f = rng.standard_normal((20, m))
    mc = np.random.default_rng(7).standard_normal((100_000, m)) * np.sqrt(lam)
    y = mc @ beta
    for n, measured in zip(sizes, model, strict=True):
        theta = np.linalg.lstsq(mc @ f[:n].T, y, rcond=None)[0]
        err = np.sum(lam * (beta - f[:n].T @ theta) ** 2) / np.sum(lam * beta**2)
        assert measured == pytest.approx(err, rel=2e-2)


def test_sparse_parity_labels_frequencies_and_subsets():
    task = MultitaskSparseParity(n_tasks=20, n_bits=8, k=3, alpha=1.0, seed=0)
    assert len({tuple(s) for s in task.subsets.tolist()}) == 20
    p = task.frequencies.numpy()
    assert p.sum() == pytest.approx(1.0)
    assert p[0] / p[3] == pytest.approx(4.0**2)
    x, y, tasks = task.sample(2000, torch.Generator().manual_seed(0))
    bits = (x[:, 20:] > 0).long()
    assert torch.equal(x[:, :20].argmax(1), tasks)
    parity = torch.stack([bits[i, task.subsets[t]].sum() % 2 for i, t in enumerate(tasks)])
    assert torch.equal(parity, y)
    counts = np.bincount(tasks.numpy(), minlength=20) / 2000
    assert counts[0] == pytest.approx(p[0], abs=0.04)
    uniform = MultitaskSparseParity(n_tasks=5, n_bits=6, alpha=None)
    assert torch.allclose(uniform.frequencies, torch.full((5,), 0.2, dtype=torch.float64))
    with pytest.raises(InputError, match="n_tasks"):
        MultitaskSparseParity(n_tasks=57, n_bits=8, k=3)


def test_order_agreement_counts_pairs_learned_in_frequency_order():
    inf = np.inf
    assert S._order_agreement(np.array([10.0, 20.0, 30.0, inf])) == 1.0
    assert S._order_agreement(np.array([30.0, 20.0, 10.0, inf])) == pytest.approx(3 / 6)
    assert S._order_agreement(np.array([inf, inf])) == 0.0
