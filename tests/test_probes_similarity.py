"""Representational similarity against independent references: brute-force U-statistics,
the feature form of CKA, scikit-learn's nearest neighbours, Monte-Carlo unbiasedness."""

from collections.abc import Callable
from itertools import permutations
from typing import NamedTuple

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors
from torch import Tensor, nn

from learnmech.data import Dataset
from learnmech.errors import InputError
from learnmech.probes.similarity import (
    FeatureGram,
    alignment,
    cka,
    gram,
    hsic,
    linear_cka,
    mutual_knn,
    unflatten_gram,
)


class Seen(NamedTuple):
    """What a probe is called with: ``probe(*seen)``."""

    model: nn.Module
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    data: Dataset
    optimizer: torch.optim.Optimizer
    step: int


def _features(n: int, p: int, seed: int) -> torch.Tensor:
    return torch.randn(n, p, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _hsic_u_statistic(k: np.ndarray, l: np.ndarray) -> float:
    """HSIC as a sum over distinct index tuples (Song et al. 2012, Eq. 4), by brute force."""
    n = k.shape[0]
    pairs = list(permutations(range(n), 2))
    triples = list(permutations(range(n), 3))
    quads = list(permutations(range(n), 4))
    t1 = sum(k[i, j] * l[i, j] for i, j in pairs) / len(pairs)
    t2 = sum(k[i, j] * l[q, r] for i, j, q, r in quads) / len(quads)
    t3 = sum(k[i, j] * l[i, q] for i, j, q in triples) / len(triples)
    return t1 + t2 - 2 * t3


def test_unbiased_hsic_matches_brute_force_u_statistic():
    x, y = _features(7, 3, 0), _features(7, 5, 1)
    y[:, 0] += x[:, 0]  # some dependence
    k, l = gram(x), gram(y)
    assert hsic(k, l, unbiased=True) == pytest.approx(_hsic_u_statistic(k.numpy(), l.numpy()),
                                                      rel=1e-10)
    brute = _hsic_u_statistic(k.numpy(), l.numpy()) / np.sqrt(
        _hsic_u_statistic(k.numpy(), k.numpy()) * _hsic_u_statistic(l.numpy(), l.numpy()))
    assert cka(k, l, debiased=True) == pytest.approx(brute, rel=1e-10)


def test_biased_hsic_is_centred_trace():
    x, y = _features(9, 4, 2), _features(9, 6, 3)
    k, l = gram(x).numpy(), gram(y).numpy()
    h = np.eye(9) - 1 / 9
    assert hsic(gram(x), gram(y)) == pytest.approx(np.trace(k @ h @ l @ h) / 64, rel=1e-12)


def test_linear_cka_feature_form_equals_gram_form_and_is_invariant():
    x, y = _features(40, 5, 4), _features(40, 12, 5)
    y[:, :5] += 0.5 * x
    assert linear_cka(x, y) == pytest.approx(cka(gram(x), gram(y)), rel=1e-12)
    q, _ = torch.linalg.qr(_features(5, 5, 6))
    assert linear_cka(x, 3.0 * x @ q + 7.0) == pytest.approx(1.0, abs=1e-12)
    assert 0 < linear_cka(x, y) < 1


def test_debiased_cka_is_unbiased_for_independent_features_where_linear_cka_is_not():
    """Monte-Carlo over 200 pairs of independent wide representations of 30 inputs: the
    debiased CKA averages to 0 within three standard errors; linear CKA is far above 0."""
    biased, unbiased = [], []
    for seed in range(200):
        k, l = gram(_features(30, 60, 2 * seed)), gram(_features(30, 60, 2 * seed + 1))
        biased.append(cka(k, l))
        unbiased.append(hsic(k, l, unbiased=True))
    se = np.std(unbiased) / np.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < 3 * se
    assert np.mean(biased) > 0.5


def test_mutual_knn_matches_sklearn_neighbours():
    x, y = _features(60, 8, 7), _features(60, 8, 8)
    y += 1.5 * x  # correlated, not identical
    k = 5

    def sets(z: torch.Tensor) -> list[set[int]]:
        nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(z.numpy())
        idx = nn.kneighbors(z.numpy(), return_distance=False)
        return [set(row[row != i][:k]) for i, row in enumerate(idx)]

    a, b = sets(x), sets(y)
    expected = np.mean([len(s & t) / k for s, t in zip(a, b, strict=True)])
    assert mutual_knn(gram(x), gram(y), k) == pytest.approx(expected, abs=1e-12)
    assert mutual_knn(gram(x), gram(x), k) == 1.0
    assert 0 < expected < 1


def test_alignment_and_bad_input():
    x = _features(20, 4, 9)
    values = alignment(gram(x), gram(2 * x), neighbours=3)
    assert values == pytest.approx({"linear_cka": 1.0, "debiased_cka": 1.0, "mutual_knn": 1.0})
    with pytest.raises(InputError):
        cka(gram(x), gram(x[:10]))
    with pytest.raises(InputError):
        mutual_knn(gram(x), gram(x), neighbours=20)
    with pytest.raises(InputError):
        unflatten_gram([1.0, 2.0, 3.0])


def test_feature_gram_probe_is_gram_of_penultimate_representation():
    from learnmech.probes.hidden import hidden_features, penultimate, readout
    from learnmech.system import MLP, Digits, LearningRule, System
    from learnmech.train import initial_state, make_optimizer, objective

    system = System(architecture=MLP(width=16, depth=3), data=Digits(n_train=200, n_test=150),
                    objective="cross_entropy", learning_rule=LearningRule(steps=0))
    model, plan, data, _ = initial_state(system)
    state = Seen(model, objective(system, data), data,
                make_optimizer(model, plan, system.learning_rule), 0)
    value = FeatureGram()(*state)
    h = penultimate(model, data.x_test[:128])
    assert torch.allclose(unflatten_gram(value), h.double() @ h.double().T)
    # the replayed forward pass is the network's: readout(penultimate) = output
    w, b = readout(model)
    assert torch.allclose(h @ w.T + b, model(data.x_test[:128]), atol=1e-5)
    assert len(hidden_features(model, data.x_test[:3])) == 2
    assert all(p.grad is None for p in model.parameters())
