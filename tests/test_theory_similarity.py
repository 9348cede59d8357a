"""The finite-width CKA of independent features against Monte Carlo; the init Gram."""

import numpy as np
import pytest
import torch

from learnmech.errors import InputError
from learnmech.probes import make_probes
from learnmech.probes.similarity import cka, initial_gram, unflatten_gram
from learnmech.system import MLP, Digits, LearningRule, System
from learnmech.theory.similarity import cka_gap, gap_exponent, independent_features_cka
from learnmech.train import Schedule, initial_state, train


def _relu_features(x: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` independent random ReLU features of the inputs ``x`` ``(m, d)``: ``(m, n)``."""
    w = torch.randn(x.shape[1], n, generator=gen, dtype=torch.float64)
    return torch.relu(x @ w)


def test_cka_of_independent_random_features_is_one_over_one_plus_v_over_n():
    """``v = E‖E⊥‖² / ‖K∞_c‖²`` from single features (``E⊥``: the part of ``(φφᵀ)_c − K∞_c``
    orthogonal to ``K∞_c``); the mean CKA of pairs of independent width-n samples matches
    ``1/(1 + v/n)`` to 2 % at n = 160 and 5 % at n = 40 (the next order is ``1/n²``)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20, 4, generator=gen, dtype=torch.float64)
    h = torch.eye(20, dtype=torch.float64) - 1 / 20
    phi = _relu_features(x, 100_000, gen)
    k_inf = h @ (phi @ phi.T / phi.shape[1]) @ h
    single = torch.einsum("ia,ja->aij", h @ phi[:, :5000], h @ phi[:, :5000])
    e = single - k_inf
    u = k_inf / torch.linalg.norm(k_inf)
    e_perp = e - torch.einsum("aij,ij->a", e, u)[:, None, None] * u
    v = float((e_perp**2).sum((1, 2)).mean() / (k_inf**2).sum())
    for n, rel in ((40, 0.05), (160, 0.02)):
        values = []
        for _ in range(300):
            a, b = _relu_features(x, n, gen), _relu_features(x, n, gen)
            values.append(cka(a @ a.T, b @ b.T))
        assert np.mean(values) == pytest.approx(independent_features_cka(n, v), rel=rel)
    assert cka_gap(independent_features_cka(np.array([10.0, 20.0]), v)) == pytest.approx(
        [v / 10, v / 20])
    assert gap_exponent() == -1.0


def test_bad_similarities_and_widths():
    with pytest.raises(InputError):
        cka_gap(0.0)
    with pytest.raises(InputError):
        independent_features_cka(0, 1.0)


def test_initial_gram_is_the_step_zero_feature_gram_of_a_run():
    system = System(architecture=MLP(width=8, depth=3), data=Digits(n_train=100, n_test=150),
                    objective="cross_entropy", learning_rule=LearningRule(steps=2), seed=3)
    traj = train(system, make_probes(["feature_gram"]), Schedule("linear", 2))
    model, _, data, _ = initial_state(system)
    assert torch.allclose(initial_gram(model, data),
                          unflatten_gram(traj["feature_gram"].values[0]))
