"""Curvature probes: sharpness ``λ_max(∇²L)`` and Adam's preconditioned sharpness
``λ_max(P⁻¹H)``, each warm-started from the previous top eigenvector.

The linear algebra (Hessian operator, Lanczos, trace and density estimates) is in
:mod:`learnmech.linalg`; :class:`TopEigenvalue` is the warm-started Lanczos reader shared by
these probes and the Monitor's sharpness twins (:mod:`learnmech.twins`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from learnmech.linalg import (
    HessianOperator,
    PreconditionedOperator,
    SymmetricOperator,
    adam_preconditioner,
    lanczos,
)
from learnmech.probes.base import Batch, LossFn, training_pair
from learnmech.probes.registry import register_probe


class TopEigenvalue:
    """The top eigenvalue of a symmetric operator by Lanczos (relative residual ``tol``),
    warm-started from the last top eigenvector kept under the same ``key``.

    Along a run the operator changes slowly, so a warm start usually needs a handful of
    products. Where none is kept, a Hessian starts from its gradient direction
    (:meth:`~learnmech.linalg.HessianOperator.gradient_start`, Gaussian half from
    ``seed``), any other operator from a Gaussian vector drawn from ``seed``.
    """

    def __init__(self, tol: float, max_iter: int) -> None:
        self.tol, self.max_iter = tol, max_iter
        self._v: dict[str, Tensor] = {}

    def reset(self) -> None:
        """Forget the kept vectors: the next reading starts from a random vector."""
        self._v = {}

    def __call__(self, op: SymmetricOperator, key: str = "", seed: int = 0) -> float:
        v0 = self._v.get(key)
        if v0 is None and isinstance(op, HessianOperator):
            v0 = op.gradient_start(seed)
        top = lanczos(op, 1, tol=self.tol, max_iter=self.max_iter, v0=v0, seed=seed)
        self._v[key] = top.vectors[:, 0]
        return float(top.values[0])


class Sharpness:
    """Sharpness ``λ_max(∇²L)`` of the loss on the batch (in :func:`learnmech.train.train`,
    the whole training split, also for SGD runs), by warm-started Lanczos (``tol`` 1e-4;
    ``seed`` draws the first start vector). Observable ``sharpness``."""

    name = "sharpness"

    def __init__(self, tol: float = 1e-4, max_iter: int = 200, seed: int = 0) -> None:
        self.top, self.seed = TopEigenvalue(tol, max_iter), seed

    def start(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> None:
        self.top.reset()

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> float:
        return self.top(HessianOperator(model, loss_fn, training_pair(batch)), seed=self.seed)


class PreconditionedSharpness(Sharpness):
    """``λ_max(P⁻¹H)`` with Adam's current preconditioner (:func:`adam_preconditioner`),
    warm-started like :class:`Sharpness`; NaN before the first update. Its stability
    threshold is ``(2 + 2β₁)/((1 − β₁)η)``. Observable ``preconditioned_sharpness``."""

    name = "preconditioned_sharpness"

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> float:
        p = adam_preconditioner(optimizer, model)
        if p is None:
            return math.nan
        return self.top(
            PreconditionedOperator(HessianOperator(model, loss_fn, training_pair(batch)), p),
            seed=self.seed,
        )


register_probe("sharpness")(Sharpness)
register_probe("preconditioned_sharpness")(PreconditionedSharpness)
