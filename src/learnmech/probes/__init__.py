"""Instruments that measure a model during or after training.

Each probe is a small object with a ``name`` and ``__call__(state)`` (see
:class:`learnmech.train.Probe`). :func:`make_probe` builds one from its name, which is how
the CLI and the store refer to them: on equal systems, equal names mean equal
measurements.
"""

from learnmech.probes import features, hessian, ntk  # noqa: F401  (register their probes)
from learnmech.probes.basic import (
    Accuracy,
    Balancedness,
    EndToEndSingularValues,
    Loss,
    ModeStrengths,
    WeightSingularValues,
)
from learnmech.probes.noise import GradientNoiseScale
from learnmech.probes.registry import PROBES, make_probe, make_probes, register_probe

__all__ = [
    "PROBES",
    "Accuracy",
    "Balancedness",
    "EndToEndSingularValues",
    "GradientNoiseScale",
    "Loss",
    "ModeStrengths",
    "WeightSingularValues",
    "make_probe",
    "make_probes",
    "register_probe",
]
