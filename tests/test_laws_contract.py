"""The judged-law contract: one measurement judged against the theory, a rival theory and
a ladder of scaled predictions; the verdict accounts for the control and for NaN."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest

from learnmech.laws import (
    Budget,
    Criterion,
    Evidence,
    JudgedLaw,
    LawContext,
    Measurement,
    Prediction,
)


class Ratio(JudgedLaw):
    """Measures ``value``; holds when it is within 3 % of the predicted value."""

    id = "toy-ratio"
    strand = "solvable"
    claim = reference = regime = control = "a toy law for the contract"
    control_theory = "the rival value"
    budgets: ClassVar[dict[str, str]] = {}

    def __init__(self, value: float, theory: float, rival: float) -> None:
        self.value, self.theory, self.rival = value, theory, rival

    def measure(self, budget: Budget, ctx: LawContext) -> Measurement:
        return Measurement({"value": self.value}, run_ids=["r1"])

    def predict(self, budget: Budget) -> Prediction:
        return Prediction({"value": self.theory}, zero_scale=1.0)

    def control_prediction(self, budget: Budget) -> Prediction:
        return Prediction({"value": self.rival}, zero_scale=1.0)

    def judge(self, measurement: Measurement, prediction: Prediction) -> Evidence:
        error = abs(measurement["value"] - prediction["value"]) / max(abs(prediction["value"]),
                                                                      1.0)
        return Evidence([Criterion("relative error", error, 0.03)])


def test_resolving_power_is_the_smallest_change_rejected_on_both_sides():
    verdict = Ratio(1.0, 1.0, 2.0).check("quick")
    assert verdict.verdict == "holds" and verdict.control_evidence.outcome == "fails"
    # |1/(1 ± δ) − 1| > 0.03 first for δ = 0.05 of the ladder (0.02 gives ≈ 0.02).
    assert verdict.sharpness.resolving_power == 0.05
    record = verdict.to_json()
    assert record["resolving_power"] == 0.05 and record["qualitative"] is False
    assert record["negative_control"]["theory"] == "the rival value"
    assert record["run_ids"] == ["r1"]


def test_zero_prediction_is_perturbed_on_its_declared_scale():
    verdict = Ratio(0.0, 0.0, 1.0).check("quick")
    assert verdict.verdict == "holds" and verdict.sharpness.resolving_power == 0.05
    with pytest.raises(ValueError, match="zero_scale"):
        Prediction({"value": 0.0}).scaled(1.1)


def test_a_control_that_does_not_fail_makes_the_verdict_inconclusive():
    verdict = Ratio(1.0, 1.0, 1.01).check("quick")
    assert verdict.evidence.outcome == "holds" and verdict.verdict == "inconclusive"


def test_a_nan_criterion_makes_the_verdict_inconclusive():
    verdict = Ratio(math.nan, 1.0, 2.0).check("quick")
    assert verdict.verdict == "inconclusive" and verdict.sharpness.resolving_power is None


def test_context_computes_each_cached_measurement_once():
    ctx, calls = LawContext(), []

    def compute(value):
        calls.append(value)
        return value

    assert [ctx.cached(("law", "quick"), lambda: compute(1)) for _ in range(3)] == [1, 1, 1]
    assert ctx.cached(("law", "standard"), lambda: compute(2)) == 2
    assert calls == [1, 2]
    assert LawContext().cached(("law", "quick"), lambda: compute(3)) == 3
