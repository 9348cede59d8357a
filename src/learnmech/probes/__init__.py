"""Instruments that measure a model during or after training.

Each probe is a small object with a ``name``, called as ``probe(model, loss_fn, batch,
optimizer, step)`` in any training loop (see :mod:`learnmech.probes.base`).
:func:`make_probe` builds one from its name, which is how the CLI and the store refer to
them: on equal systems, equal names mean equal measurements.
"""

from learnmech.probes import curvature, features, ntk  # noqa: F401  (register their probes)
from learnmech.probes.basic import (
    Accuracy,
    Balancedness,
    EndToEndSingularValues,
    Loss,
    ModeStrengths,
    ValidationLoss,
    WeightSingularValues,
)
from learnmech.probes.collapse import NeuralCollapse, collapse_metrics
from learnmech.probes.conservation import NeuronBalance, neuron_balance
from learnmech.probes.feature_ansatz import FeatureAnsatz, agop, matrix_correlation
from learnmech.probes.noise import GradientNoiseScale
from learnmech.probes.registry import PROBES, make_probe, make_probes, register_probe
from learnmech.probes.similarity import FeatureGram, alignment, cka, linear_cka, mutual_knn
from learnmech.probes.stepwise import ResponseModes, UpdateRank, effective_rank

__all__ = [
    "PROBES",
    "Accuracy",
    "Balancedness",
    "EndToEndSingularValues",
    "FeatureAnsatz",
    "FeatureGram",
    "GradientNoiseScale",
    "Loss",
    "ModeStrengths",
    "NeuralCollapse",
    "NeuronBalance",
    "ResponseModes",
    "UpdateRank",
    "ValidationLoss",
    "WeightSingularValues",
    "agop",
    "alignment",
    "cka",
    "collapse_metrics",
    "effective_rank",
    "linear_cka",
    "make_probe",
    "make_probes",
    "matrix_correlation",
    "mutual_knn",
    "neuron_balance",
    "register_probe",
]
