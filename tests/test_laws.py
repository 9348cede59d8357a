"""The Law contract, checked for every registered law at the quick budget.

Every law must hold at ``quick`` and its negative control must fail: the control is what
shows that the check can fail at all.
"""

from __future__ import annotations

import re

import pytest

from learnmech.errors import InputError
from learnmech.laws import BUDGETS, STRANDS, LawContext, catalogue, get_law

LAWS = catalogue()
_VERDICTS: dict[str, object] = {}


def _verdict(law_id: str, ctx: LawContext):
    if law_id not in _VERDICTS:
        _VERDICTS[law_id] = get_law(law_id).check("quick", ctx)
    return _VERDICTS[law_id]


@pytest.mark.parametrize("law", LAWS, ids=[law.id for law in LAWS])
def test_metadata_is_complete(law):
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", law.id)
    assert law.strand in STRANDS
    for text in (law.claim, law.reference, law.regime, law.control):
        assert isinstance(text, str) and len(text) > 10
    assert set(law.budgets) == set(BUDGETS)


@pytest.mark.parametrize("law", LAWS, ids=[law.id for law in LAWS])
def test_claim_holds_at_quick_budget(law, law_context):
    verdict = _verdict(law.id, law_context)
    failing = [c for c in verdict.evidence.criteria if not c.passed]
    assert verdict.verdict == "holds", failing
    assert verdict.evidence.figures, "a law draws theory against measurement"


@pytest.mark.parametrize("law", LAWS, ids=[law.id for law in LAWS])
def test_negative_control_fails(law, law_context):
    assert _verdict(law.id, law_context).control_evidence.outcome == "fails"


def test_unknown_law_and_budget_are_input_errors():
    with pytest.raises(InputError, match="dln-mode-learning"):
        get_law("dln-mode-learnin")
    with pytest.raises(InputError, match="budget"):
        LAWS[0].check("huge")  # type: ignore[arg-type]
