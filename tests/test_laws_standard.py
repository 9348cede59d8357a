"""Every law at the ``standard`` budget (``make test-standard``; about 25 minutes on one
core, so not part of ``make test``): the criteria that only standard exercises (longer
training, more widths, seeds and batch sizes) hold, every control fails and every
quantitative law resolves its prediction to 50 % or better.
"""

from __future__ import annotations

import pytest

from learnmech.laws import LawContext, catalogue
from learnmech.store import Store

pytestmark = pytest.mark.slow
LAWS = catalogue()


@pytest.fixture(scope="module")
def standard_context(tmp_path_factory):
    with Store(tmp_path_factory.mktemp("standard") / "runs.sqlite") as s:
        yield LawContext(store=s)


@pytest.mark.parametrize("law", LAWS, ids=[law.id for law in LAWS])
def test_law_holds_at_standard(law, standard_context):
    verdict = law.check("standard", standard_context)
    assert verdict.control_evidence.outcome == "fails"
    failing = [c for c in verdict.evidence.criteria if not c.passed]
    assert verdict.verdict == "holds", failing
    sharpness = verdict.sharpness
    assert sharpness.qualitative or (sharpness.resolving_power is not None
                                     and sharpness.resolving_power <= 0.5)
