"""Basic probes against direct computations; probes leave the model as they found it."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from learnmech.data import Dataset
from learnmech.errors import InputError
from learnmech.probes import make_probe, make_probes
from learnmech.system import MLP, DeepLinear, Digits, Hierarchy, LearningRule, LinearTeacher, System
from learnmech.train import Schedule, initial_state, objective, train


class Seen(NamedTuple):
    """What a probe is called with: ``probe(*seen)``."""

    model: nn.Module
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    data: Dataset
    optimizer: torch.optim.Optimizer
    step: int


def _state(system: System) -> Seen:
    model, _, data, _ = initial_state(system)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return Seen(model, objective(system, data), data, opt, 0)


def test_mode_strengths_and_e2e_svals_match_numpy():
    system = System(architecture=DeepLinear(hidden=[5, 7]), data=LinearTeacher())
    state = _state(system)
    w = [layer.weight.detach().double().numpy() for layer in state.model.layers]
    product = w[2] @ w[1] @ w[0]
    teacher = state.data.info["teacher"].numpy()
    u, _, vt = np.linalg.svd(teacher)
    expected = np.abs(np.einsum("ia,ij,ja->a", u[:, :4], product, vt[:4].T))
    # the probe uses Σ_yx of the float32 training data: agreement to float32 round-off
    np.testing.assert_allclose(make_probe("mode_strengths")(*state).numpy(), expected, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(make_probe("e2e_svals")(*state).numpy(),
                               np.linalg.svd(product, compute_uv=False), rtol=1e-6, atol=1e-12)


def test_degenerate_modes_report_block_singular_values():
    system = System(architecture=DeepLinear(hidden=[6]), data=Hierarchy())
    state = _state(system)
    values = make_probe("mode_strengths")(*state)
    assert values.shape == (4,)  # √7/2, √3/2 and the 2-dimensional group of 1/2
    _, u, v = state.data.modes()[2]
    block = u.T @ state.model.end_to_end(torch.float64) @ v
    np.testing.assert_allclose(values[2:].numpy(), np.linalg.svd(block.numpy(), compute_uv=False))


def test_balancedness_matrices_and_drift():
    system = System(architecture=DeepLinear(hidden=[4, 4]), data=LinearTeacher(d_in=3, d_out=2,
                                                                               singular_values=[1.0]))
    state = _state(system)
    probe = make_probe("balancedness")
    first = probe(*state)
    w = [layer.weight.detach().double() for layer in state.model.layers]
    c0 = w[1].T @ w[1] - w[0] @ w[0].T
    assert first["balancedness.norm.0"] == pytest.approx(float(torch.linalg.norm(c0)))
    assert first["balancedness.drift.0"] == 0.0
    with torch.no_grad():
        state.model.layers[0].weight.mul_(2.0)
    second = probe(*state)
    c0_new = w[1].T @ w[1] - 4 * w[0] @ w[0].T
    assert second["balancedness.drift.0"] == pytest.approx(float(torch.linalg.norm(c0_new - c0)))


def test_loss_and_accuracy_probes_match_direct_evaluation():
    system = System(architecture=MLP(width=16), data=Digits(n_train=100, n_test=40),
                    objective="cross_entropy")
    state = _state(system)
    with torch.no_grad():
        logits = state.model(state.data.x_test)
    loss = make_probe("loss")(*state)
    assert loss["test_loss"] == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, state.data.y_test)))
    acc = make_probe("accuracy")(*state)
    assert acc["test_accuracy"] == pytest.approx(
        float((logits.argmax(1) == state.data.y_test).float().mean()))


def test_probes_leave_mode_and_gradients_alone():
    system = System(architecture=DeepLinear(hidden=[4]), data=LinearTeacher(),
                    learning_rule=LearningRule(lr=0.01, steps=5))
    state = _state(system)
    state.model.train()
    for probe in make_probes(["loss", "weight_svals", "e2e_svals", "mode_strengths",
                              "balancedness"]):
        probe(*state)
        assert state.model.training
        assert all(p.grad is None for p in state.model.parameters())


def test_probe_errors_are_clear():
    with pytest.raises(InputError, match="one of"):
        make_probe("sharpnes")
    system = System(architecture=MLP(width=8), data=LinearTeacher())
    with pytest.raises(InputError, match="deep linear network"):
        train(system.updated({"learning_rule.steps": 1}), make_probes(["e2e_svals"]),
              Schedule("linear", 2))


def test_validation_loss_splits_the_test_set_in_two_halves():
    system = System(architecture=MLP(width=8), data=Digits(n_train=50, n_test=31),
                    objective="cross_entropy")
    state = _state(system)
    out = make_probe("validation_loss")(*state)
    x, y = state.data.x_test, state.data.y_test
    with torch.no_grad():
        per = nn.functional.cross_entropy(state.model(x), y, reduction="none").double()
    assert out["validation_loss"] == pytest.approx(float(per[:16].mean()), rel=1e-5)
    assert out["holdout_loss"] == pytest.approx(float(per[16:].mean()), rel=1e-5)
    empty = System(architecture=MLP(width=8), data=Digits(n_train=50, n_test=1),
                   objective="cross_entropy")
    with pytest.raises(InputError, match="n_test"):
        make_probe("validation_loss")(*_state(empty))
