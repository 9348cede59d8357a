"""The Law contract: a claim from the literature made checkable.

A law states its claim, reference and regime of validity. It is written in one of two
forms:

* **measure once, judge twice** (:class:`JudgedLaw`): :meth:`JudgedLaw.measure` does all
  the training and returns a :class:`Measurement`; :meth:`JudgedLaw.predict` returns the
  theory's numbers as a :class:`Prediction`; :meth:`JudgedLaw.judge` compares the two and
  returns :class:`Evidence`. The same measurement is judged three ways: against the
  prediction, against a named competing theory (:meth:`JudgedLaw.control_prediction`,
  the negative control, which must fail), and against the prediction scaled by
  ``1 ± δ`` for δ in :data:`LADDER`, whose smallest step rejected on both sides (with
  every larger step) is the law's **resolving power**;
* the earlier form (:class:`Law` with :meth:`Law.measure` returning :class:`Evidence` and
  :meth:`Law.measure_control` running a separate control experiment), reported with
  ``resolving_power = None``.

Evidence ``holds`` when every criterion passes, ``fails`` when one does not, and is
``inconclusive`` when a value could not be measured (a diverged run, a NaN). A verdict is
``inconclusive`` too when its negative control does not fail: the check has not shown
that it can fail.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from learnmech.errors import InputError
from learnmech.figures import Curve, Figure  # noqa: F401  (Curve: re-exported to the law modules)
from learnmech.store import Store
from learnmech.system import System
from learnmech.train import Schedule, Trajectory

Budget = Literal["quick", "standard", "full"]
BUDGETS: tuple[Budget, ...] = ("quick", "standard", "full")
Outcome = Literal["holds", "fails", "inconclusive"]
LADDER: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.5)
"""Relative changes of a prediction tried to find a law's resolving power."""

STRANDS = {
    "solvable": "Solvable idealized settings",
    "limits": "Tractable limits",
    "empirical": "Simple empirical laws",
    "hyperparameters": "Theories of hyperparameters",
    "universality": "Universal behaviours",
}

T = TypeVar("T")


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
class Measurement:
    """What a law measured, before any theory is consulted: named observables (floats,
    arrays or tensors, shapes documented by the law), the run ids they came from, notes."""

    values: dict[str, Any]
    run_ids: list[str] = field(default_factory=list)
    notes: str = ""

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


@dataclass(frozen=True)
class Prediction:
    """A theory's numbers, keyed by name (floats, arrays or tensors).

    ``zero_scale`` is the additive scale of a perturbation for an entry that is exactly 0
    (a relative change of 0 is no change): :meth:`scaled` adds ``(factor − 1)·zero_scale``
    to such an entry and multiplies every other entry by ``factor``.
    """

    values: Mapping[str, Any]
    zero_scale: float | None = None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def scaled(self, factor: float) -> Prediction:
        """This prediction with every entry changed by the relative amount ``factor − 1``."""
        out = {}
        for key, value in self.values.items():
            if _all_zero(value):
                if self.zero_scale is None:
                    raise ValueError(f"prediction {key!r} is 0: declare zero_scale to perturb it")
                out[key] = value + (factor - 1.0) * self.zero_scale
            else:
                out[key] = value * factor
        return Prediction(out, self.zero_scale)


def _all_zero(value: Any) -> bool:
    if isinstance(value, int | float):
        return value == 0
    return not bool((value != 0).any())


@dataclass
class Sharpness:
    """How finely a judged law resolves its prediction.

    ``ladder`` holds, per relative change δ of :data:`LADDER`, the outcomes of judging the
    measurement against the prediction ×(1 − δ) and ×(1 + δ); ``resolving_power`` is the
    smallest δ rejected (``fails``) on both sides together with every larger δ, ``None``
    when the largest is not. A ``qualitative`` law has no ladder and says why.
    """

    resolving_power: float | None = None
    ladder: list[dict[str, Any]] = field(default_factory=list)
    qualitative: str = ""


