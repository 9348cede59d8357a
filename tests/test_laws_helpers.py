"""Pieces of the laws that can be checked without training: staircase measurements on
constructed curves, and runs shared between a claim and its control."""

import numpy as np
import pytest

from learnmech.laws._memo import RunMemo
from learnmech.laws.base import LawContext
from learnmech.laws.stepwise import _Staircase
from learnmech.system import DeepLinear, LearningRule, LinearTeacher, System


def _logistic_staircase(times: list[float], width: float) -> _Staircase:
    t = np.linspace(0, 20, 2001)
    strengths = np.stack([1 / (1 + np.exp(-(t - tk) / width)) for tk in times], axis=1)
    k = len(times)
    loss = np.sum((1 - strengths) ** 2, axis=1)
    top = np.ones(len(t) - 1)
    return _Staircase(t, loss, strengths, np.ones(k), np.arange(k, -1, -1.0), top, None)


def test_staircase_step_times_and_plateaus():
    sharp = _logistic_staircase([2.0, 6.0, 12.0], width=0.2)
    assert sharp.step_times() == pytest.approx([2.0, 6.0, 12.0], abs=1e-3)
    assert sharp.plateau_error() < 0.01
    assert sharp.step_rank() == 1.0
    blurred = _logistic_staircase([2.0, 2.5, 3.0], width=1.0)  # all modes together
    assert blurred.plateau_error() > 0.15


def test_memo_reuses_runs_within_one_context_only():
    system = System(architecture=DeepLinear(hidden=[4]), data=LinearTeacher(),
                    learning_rule=LearningRule(steps=3))
    memo, ctx = RunMemo(), LawContext()
    first = memo.run(ctx, system, ["loss"])
    assert memo.run(ctx, system, ["loss"]) is first
    assert memo.run(LawContext(), system, ["loss"]) is not first
