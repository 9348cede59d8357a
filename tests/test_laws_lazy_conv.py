"""lazy-linearized-conv at the quick budget: trained conv nets follow the linearized
prediction of the analytic infinite-width conv NTK, and not that of the fully connected
NTK (the competing theory of its control)."""

from learnmech.laws import LawContext, get_law


def test_conv_nets_follow_the_conv_ntk_and_not_the_dense_one():
    verdict = get_law("lazy-linearized-conv").check("quick", LawContext())
    assert verdict.verdict == "holds", [c for c in verdict.evidence.criteria if not c.passed]
    control = verdict.control_evidence
    assert control.outcome == "fails"
    # the competing theory fails on a measured distance, larger at every channel count
    # than the conv theory's (not on a value that could not be measured)
    ours, theirs = (next(c.y for c in e.figures[1].curves if c.kind == "measured")
                    for e in (verdict.evidence, control))
    assert all(a < b for a, b in zip(ours, theirs, strict=True))
    assert not next(c for c in control.criteria if c.name.startswith("‖")).passed
