"""The spectral norm ``‖A‖₂ = σ_max(A)`` of a matrix by Golub–Kahan–Lanczos bidiagonalization.

From a unit vector ``v_1`` the recurrence ``α_j u_j = A v_j − β_{j−1} u_{j−1}``,
``β_j v_{j+1} = Aᵀ u_j − α_j v_j`` (full reorthogonalization of both bases) builds
orthonormal ``U_k``, ``V_k`` with ``A V_k = U_k B_k``, ``B_k`` upper bidiagonal (``α`` on the
diagonal, ``β`` above it). The largest singular value of ``B_k`` increases monotonically to
``σ_max(A)`` and converges in far fewer than ``min(m, n)`` steps: two products with ``A``
per step instead of a full SVD's ``O(m n min(m, n))``. The products run in the matrix's own
precision (float32 stays float32: half the memory traffic of float64, and its rounding,
``≈ 10⁻⁷`` relative, is that of the matrix itself); ``B_k`` and its SVD are float64.
"""

from __future__ import annotations

import torch
from torch import Tensor

from learnmech.errors import InputError

DENSE_BELOW = 128
"""Matrices with ``min(m, n)`` at most this get a dense SVD: faster than the iteration."""


def spectral_norm(a: Tensor, *, tol: float = 1e-7, max_iter: int = 200, seed: int = 0) -> float:
    """``σ_max(a)`` for a matrix ``a`` ``(m, n)``.

    Small matrices (``min(m, n) ≤`` :data:`DENSE_BELOW`) go to a dense float64 SVD. Otherwise
    the products with ``a`` run in its dtype (float64, else float32), and the
    bidiagonalization stops when the estimate changes by less than ``tol`` (relative) over
    two steps, when ``β_j`` vanishes (the Krylov space is invariant: the estimate is
    exact), or after ``min(max_iter, m, n)`` steps (then exact up to rounding).
    """
    if a.ndim != 2:
        raise InputError("a", tuple(a.shape), "a matrix (2 dimensions)")
    m, n = a.shape
    if m == 0 or n == 0:
        return 0.0
    if min(m, n) <= DENSE_BELOW:
        return float(torch.linalg.matrix_norm(a.detach().double(), ord=2))
    a = a.detach().to(torch.float64 if a.dtype == torch.float64 else torch.float32)
    steps = min(max_iter, m, n)
    gen = torch.Generator().manual_seed(seed)
    us = a.new_zeros(steps, m)
    vs = a.new_zeros(steps + 1, n)
    v = torch.randn(n, generator=gen, dtype=a.dtype).to(a.device)
    vs[0] = v / v.norm()
    bidiagonal = torch.zeros(steps, steps, dtype=torch.float64)
    breakdown = 10 * torch.finfo(a.dtype).eps  # β below this × the estimate: invariant
    estimate, previous = 0.0, 0.0
    for j in range(steps):
        u = a @ vs[j]
        if j > 0:
            u = u - bidiagonal[j - 1, j].item() * us[j - 1]
        u = _reorthogonalized(u, us[:j])
        alpha = float(u.norm())
        if alpha == 0.0:  # A v_j lies in span(U): the space is invariant
            break
        us[j] = u / alpha
        bidiagonal[j, j] = alpha
        w = _reorthogonalized(a.T @ us[j] - alpha * vs[j], vs[: j + 1])
        beta = float(w.norm())
        if j % 2 == 1 or beta == 0.0 or j == steps - 1:
            top = torch.linalg.svdvals(bidiagonal[: j + 1, : j + 1])[0]
            previous, estimate = estimate, float(top)
            if beta <= breakdown * estimate or estimate - previous <= tol * estimate:
                break
        if j + 1 < steps:
            bidiagonal[j, j + 1] = beta
        vs[j + 1] = w / beta
    return estimate


def _reorthogonalized(w: Tensor, q: Tensor) -> Tensor:
    """``w`` minus its projection on the orthonormal rows of ``q`` ``(k, dim)``, twice."""
    if q.shape[0] == 0:
        return w
    for _ in range(2):
        w = w - q.T @ (q @ w)
    return w
