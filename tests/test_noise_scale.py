"""The gradient noise scale against per-example gradients computed one backward at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pytest
import torch
from torch import Tensor, nn

from learnmech.data import Dataset
from learnmech.probes import GradientNoiseScale
from learnmech.system import MLP, Digits, LearningRule, System, TeacherStudent
from learnmech.train import initial_state, make_optimizer, objective


class Seen(NamedTuple):
    """What a probe is called with: ``probe(*seen)``."""

    model: nn.Module
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    data: Dataset
    optimizer: torch.optim.Optimizer
    step: int


def _reference(state: Seen, weights: dict[str, float]) -> float:
    """B_simple from a Python loop of ordinary backward passes, one example each."""
    model, data = state.model, state.data
    grads = []
    for i in range(data.x_train.shape[0]):
        model.zero_grad()
        state.loss_fn(model(data.x_train[i : i + 1]), data.y_train[i : i + 1]).backward()
        grads.append(
            torch.cat(
                [weights[k] ** 0.5 * p.grad.double().flatten() for k, p in model.named_parameters()]
            )
        )
    model.zero_grad(set_to_none=True)
    g = torch.stack(grads)
    mean = g.mean(0)
    cov_trace = ((g - mean) ** 2).sum(1).mean()  # population covariance of the n examples
    return float(cov_trace / mean.pow(2).sum())


@pytest.mark.parametrize(
    ("system", "weighted"),
    [
        (
            System(
                architecture=MLP(width=16, depth=3),
                data=TeacherStudent(n_train=70),
                dtype="float64",
            ),
            False,
        ),
        (
            System(
                architecture=MLP(width=16, depth=2, parametrization="mup", base_width=4),
                data=Digits(n_train=90, n_test=10),
                objective="cross_entropy",
                learning_rule=LearningRule(optimizer="sgd", lr=0.1, batch_size=8),
                dtype="float64",
            ),
            True,
        ),
    ],
)
def test_noise_scale_matches_a_loop_of_backward_passes(system: System, weighted: bool) -> None:
    model, plan, data, _ = initial_state(system)
    optimizer = make_optimizer(model, plan, system.learning_rule)
    state = Seen(model, objective(system, data), data, optimizer, 0)
    before = [p.detach().clone() for p in model.parameters()]
    out = GradientNoiseScale(chunk=32)(*state)
    weights = {k: 1.0 for k, _ in model.named_parameters()}
    if weighted:  # μP at 4× the base width: layer learning rates differ
        lrs = {
            id(p): g["lr"] / system.learning_rule.lr
            for g in optimizer.param_groups
            for p in g["params"]
        }
        weights = {k: lrs[id(p)] for k, p in model.named_parameters()}
        assert len(set(weights.values())) > 1
    assert out["noise_scale"] == pytest.approx(_reference(state, weights), rel=1e-9)
    assert out["noise_scale"] == pytest.approx(out["grad_trace_cov"] / out["grad_norm_sq"])
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
