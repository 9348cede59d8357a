"""Every judged quantitative law resolves its own prediction at the quick budget.

One measurement per law (module-scoped) is judged against the law's prediction (holds),
its competing theory (fails), and its prediction multiplied by 0.5, 0.9, 1.1 and 1.5
(fails), the scaling done here entry by entry rather than through the law's own ladder.

Two laws do not resolve ±10 % at quick, for reasons measured and stated in their regime:
those cases (×0.9, or ×0.9 and ×1.1) are strict expected failures, so a law that becomes
sharper (or one that silently loses the resolution it has) turns this file red.
"""

from __future__ import annotations

import pytest

from learnmech.laws import JudgedLaw, Measurement, Prediction, catalogue

JUDGED = [law for law in catalogue() if isinstance(law, JudgedLaw) and not law.qualitative]
COARSE = {
    # held-out runs scatter 5–17 % about a smooth law and the forecast is 5 % high at quick:
    # resolving power 0.2
    "scaling-extrapolation": ((0.9,), "the forecast's error (0.06) is within 10 % of ×0.9 too"),
    # B_crit/B_simple over disjoint groups of four seeds has sd ≈ 0.10 (tolerance 0.25):
    # resolving power 0.5
    "critical-batch-size": ((0.9, 1.1), "the seed spread of the fitted B_crit exceeds 10 %"),
}


@pytest.fixture(scope="module", params=JUDGED, ids=[law.id for law in JUDGED])
def measured(request, law_context) -> tuple[JudgedLaw, Measurement, Prediction]:
    """The law's quick measurement (its runs shared with the other law tests)."""
    law = request.param
    return law, law.measure("quick", law_context), law.predict("quick")


def _times(prediction: Prediction, factor: float) -> Prediction:
    """Every entry times ``factor``; an entry of 0 moves by ``(factor − 1)·zero_scale``."""
    out = {}
    for key, value in prediction.values.items():
        zero = value == 0 if isinstance(value, int | float) else not bool((value != 0).any())
        if zero:
            assert prediction.zero_scale is not None, key
            out[key] = value + (factor - 1) * prediction.zero_scale
        else:
            out[key] = value * factor
    return Prediction(out, prediction.zero_scale)


def test_holds(measured):
    law, measurement, prediction = measured
    evidence = law.judge(measurement, prediction)
    assert evidence.outcome == "holds", [c for c in evidence.criteria if not c.passed]


def test_competing_theory_fails(measured):
    law, measurement, _ = measured
    assert law.judge(measurement, law.control_prediction("quick")).outcome == "fails"


@pytest.mark.parametrize("factor", [0.5, 0.9, 1.1, 1.5])
def test_scaled_prediction_fails(measured, factor, request):
    law, measurement, prediction = measured
    factors, reason = COARSE.get(law.id, ((), ""))
    if factor in factors:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    assert law.judge(measurement, _times(prediction, factor)).outcome == "fails"