@dataclass
class Verdict:
    """The result of :meth:`Law.check`: JSON-ready via :meth:`to_json`.

    ``control_theory`` names the competing theory the control judged (empty for a control
    run as a separate experiment, described by ``control``).
    """

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
    control_theory: str = ""
    sharpness: Sharpness = field(default_factory=Sharpness)
    stored_seconds: float = 0.0
    """Training time of the runs this check read back from the store instead of training."""

    @property
    def verdict(self) -> Outcome:
        """The evidence's outcome, ``inconclusive`` when the negative control did not fail."""
        if self.control_evidence.outcome != "fails":
            return "inconclusive"
        return self.evidence.outcome

    def to_json(self) -> dict[str, Any]:
        """The stored record: criteria, control, resolving power, run ids and figure data."""
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
            "criteria": _criteria_json(self.evidence.criteria),
            "negative_control": {
                "theory": self.control_theory or self.control,
                "description": self.control,
                "verdict": self.control_evidence.outcome,
                "metric": ctrl.name,
                "value": ctrl.value,
                "tolerance": ctrl.tolerance,
                "criteria": _criteria_json(self.control_evidence.criteria),
            },
            "resolving_power": self.sharpness.resolving_power,
            "qualitative": bool(self.sharpness.qualitative),
            "qualitative_reason": self.sharpness.qualitative,
            "ladder": self.sharpness.ladder,
            "run_ids": list(dict.fromkeys(self.evidence.run_ids + self.control_evidence.run_ids)),
            "notes": self.evidence.notes,
            "seconds": self.seconds,
            "stored_seconds": self.stored_seconds,
            "figures": _strict_json(
                [asdict(f) for f in self.evidence.figures + self.control_evidence.figures]),
        }


def _criteria_json(criteria: list[Criterion]) -> list[dict[str, Any]]:
    return [asdict(c) | {"passed": c.passed} for c in criteria]


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

    Runs of a :class:`System` go through :meth:`run` (and the store); anything else a
    law measures (a kernel at initialization, a purpose-built training loop) goes through
    :meth:`cached`, so every check made through one context measures it once.

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
        self._cached: dict[Hashable, Any] = {}
        self.stored_seconds = 0.0
        """Training time of the runs read back from the store rather than trained."""

    def cached(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()`` the first time ``key`` is asked for in this context, then its result.

        ``key`` must name everything the result depends on (law id, budget, seed…).
        """
        if key not in self._cached:
            self._cached[key] = compute()
        return self._cached[key]

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
            traj = self.store.run(system, probes, schedule, fresh=self.fresh, progress=progress)
            if traj.model is None:  # read back, not trained here
                self.stored_seconds += traj.seconds
            return traj
        from learnmech.probes import make_probes
        from learnmech.train import train

        return train(system, make_probes(probes), schedule, progress=progress)


class Law(ABC):
    """Base class of every law: metadata as class attributes, and :meth:`measure` plus
    :meth:`measure_control`, each returning :class:`Evidence` (a law written as
    measure / predict / judge subclasses :class:`JudgedLaw` instead)."""

    id: ClassVar[str]
    strand: ClassVar[str]
    claim: ClassVar[str]
    reference: ClassVar[str]
    regime: ClassVar[str]
    control: ClassVar[str]
    budgets: ClassVar[dict[str, str]]

    @abstractmethod
    def measure(self, budget: Budget, ctx: LawContext) -> Evidence | Measurement:
        """Run the experiment in the claim's regime (and, here, compare with theory)."""

    def measure_control(self, budget: Budget, ctx: LawContext) -> Evidence:
        """Run the negative control, judged by the same kind of criteria."""
        raise NotImplementedError(f"law {self.id} has no separate control experiment")

    def evaluate(self, budget: Budget, ctx: LawContext) -> tuple[Evidence, Evidence, str,
                                                                  Sharpness]:
        """The evidence, the control's evidence, the control's theory and the sharpness."""
        evidence = self.measure(budget, ctx)
        if not isinstance(evidence, Evidence):
            raise TypeError(f"law {self.id}: measure returned {type(evidence).__name__}, "
                            "not Evidence; a law that measures a Measurement is a JudgedLaw")
        return evidence, self.measure_control(budget, ctx), "", Sharpness()

    def check(self, budget: Budget = "quick", ctx: LawContext | None = None) -> Verdict:
        """Measure the claim and judge it and its negative control at ``budget``."""
        if budget not in BUDGETS:
            raise InputError("budget", budget, f"one of {list(BUDGETS)}")
        ctx = ctx or LawContext()
        start, stored = time.perf_counter(), ctx.stored_seconds
        evidence, control, theory, sharpness = self.evaluate(budget, ctx)
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
            control_theory=theory,
            sharpness=sharpness,
            stored_seconds=ctx.stored_seconds - stored,
        )


