"""Top eigenpairs of a symmetric operator by block Lanczos with full reorthogonalization."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from learnmech.errors import InputError
from learnmech.linalg.operators import SymmetricOperator, as_generator, random_vector


@dataclass
class Eigenpairs:
    """Top eigenpairs found by :func:`lanczos`.

    ``values`` ``(k,)`` descending; ``vectors`` ``(dim, k)`` orthonormal columns;
    ``residuals`` ``(k,)`` the norms ``‖A y − θ y‖``; ``converged`` whether every residual
    is within the tolerance; ``matvecs`` the products used.
    """

    values: Tensor
    vectors: Tensor
    residuals: Tensor
    converged: bool
    matvecs: int


def orthogonalize(w: Tensor, rows: Tensor) -> Tensor:
    """``w`` (a vector or columns) minus its projection on the orthonormal rows of
    ``rows`` ``(m, dim)``, done twice (classical Gram–Schmidt, twice is enough)."""
    if rows.shape[0] == 0:
        return w
    for _ in range(2):
        w = w - rows.T @ (rows @ w)
    return w


class Basis:
    """Orthonormal vectors stored as contiguous rows, in a buffer that doubles when full."""

    def __init__(self, op: SymmetricOperator, capacity: int) -> None:
        self._rows = torch.empty(capacity, op.dim, dtype=op.dtype, device=op.device)
        self.size = 0

    def append(self, columns: Tensor) -> None:
        """Add the columns of ``columns`` ``(dim, b)`` as rows."""
        b = columns.shape[1]
        if self.size + b > self._rows.shape[0]:
            grown = self._rows.new_empty(2 * self._rows.shape[0] + b, self._rows.shape[1])
            grown[: self.size] = self._rows[: self.size]
            self._rows = grown
        self._rows[self.size : self.size + b] = columns.T
        self.size += b

    @property
    def rows(self) -> Tensor:
        return self._rows[: self.size]


def tridiagonal(alpha: list[float], beta: list[float]) -> Tensor:
    t = torch.diag(torch.tensor(alpha, dtype=torch.float64))
    if len(alpha) > 1:
        off = torch.tensor(beta[: len(alpha) - 1], dtype=torch.float64)
        t += torch.diag(off, 1) + torch.diag(off, -1)
    return t


def _next_block(w: Tensor, basis: Tensor, op: SymmetricOperator, gen: torch.Generator,
                floor: float) -> tuple[Tensor, Tensor]:
    """Orthonormalize the columns of ``w`` (already orthogonal to the rows of ``basis``)
    against each other, Gram–Schmidt twice: ``w ≈ Q_new R`` with ``R`` upper triangular
    (float64, CPU).
    A column that vanishes (norm ``≤ floor``: breakdown) is replaced by a random direction
    orthogonal to everything so far, with a zero row in ``R``."""
    b = w.shape[1]
    cols: list[Tensor] = []
    r = torch.zeros(b, b, dtype=torch.float64)
    for i in range(b):
        v = w[:, i]
        for _ in range(2 if cols else 0):
            done = torch.stack(cols)
            c = done @ v
            r[: len(cols), i] += c.double().cpu()
            v = v - done.T @ c
        norm = float(v.norm())
        if norm > floor:
            r[i, i] = norm
            cols.append(v / norm)
            continue
        done = torch.cat([basis, torch.stack(cols)]) if cols else basis
        v = orthogonalize(random_vector(op, gen), done)
        cols.append(v / v.norm())
    return torch.stack(cols, 1), r


def lanczos(
    op: SymmetricOperator,
    k: int = 1,
    *,
    tol: float = 1e-4,
    max_iter: int = 200,
    v0: Tensor | None = None,
    seed: int | torch.Generator = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Eigenpairs:
    """The ``k`` algebraically largest eigenpairs of a symmetric operator, by block Lanczos.

    Block size ``k`` (plain Lanczos for ``k = 1``): from ``V_1`` (``v0``, e.g. the previous
    top eigenvector(s) for a warm start, completed with Gaussian columns from ``seed``) it
    builds an orthonormal basis ``Q = [V_1 … V_j]`` of the block Krylov space with full
    reorthogonalization, so that ``QᵀAQ = T`` is block tridiagonal; the Ritz pairs
    ``(θ_i, Q s_i)`` of ``T`` approximate eigenpairs of ``A``, and an eigenvalue repeated up
    to ``k`` times is found with its multiplicity. It stops when the top ``k`` residuals
    ``‖A y_i − θ_i y_i‖ = ‖R_j s_i^{(last)}‖`` are all ``≤ tol · max|θ|``, after about
    ``max_iter`` products, or when ``Q`` spans the space. For symmetric ``A`` each Ritz
    value lies within its residual of an eigenvalue (typically within residual²/gap). A
    breakdown (an invariant subspace) continues from random directions orthogonal to ``Q``.

    Memory: ``dim × (products)`` in the operator's dtype; ``T`` and its entries ``qᵀAq``
    are computed in float64 (float32 on MPS).
    ``progress(products, bound)`` is called after each block with the most products it may
    take, and once more with ``(products, products)`` when it stops.
    """
    if k < 1 or k > op.dim:
        raise InputError("k", k, f"an integer in [1, {op.dim}]")
    if tol <= 0:
        raise InputError("tol", tol, "a positive tolerance")
    gen = as_generator(seed)
    start = torch.empty(op.dim, 0, dtype=op.dtype, device=op.device)
    if v0 is not None:
        start = v0.to(device=op.device, dtype=op.dtype).reshape(op.dim, -1)[:, :k]
        if not torch.isfinite(start).all() or bool((start.norm(dim=0) == 0).any()):
            raise InputError("v0", "zero or non-finite vector", "non-zero finite start vectors")
    extra = [random_vector(op, gen) for _ in range(k - start.shape[1])]
    start = torch.cat([start, *(e[:, None] for e in extra)], dim=1)
    block, _ = _next_block(start, start.T[:0], op, gen, 0.0)
    steps = max(1, min(max(max_iter, k) // k, op.dim // k))
    basis = Basis(op, min(steps, 16) * k)
    t = torch.zeros(steps * k, steps * k, dtype=torch.float64)
    exact = torch.float32 if op.device.type == "mps" else torch.float64
    products = 0
    for j in range(steps):
        lo, hi = j * k, (j + 1) * k
        basis.append(block)
        w = torch.stack([op.matvec(q) for q in block.T], dim=1)
        products += k
        # in float64 (MPS has none): summed in float32 over 269k parameters, these Rayleigh
        # quotients put the top eigenvalue of a Fashion-MNIST MLP's Hessian 1.1e-4 low
        a = block.T.to(exact) @ w.to(exact)
        t[lo:hi, lo:hi] = ((a + a.T) / 2).double().cpu()
        w = orthogonalize(w, basis.rows)
        theta, s = torch.linalg.eigh(t[:hi, :hi])
        order = torch.argsort(theta, descending=True)[:k]
        scale = max(float(theta.abs().max()), 1e-30)
        residuals = (w @ s[-k:, order].to(w)).norm(dim=0).double().cpu()
        converged = bool((residuals <= tol * scale).all())
        if converged or j == steps - 1:
            break
        if progress is not None:
            progress(products, steps * k)
        block, r = _next_block(w, basis.rows, op, gen, 1e-10 * scale)
        t[hi : hi + k, lo:hi] = r
        t[lo:hi, hi : hi + k] = r.T
    vectors = basis.rows.T @ s[:, order].to(dtype=op.dtype, device=op.device)
    if hi == op.dim:
        converged = True
    if progress is not None:
        progress(products, products)
    return Eigenpairs(theta[order], vectors, residuals, converged, products)

