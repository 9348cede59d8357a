"""Curvature probes for training runs: sharpness ``λ_max(∇²L)`` and Adam's preconditioned
sharpness ``λ_max(P⁻¹H)``, each warm-started from the previous top eigenvector.

The linear algebra (Hessian operator, Lanczos, trace and density estimates) is in
:mod:`learnmech.linalg`; these are thin readers of a training run's state.
"""

from __future__ import annotations

import math

from torch import Tensor

from learnmech.linalg import (
    HessianOperator,
    PreconditionedOperator,
    SymmetricOperator,
    adam_preconditioner,
    lanczos,
)
from learnmech.linalg.hessian import Batch
from learnmech.probes.registry import register_probe
from learnmech.train import ProbeState


def _train_batch(state: ProbeState) -> Batch:
    return state.data.x_train, state.data.y_train


class Sharpness:
    """Sharpness ``λ_max(∇²L)`` of the full training loss, by Lanczos (``tol`` 1e-4).

    Each measurement warm-starts from the previous top eigenvector, so along a run it
    usually needs a handful of products. The loss is the system's objective on the whole
    training split (also for SGD runs). Observable ``sharpness``.
    """

    name = "sharpness"

    def __init__(self, tol: float = 1e-4, max_iter: int = 200) -> None:
        self.tol, self.max_iter = tol, max_iter
        self._v: Tensor | None = None

    def start(self, state: ProbeState) -> None:
        self._v = None

    def __call__(self, state: ProbeState) -> float:
        return self._top(HessianOperator(state.model, state.loss_fn, _train_batch(state)),
                         state)

    def _top(self, op: SymmetricOperator, state: ProbeState) -> float:
        """The top eigenvalue of ``op``, warm-started from (and keeping) the last vector."""
        top = lanczos(op, 1, tol=self.tol, max_iter=self.max_iter, v0=self._v,
                      seed=state.system.seed)
        self._v = top.vectors[:, 0]
        return float(top.values[0])


class PreconditionedSharpness(Sharpness):
    """``λ_max(P⁻¹H)`` with Adam's current preconditioner (:func:`adam_preconditioner`),
    warm-started like :class:`Sharpness`; NaN before the first update. Its stability
    threshold is ``(2 + 2β₁)/((1 − β₁)η)``. Observable ``preconditioned_sharpness``."""

    name = "preconditioned_sharpness"

    def __call__(self, state: ProbeState) -> float:
        p = adam_preconditioner(state.optimizer, state.model)
        if p is None:
            return math.nan
        return self._top(PreconditionedOperator(
            HessianOperator(state.model, state.loss_fn, _train_batch(state)), p), state)


register_probe("sharpness")(Sharpness)
register_probe("preconditioned_sharpness")(PreconditionedSharpness)
