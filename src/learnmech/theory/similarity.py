"""Similarity of the representations of two independently initialized networks of width n.

Let a layer of width ``n`` carry features ``φ_1 … φ_n`` of ``m`` probe inputs, and let its
linear kernel be ``K = (1/n) Σ_j φ_j φ_jᵀ`` ``(m, m)``. When the features are independent
draws around a width-independent limit ``K∞ = E[φφᵀ]`` (random features at
initialization; trained features that converge to a deterministic infinite-width limit),
``K_c = K∞_c + E/√n`` with centred ``E`` of zero mean and ``E‖E‖² = V``, and two networks
have independent fluctuations. CKA is the cosine of the angle between ``K_c`` and ``L_c``;
only the part ``E⊥`` of a fluctuation orthogonal to ``K∞_c`` turns it, by an angle
``‖E⊥‖/(√n‖K∞_c‖)``, so to leading order in ``1/n``::

    CKA(n) = 1 / (1 + v/n),      v = E‖E⊥‖² / ‖K∞_c‖²,

so the *gap* ``1/CKA − 1 = v/n`` falls as ``width^−1``: the exponent
:func:`gap_exponent`. The constant ``v`` is a property of the feature distribution (it is
large for random features, whose kernels fluctuate strongly, and smaller for learned ones),
and a competing theory of the same networks fixes it; the exponent is universal.
"""

from __future__ import annotations

import numpy as np

from learnmech.errors import InputError


def gap_exponent() -> float:
    """Exponent of ``1/CKA − 1`` against width for independent fluctuations: ``−1``."""
    return -1.0


def cka_gap(cka: float | np.ndarray) -> float | np.ndarray:
    """``1/CKA − 1`` ``(same shape)``: ``v/n`` for two independent width-``n`` samples."""
    c = np.asarray(cka, dtype=float)
    if np.any(c <= 0):
        raise InputError("cka", cka, "a similarity in (0, 1]")
    gap = 1.0 / c - 1.0
    return float(gap) if gap.ndim == 0 else gap


def independent_features_cka(width: float | np.ndarray, v: float) -> float | np.ndarray:
    """``1 / (1 + v/n)`` at width ``n`` (scalar or ``(k,)``): expected CKA of two networks
    whose kernels fluctuate independently with relative variance ``v`` per feature."""
    n = np.asarray(width, dtype=float)
    if np.any(n <= 0) or v < 0:
        raise InputError("width", width, "positive widths and v ≥ 0")
    out = 1.0 / (1.0 + v / n)
    return float(out) if out.ndim == 0 else out
