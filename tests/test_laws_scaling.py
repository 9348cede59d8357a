"""The measurements behind the scaling laws, against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learnmech.data.sparse_parity import MultitaskSparseParity, train_width_ensemble
from learnmech.errors import InputError
from learnmech.theory import quanta as Q
from learnmech.theory import scaling as TS


def _task(m: int, a: float, b: float, seed: int):
    """The draw `linear_learning_curves` makes, repeated: eigenvalues, target, samples, features."""
    rng = np.random.default_rng(seed)
    k = np.arange(1, m + 1, dtype=float)
    lam = k**-b
    beta = rng.choice([-1.0, 1.0], m) * np.sqrt(k**-a / lam)
    return rng, lam, beta


def test_ridgeless_learning_curve_matches_lstsq_min_norm_solution():
    m, sizes = 300, np.array([10, 40])
    data, _ = TS.linear_learning_curves(m, 2.0, 1.5, sizes, seed=3)
    rng, lam, beta = _task(m, 2.0, 1.5, 3)
    x = rng.standard_normal((40, m)) * np.sqrt(lam)
    for n, measured in zip(sizes, data, strict=True):
        coef = np.linalg.lstsq(x[:n], x[:n] @ beta, rcond=None)[0]  # minimum-norm solution
        assert measured == pytest.approx(np.sum(lam * (beta - coef) ** 2) / np.sum(lam * beta**2),
                                         rel=1e-6)


def test_random_feature_error_matches_monte_carlo_regression():
    m, sizes = 200, np.array([5, 20])
    _, model = TS.linear_learning_curves(m, 2.0, 1.5, sizes, seed=1)
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
    assert Q.order_agreement(np.array([10.0, 20.0, 30.0, inf])) == 1.0
    assert Q.order_agreement(np.array([30.0, 20.0, 10.0, inf])) == pytest.approx(3 / 6)
    assert Q.order_agreement(np.array([inf, inf])) == 0.0


def test_width_ensemble_learns_a_single_parity_and_reports_bits():
    task = MultitaskSparseParity(n_tasks=1, n_bits=4, k=2, alpha=None, seed=0)
    steps, losses = train_width_ensemble(task, [2, 32], 400, 64, 1e-2, seed=0, points=10)
    assert losses.shape == (steps.size, 2, 1)
    assert steps[0] == 1 and steps[-1] == 400 and np.all(np.diff(steps) > 0)
    assert losses[0, 1, 0] == pytest.approx(1.0, abs=0.3)  # chance: one bit
    assert losses[-1, 1, 0] < 0.1  # the wide member learns the parity


def test_power_law_exponent_of_an_exact_and_a_kinked_power_law():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    alpha, dev = TS.power_law_exponent(x, 3 * x**-0.7)
    assert alpha == pytest.approx(0.7, rel=1e-12) and dev == pytest.approx(0, abs=1e-12)
    kinked = 3 * x**-0.7 * np.array([1.0, 1.0, 1.0, np.e**0.4])  # last log value +0.4
    alpha, dev = TS.power_law_exponent(x, kinked)
    # least squares on t = k·log 2 (k = 0…3) with residual 0.4 at k = 3: the slope rises
    # by Σ(t − t̄)r/Σ(t − t̄)² = 0.12/log 2; the residuals left are 0.08, −0.04, −0.16, 0.12
    assert alpha == pytest.approx(0.7 - 0.12 / np.log(2), rel=1e-12)
    assert dev == pytest.approx(0.16, rel=1e-12)