class JudgedLaw(Law):
    """A law as three functions: measure once, judge against theory, a rival and a ladder.

    Subclasses implement :meth:`measure` (all training, through ``ctx``), :meth:`predict`
    (numbers from ``theory/`` alone), :meth:`judge` (criteria with tolerances fixed in
    code) and :meth:`control_prediction`, the numbers of the competing theory named by
    ``control_theory`` for the *same* measurement. A law whose prediction cannot be
    scaled meaningfully sets ``qualitative`` to the reason.
    """

    control_theory: ClassVar[str]
    qualitative: ClassVar[str] = ""

    @abstractmethod
    def measure(self, budget: Budget, ctx: LawContext) -> Measurement:
        """All the law's training and measurement at ``budget``; no theory."""

    @abstractmethod
    def predict(self, budget: Budget) -> Prediction:
        """The theory's numbers for the experiment :meth:`measure` runs at ``budget``."""

    @abstractmethod
    def control_prediction(self, budget: Budget) -> Prediction:
        """The competing theory's numbers (``control_theory``) for the same experiment."""

    @abstractmethod
    def judge(self, measurement: Measurement, prediction: Prediction) -> Evidence:
        """Criteria comparing ``measurement`` with ``prediction``, and the figures."""

    def evaluate(self, budget: Budget, ctx: LawContext) -> tuple[Evidence, Evidence, str,
                                                                  Sharpness]:
        measurement = self.measure(budget, ctx)
        prediction = self.predict(budget)
        evidence = self._judged(measurement, prediction)
        control = self._judged(measurement, self.control_prediction(budget))
        if self.qualitative:
            return evidence, control, self.control_theory, Sharpness(qualitative=self.qualitative)
        return evidence, control, self.control_theory, self.sharpness(measurement, prediction)

    def sharpness(self, measurement: Measurement, prediction: Prediction) -> Sharpness:
        """Judge ``measurement`` against ``prediction`` scaled by ``1 ± δ``, δ in LADDER."""
        outcomes = [(delta, self.judge(measurement, prediction.scaled(1.0 - delta)).outcome,
                     self.judge(measurement, prediction.scaled(1.0 + delta)).outcome)
                    for delta in LADDER]
        power = None
        for delta, minus, plus in reversed(outcomes):
            if minus != "fails" or plus != "fails":
                break
            power = delta
        ladder = [{"change": d, "minus": m, "plus": p} for d, m, p in outcomes]
        return Sharpness(resolving_power=power, ladder=ladder)

    def _judged(self, measurement: Measurement, prediction: Prediction) -> Evidence:
        evidence = self.judge(measurement, prediction)
        evidence.run_ids = list(dict.fromkeys(evidence.run_ids + measurement.run_ids))
        if measurement.notes:
            evidence.notes = "; ".join(n for n in (measurement.notes, evidence.notes) if n)
        return evidence


_REGISTRY: dict[str, Law] = {}


def register(cls: type[Law]) -> type[Law]:
    """Class decorator: add a law to the catalogue (ids are unique, kebab-case)."""
    if cls.id in _REGISTRY:
        raise ValueError(f"law id {cls.id!r} registered twice")
    if cls.strand not in STRANDS:
        raise ValueError(f"law {cls.id}: strand {cls.strand!r} not in {sorted(STRANDS)}")
    _REGISTRY[cls.id] = cls()
    return cls


def registered() -> set[str]:
    """The ids registered so far (without loading the catalogue)."""
    return set(_REGISTRY)


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
