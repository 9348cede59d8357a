"""The Law contract: a claim from the literature made checkable.

A law states its claim, reference and regime of validity, and implements two
measurements at a budget:

* :meth:`Law.measure` runs the experiment where the claim should hold and returns
  :class:`Evidence`: a list of :class:`Criterion` (metric, value, tolerance fixed in code)
  and the figures that draw theory (lines) against measurement (dots);
* :meth:`Law.measure_control` runs the *negative control*, a configuration where the
  claim should not hold, judged by the same kind of criteria. Its verdict must be
  ``fails``: that is what shows the check can fail.

:meth:`Law.check` runs both and returns a :class:`Verdict`. Evidence ``holds`` when every
criterion passes, ``fails`` when one does not, and is ``inconclusive`` when a value could
not be measured (a diverged run, a NaN).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from learnmech.errors import InputError
from learnmech.store import Store
from learnmech.system import System
from learnmech.train import Schedule, Trajectory

Budget = Literal["quick", "standard", "full"]
BUDGETS: tuple[Budget, ...] = ("quick", "standard", "full")
Outcome = Literal["holds", "fails", "inconclusive"]

STRANDS = {
    "solvable": "Solvable idealized settings",
    "limits": "Tractable limits",
    "empirical": "Simple empirical laws",
    "hyperparameters": "Theories of hyperparameters",
    "universality": "Universal behaviours",
}


@dataclass
class Criterion:
    """One quantitative test: ``value`` compared with ``tolerance`` by ``sense``."""

    name: str
    value: float
    tolerance: float
    sense: Literal["<=", ">="] = "<="

    def __post_init__(self) -> None:
        self.value, self.tolerance = float(self.value), float(self.tolerance)

    @property
    def measured(self) -> bool:
        return math.isfinite(self.value)

    @property
    def passed(self) -> bool:
        if not self.measured:
            return False
        return self.value <= self.tolerance if self.sense == "<=" else self.value >= self.tolerance


@dataclass
class Curve:
    """One series of a figure: a theory line or measured dots (same ``group`` = same colour)."""

    label: str
    x: list[float]
    y: list[float]
    kind: Literal["theory", "measured"]
    group: str = ""


@dataclass
class Figure:
    """Data for one panel: curves, axes, optional horizontal reference lines."""

    title: str
    xlabel: str
    ylabel: str
    curves: list[Curve] = field(default_factory=list)
    xscale: Literal["linear", "log"] = "linear"
    yscale: Literal["linear", "log"] = "linear"
    hlines: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class Evidence:
    """What one side of a check measured."""

    criteria: list[Criterion]
    figures: list[Figure] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    notes: str = ""

    @property
    def outcome(self) -> Outcome:
        if not self.criteria or not all(c.measured for c in self.criteria):
            return "inconclusive"
        return "holds" if all(c.passed for c in self.criteria) else "fails"

    @property
    def headline(self) -> Criterion:
        """The criterion reported as *the* metric: the first failing one, else the first."""
        failing = [c for c in self.criteria if not c.passed]
        return failing[0] if failing else self.criteria[0]


@dataclass
class Verdict:
    """The result of :meth:`Law.check`: JSON-ready via :meth:`to_json`."""

    law_id: str
    strand: str
    claim: str
    reference: str
    regime: str
    control: str
    budget: Budget
    evidence: Evidence
    control_evidence: Evidence
    seconds: float

    @property
    def verdict(self) -> Outcome:
        return self.evidence.outcome

    def to_json(self) -> dict[str, Any]:
        """The CLI's JSON record, plus criteria, run ids and figure data."""
        head, ctrl = self.evidence.headline, self.control_evidence.headline
        return {
            "id": self.law_id,
            "strand": self.strand,
            "claim": self.claim,
            "reference": self.reference,
            "regime": self.regime,
            "budget": self.budget,
            "verdict": self.verdict,
            "metric": head.name,
            "value": head.value,
            "tolerance": head.tolerance,
            "sense": head.sense,
            "criteria": [asdict(c) | {"passed": c.passed} for c in self.evidence.criteria],
            "negative_control": {
                "description": self.control,
                "verdict": self.control_evidence.outcome,
                "metric": ctrl.name,
                "value": ctrl.value,
                "tolerance": ctrl.tolerance,
                "criteria": [
                    asdict(c) | {"passed": c.passed} for c in self.control_evidence.criteria
                ],
            },
            "run_ids": self.evidence.run_ids + self.control_evidence.run_ids,
            "notes": self.evidence.notes,
            "seconds": self.seconds,
            "figures": _strict_json(
                [asdict(f) for f in self.evidence.figures + self.control_evidence.figures]),
        }


