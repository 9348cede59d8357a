"""Effective rank, update rank, response modes and staircase readings against closed forms
and ModeStrengths."""

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from learnmech.data import Dataset
from learnmech.probes import ModeStrengths
from learnmech.probes.stepwise import (
    ResponseModes,
    Staircase,
    UpdateRank,
    effective_rank,
    rise_time,
    top_energy,
)
from learnmech.system import DeepLinear, LearningRule, LinearTeacher, System
from learnmech.train import initial_state, make_optimizer, objective, train


class Seen(NamedTuple):
    """What a probe is called with: ``probe(*seen)``."""

    model: nn.Module
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    data: Dataset
    optimizer: torch.optim.Optimizer
    step: int


def test_effective_rank_closed_forms():
    u = torch.randn(6, 1, dtype=torch.float64)
    assert effective_rank(u @ torch.randn(1, 4, dtype=torch.float64)) == pytest.approx(1.0)
    assert effective_rank(torch.diag(torch.tensor([1.0, 1.0, 1.0, 0.0]))) == pytest.approx(3.0)
    p = torch.tensor([2 / 3, 1 / 3])
    assert effective_rank(torch.diag(torch.tensor([2.0, 1.0]))) == pytest.approx(
        math.exp(float(-(p * p.log()).sum())))
    assert top_energy(torch.diag(torch.tensor([2.0, 1.0]))) == pytest.approx(0.8)
    assert effective_rank(torch.zeros(3, 3)) == 0.0


def _state(system: System) -> Seen:
    model, plan, data, _ = initial_state(system)
    return Seen(model, objective(system, data), data,
                make_optimizer(model, plan, system.learning_rule), 0)


def test_update_rank_measures_the_change_between_calls():
    state = _state(System(architecture=DeepLinear(hidden=[5]), data=LinearTeacher()))
    probe = UpdateRank()
    probe.start(*state)
    assert probe(*state) == {}
    with torch.no_grad():
        state.model.layers[0].weight += torch.outer(torch.ones(5), torch.arange(6.0))
        state.model.layers[1].weight += torch.eye(6, 5)
    out = probe(*state)
    assert out["update_rank.0"] == pytest.approx(1.0, abs=1e-6)
    assert out["update_rank.1"] == pytest.approx(5.0, abs=1e-6)
    assert out["update_top.1"] == pytest.approx(0.2, abs=1e-6)


def test_response_modes_equal_mode_strengths_for_a_linear_network():
    system = System(architecture=DeepLinear(hidden=[8], init_scale=0.5),
                    data=LinearTeacher(singular_values=[3.0, 2.0, 2.0, 0.5]),
                    learning_rule=LearningRule(lr=0.05, steps=40))
    traj = train(system, [ResponseModes(), ModeStrengths()])
    assert torch.allclose(torch.tensor(traj["response_modes"].values),
                          torch.tensor(traj["mode_strengths"].values), atol=1e-4)


def test_rise_time_interpolates_the_first_crossing():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    assert rise_time(t, [0.0, 0.2, 0.6, 1.0], 0.5) == pytest.approx(1.75)
    assert rise_time(t, [0.7, 0.2, 0.6, 1.0], 0.5) == 0.0
    assert math.isnan(rise_time(t, [0.0, 0.1, 0.2, 0.3], 0.5))


def _logistic_staircase(times: list[float], width: float) -> Staircase:
    t = np.linspace(0, 20, 2001)
    strengths = np.stack([1 / (1 + np.exp(-(t - tk) / width)) for tk in times], axis=1)
    k = len(times)
    loss = np.sum((1 - strengths) ** 2, axis=1)
    return Staircase(t, loss, strengths, np.ones(k), np.arange(k, -1, -1.0), np.ones(len(t) - 1))


def test_staircase_step_times_and_plateaus():
    sharp = _logistic_staircase([2.0, 6.0, 12.0], width=0.2)
    assert sharp.step_times() == pytest.approx([2.0, 6.0, 12.0], abs=1e-3)
    assert sharp.plateau_error() < 0.01
    assert sharp.step_rank() == 1.0
    blurred = _logistic_staircase([2.0, 2.5, 3.0], width=1.0)  # all modes together
    assert blurred.plateau_error() > 0.15
    unfinished = _logistic_staircase([2.0, 30.0], width=0.2)  # the second step never comes
    assert math.isnan(unfinished.plateau_error()) and math.isnan(unfinished.step_rank())
