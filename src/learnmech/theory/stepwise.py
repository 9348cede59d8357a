"""Stepwise learning in a linear self-supervised model (Simon et al. 2023).

Model and loss: embeddings ``f(x) = W x`` with ``W`` ``(e, d)``, two views ``x, x'`` of each
input, their symmetrized cross-correlation ``Γ = E[x x'ᵀ + x' xᵀ]/2`` ``(d, d)`` with
eigenpairs ``(γ_j, v_j)`` (descending), and the Barlow-Twins-like loss

    L(W) = ‖C − I‖_F²,   C = W Γ Wᵀ   (e, e),

trained by gradient flow ``dW/dt = −∇L = −4 (C − I) W Γ`` (GD with step ``η`` follows it at
``t = η·steps``). For ``W = U diag(s) Vᵀ`` aligned with ``Γ`` the eigenvalues
``c_j = γ_j s_j²`` of ``C`` decouple into logistic equations::

    dc_j/dt = 8 γ_j c_j (1 − c_j),   c_j(t) = 1 / (1 + (1/c_{j,0} − 1) e^{−8γ_j t}),

so the loss ``Σ_j (1 − c_j)²`` falls from ``e`` to 0 in ``e`` unit steps, mode ``j`` at
``t_j = ln(1/c_{j,0} − 1) / (8γ_j)``: larger eigenvalues first.

From a *small random* ``W₀`` the early phase is linear, ``W(t) = W₀ e^{4Γt}``, and each mode
grows in the embedding directions the earlier modes left free (saddle to saddle): the
effective initial strength of mode ``j`` is ``c_{j,0} = γ_j R_jj²`` with ``W₀ V_e = Q R`` the
QR (Gram-Schmidt) factorization of the initial embedding of the top ``e`` eigenvectors
(:func:`ssl_initial_strengths`). No constant is fitted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from learnmech.errors import InputError


def _check(gamma: float, c0: float) -> None:
    if gamma <= 0:
        raise InputError("gamma", gamma, "a positive eigenvalue of the cross-correlation")
    if not 0 < c0 < 1:
        raise InputError("c0", c0, "0 < c0 < 1 (a small positive initial strength)")


def ssl_mode_trajectory(gamma: float, c0: float, t: Sequence[float] | np.ndarray) -> np.ndarray:
    """``c(t)``, the eigenvalue of ``C`` for one aligned mode, at times ``t``."""
    _check(gamma, c0)
    t = np.asarray(t, dtype=float)
    return 1.0 / (1.0 + (1.0 / c0 - 1.0) * np.exp(-8.0 * gamma * t))


def ssl_time_to_learn(gamma: float, c0: float, fraction: float = 0.5) -> float:
    """Time for ``c`` to grow from ``c0`` to ``fraction`` (0 if it starts above it)."""
    _check(gamma, c0)
    if not 0 < fraction < 1:
        raise InputError("fraction", fraction, "a number in (0, 1)")
    if c0 >= fraction:
        return 0.0
    return math.log((1.0 / c0 - 1.0) * fraction / (1.0 - fraction)) / (8.0 * gamma)


def ssl_initial_strengths(w0: torch.Tensor, v: torch.Tensor, gamma: torch.Tensor) -> np.ndarray:
    """Effective initial strengths ``c_{j,0} = γ_j R_jj²`` of the top ``e`` modes.

    Args:
        w0: the initial weights ``(e, d)``.
        v: the top ``e`` eigenvectors of ``Γ`` as columns ``(d, e)``, descending.
        gamma: their eigenvalues ``(e,)``.
    """
    if v.shape[1] != w0.shape[0] or gamma.shape != (v.shape[1],):
        raise InputError("v", tuple(v.shape), f"the top e = {w0.shape[0]} eigenvectors (d, e)")
    _, r = torch.linalg.qr(w0.double() @ v.double())
    return (gamma.double() * torch.diagonal(r) ** 2).cpu().numpy()


def ssl_loss(c: np.ndarray) -> np.ndarray:
    """``L = Σ_j (1 − c_j)²`` for mode strengths ``c`` of shape ``(..., e)``."""
    return np.sum((1.0 - np.asarray(c, dtype=float)) ** 2, axis=-1)