def _strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [_strict_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    return value


class LawContext:
    """Where a law's runs go: a store (cached, resumable) or plain in-memory training.

    Args:
        store: the run store; ``None`` trains without storing.
        fresh: retrain even when the store holds a result.
        on_progress: ``callback(description, steps_done, steps_total)`` for progress bars.
    """

    def __init__(
        self,
        store: Store | None = None,
        fresh: bool = False,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.store = store
        self.fresh = fresh
        self.on_progress = on_progress

    def run(
        self, system: System, probes: Sequence[str], schedule: Schedule | None = None,
        label: str = "",
    ) -> Trajectory:
        """Train ``system`` with the named probes (through the store when there is one)."""
        progress = None
        if self.on_progress is not None:
            report = self.on_progress
            name = label or system.run_id

            def progress(done: int, total: int) -> None:
                report(name, done, total)

        if self.store is not None:
            return self.store.run(system, probes, schedule, fresh=self.fresh, progress=progress)
        from learnmech.probes import make_probes
        from learnmech.train import train

        return train(system, make_probes(probes), schedule, progress=progress)


class Law(ABC):
    """Base class of every law; subclasses set the class attributes and two methods."""

    id: ClassVar[str]
    strand: ClassVar[str]
    claim: ClassVar[str]
    reference: ClassVar[str]
    regime: ClassVar[str]
    control: ClassVar[str]
    budgets: ClassVar[dict[str, str]]

    @abstractmethod
    def measure(self, budget: Budget, ctx: LawContext) -> Evidence:
        """Run the experiment in the claim's regime and compare with theory."""

    @abstractmethod
    def measure_control(self, budget: Budget, ctx: LawContext) -> Evidence:
        """Run the negative control, judged by the same kind of criteria."""

    def check(self, budget: Budget = "quick", ctx: LawContext | None = None) -> Verdict:
        """Measure the claim and its negative control at ``budget``."""
        if budget not in BUDGETS:
            raise InputError("budget", budget, f"one of {list(BUDGETS)}")
        ctx = ctx or LawContext()
        start = time.perf_counter()
        evidence = self.measure(budget, ctx)
        control = self.measure_control(budget, ctx)
        return Verdict(
            law_id=self.id,
            strand=self.strand,
            claim=self.claim,
            reference=self.reference,
            regime=self.regime,
            control=self.control,
            budget=budget,
            evidence=evidence,
            control_evidence=control,
            seconds=time.perf_counter() - start,
        )


_REGISTRY: dict[str, Law] = {}


def register(cls: type[Law]) -> type[Law]:
    """Class decorator: add a law to the catalogue (ids are unique, kebab-case)."""
    if cls.id in _REGISTRY:
        raise ValueError(f"law id {cls.id!r} registered twice")
    if cls.strand not in STRANDS:
        raise ValueError(f"law {cls.id}: strand {cls.strand!r} not in {sorted(STRANDS)}")
    _REGISTRY[cls.id] = cls()
    return cls


def catalogue() -> list[Law]:
    """Every registered law, in strand order then id."""
    from learnmech.laws import _load_all

    _load_all()
    order = list(STRANDS)
    return sorted(_REGISTRY.values(), key=lambda law: (order.index(law.strand), law.id))


def get_law(law_id: str) -> Law:
    """The law with id ``law_id``; an unknown id raises :class:`InputError`."""
    laws = {law.id: law for law in catalogue()}
    if law_id not in laws:
        raise InputError("law", law_id, f"one of {sorted(laws)}")
    return laws[law_id]
