"""Per-neuron conserved quantities against the exact one-step GD identity."""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from learnmech.data import Dataset
from learnmech.probes.conservation import NeuronBalance, neuron_balance, neuron_terms
from learnmech.system import MLP, LearningRule, System, TeacherStudent
from learnmech.train import initial_state, make_optimizer, objective


class Seen(NamedTuple):
    """What a probe is called with: ``probe(*seen)``."""

    model: nn.Module
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    data: Dataset
    optimizer: torch.optim.Optimizer
    step: int


def _one_step(system: System) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """q before and after one optimizer step, and the predicted η² term per layer."""
    model, plan, data, _ = initial_state(system)
    model.double()
    data = data.to("cpu", torch.float64)
    opt = make_optimizer(model, plan, system.learning_rule)
    q0 = neuron_balance(model, plan)
    loss = objective(system, data)(model(data.x_train), data.y_train)
    loss.backward()
    lr = system.learning_rule.lr
    predicted = []
    for l in range(len(model.layers) - 1):
        g_w = model.layers[l].weight.grad.double()
        g_a = model.layers[l + 1].weight.grad.double()
        term = plan[l + 1].lr_mult * g_a.pow(2).sum(0) - plan[l].lr_mult * g_w.pow(2).sum(1)
        if model.layers[l].bias is not None:
            term = term - plan[l].bias_lr_mult * model.layers[l].bias.grad.double().pow(2)
        predicted.append(lr**2 * term)
    opt.step()
    return q0, neuron_balance(model, plan), predicted


@pytest.mark.parametrize("parametrization", ["sp", "mup", "ntp"])
def test_relu_one_gd_step_changes_q_by_exactly_eta_squared_terms(parametrization):
    system = System(
        architecture=MLP(width=12, depth=3, parametrization=parametrization, base_width=4),
        data=TeacherStudent(d_in=5, n_train=40, n_test=0),
        learning_rule=LearningRule(optimizer="gd", lr=0.3, steps=1),
        dtype="float64",
    )
    q0, q1, predicted = _one_step(system)
    for a, b, p in zip(q0, q1, predicted, strict=True):
        assert (b - a).abs().max() > 1e-8  # a real change
        assert torch.allclose(b - a, p, rtol=1e-9, atol=1e-13)


def test_tanh_breaks_the_identity():
    system = System(
        architecture=MLP(width=12, depth=2, activation="tanh"),
        data=TeacherStudent(d_in=5, n_train=40, n_test=0),
        learning_rule=LearningRule(optimizer="gd", lr=0.3, steps=1),
        dtype="float64",
    )
    q0, q1, predicted = _one_step(system)
    assert (q1[0] - q0[0] - predicted[0]).abs().max() > 3 * predicted[0].abs().max()


def test_weight_decay_scales_q_by_one_minus_eta_lambda_squared():
    lr, wd = 0.2, 0.5
    system = System(
        architecture=MLP(width=10, depth=2),
        data=TeacherStudent(d_in=4, n_train=30, n_test=0),
        learning_rule=LearningRule(optimizer="gd", lr=lr, steps=1, weight_decay=wd),
        dtype="float64",
    )
    q0, q1, predicted = _one_step(system)
    # the gradients above include the decay term: subtract it from the predicted η² term
    model, _, data, _ = initial_state(system)
    model.double()
    data = data.to("cpu", torch.float64)
    objective(system, data)(model(data.x_train), data.y_train).backward()
    g_w, g_a = model.layers[0].weight.grad.double(), model.layers[1].weight.grad.double()
    g_b = model.layers[0].bias.grad.double()
    eta2 = lr**2 * (g_a.pow(2).sum(0) - g_w.pow(2).sum(1) - g_b.pow(2))
    assert torch.allclose(q1[0], (1 - lr * wd) ** 2 * q0[0] + eta2, rtol=1e-9, atol=1e-13)
    del predicted


def test_probe_reports_drift_relative_to_initial_scale():
    system = System(architecture=MLP(width=8), data=TeacherStudent(d_in=3, n_train=10, n_test=0),
                    learning_rule=LearningRule(steps=0))
    model, plan, data, _ = initial_state(system)
    state = Seen(model, objective(system, data), data,
                make_optimizer(model, plan, system.learning_rule), 0)
    probe = NeuronBalance()
    probe.start(*state)
    first = probe(*state)
    assert first["neuron_balance.drift.0"] == 0.0
    out, inc = neuron_terms(model, plan)[0]
    with torch.no_grad():
        model.layers[1].weight[:, 2] *= 2.0  # grows ‖a_2‖² by a factor 4
    second = probe(*state)
    assert second["neuron_balance.drift.0"] == pytest.approx(float(3 * out[2] / (out + inc).mean()))


def test_decay_rate_recovers_an_exponential_and_ignores_a_common_sign():
    from learnmech.errors import InputError
    from learnmech.probes.conservation import decay_rate

    t = np.linspace(0.0, 4.0, 41)
    q0 = np.array([0.5, -1.2, 2.0])
    assert decay_rate(t, np.exp(-0.1 * t)[:, None] * q0) == pytest.approx(0.1, rel=1e-12)
    # a perturbation orthogonal to q(0) does not move the projection
    drift = np.outer(t, [1.2, 0.5, 0.0])
    assert decay_rate(t, np.exp(-0.3 * t)[:, None] * q0 + drift) == pytest.approx(0.3, rel=1e-12)
    with pytest.raises(InputError):
        decay_rate(t, q0)
