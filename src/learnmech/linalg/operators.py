"""Symmetric linear operators: the one small interface every spectral routine here takes.

A :class:`SymmetricOperator` is anything with ``dim``, ``dtype``, ``device`` and
``matvec(v)`` for ``v`` of shape ``(dim,)``. :class:`DenseOperator` wraps a matrix (the
reference that tests compare matrix-free operators with); :class:`PreconditionedOperator`
is ``P^{-1/2} A P^{-1/2}`` for a positive diagonal ``P``. The Hessian of a module's loss
is in :mod:`learnmech.linalg.hessian`.
"""

from __future__ import annotations

from typing import Literal, Protocol

import torch
from torch import Tensor

from learnmech.errors import InputError


class SymmetricOperator(Protocol):
    """A symmetric linear map on vectors of length ``dim`` (dtype and device given)."""

    dim: int
    dtype: torch.dtype
    device: torch.device

    def matvec(self, v: Tensor) -> Tensor: ...


class DenseOperator:
    """A symmetric matrix ``(dim, dim)`` as a :class:`SymmetricOperator`."""

    def __init__(self, matrix: Tensor) -> None:
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise InputError("matrix", tuple(matrix.shape), "a square matrix")
        self.matrix = matrix
        self.dim = matrix.shape[0]
        self.dtype = matrix.dtype
        self.device = matrix.device
        self.matvecs = 0

    def matvec(self, v: Tensor) -> Tensor:
        self.matvecs += 1
        return self.matrix @ v


def as_generator(seed: int | torch.Generator) -> torch.Generator:
    """``seed`` itself if it is a generator, else a new CPU generator seeded with it."""
    return seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)


def random_vector(op: SymmetricOperator, generator: torch.Generator,
                  kind: Literal["gaussian", "rademacher"] = "gaussian") -> Tensor:
    """A Gaussian or Rademacher vector ``(op.dim,)`` in the operator's dtype and device,
    drawn in float64 on the CPU (so the draw does not depend on the device)."""
    if kind == "rademacher":
        z = torch.randint(0, 2, (op.dim,), generator=generator).to(torch.float64) * 2 - 1
    else:
        z = torch.randn(op.dim, generator=generator, dtype=torch.float64)
    return z.to(device=op.device, dtype=op.dtype)


class PreconditionedOperator:
    """``P^{-1/2} H P^{-1/2}`` for a positive diagonal ``P``: symmetric, with the same
    eigenvalues as ``P⁻¹H`` (eigenvectors ``u`` of it map to ``P^{-1/2}u`` of ``P⁻¹H``)."""

    def __init__(self, op: SymmetricOperator, p: Tensor) -> None:
        if p.shape != (op.dim,) or bool((p <= 0).any()):
            raise InputError("p", tuple(p.shape), f"a positive vector of shape ({op.dim},)")
        self.op = op
        self.scale = p.to(device=op.device, dtype=op.dtype).rsqrt()
        self.dim, self.dtype, self.device = op.dim, op.dtype, op.device

    def matvec(self, v: Tensor) -> Tensor:
        return self.scale * self.op.matvec(self.scale * v)

