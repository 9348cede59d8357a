"""Pieces of the laws that can be checked without training: runs shared between a claim and
its control."""

from learnmech.laws._memo import RunMemo
from learnmech.laws.base import LawContext
from learnmech.system import DeepLinear, LearningRule, LinearTeacher, System


def test_memo_reuses_runs_within_one_context_only():
    system = System(architecture=DeepLinear(hidden=[4]), data=LinearTeacher(),
                    learning_rule=LearningRule(steps=3))
    memo, ctx = RunMemo(), LawContext()
    first = memo.run(ctx, system, ["loss"])
    assert memo.run(ctx, system, ["loss"]) is first
    assert memo.run(LawContext(), system, ["loss"]) is not first
