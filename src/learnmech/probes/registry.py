"""Probes by name: what ``--probe NAME`` and the store's cache key refer to."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from learnmech.errors import InputError
from learnmech.probes.base import Probe
from learnmech.probes.basic import (
    Accuracy,
    Balancedness,
    EndToEndSingularValues,
    Loss,
    ModeStrengths,
    ValidationLoss,
    WeightSingularValues,
)

PROBES: dict[str, Callable[[], Probe]] = {
    "loss": Loss,
    "validation_loss": ValidationLoss,
    "accuracy": Accuracy,
    "weight_svals": WeightSingularValues,
    "e2e_svals": EndToEndSingularValues,
    "mode_strengths": ModeStrengths,
    "balancedness": Balancedness,
}


def register_probe(name: str) -> Callable[[Callable[[], Probe]], Callable[[], Probe]]:
    """Decorator: make a zero-argument factory (often the probe class) available by name."""

    def deco(factory: Callable[[], Probe]) -> Callable[[], Probe]:
        if name in PROBES:
            raise ValueError(f"probe {name!r} registered twice")
        PROBES[name] = factory
        return factory

    return deco


def make_probe(name: str) -> Probe:
    """A fresh probe called ``name``."""
    if name not in PROBES:
        raise InputError("probe", name, f"one of {sorted(PROBES)}")
    return PROBES[name]()


def make_probes(names: Iterable[str]) -> list[Probe]:
    return [make_probe(n) for n in names]
