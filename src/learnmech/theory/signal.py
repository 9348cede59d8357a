"""Signal propagation through deep random networks at initialization (Poole et al. 2016;
Schoenholz et al. 2017).

A wide network with weights ``W ~ N(0, σ_w²/fan_in)`` and biases ``b ~ N(0, σ_b²)`` maps
two inputs to pre-activations whose squared lengths ``q`` and correlation ``c`` follow
deterministic maps layer by layer (the NNGP recursion of :mod:`learnmech.theory.kernels`)::

    q^{l+1}    = σ_w² E[φ(√q^l z)²] + σ_b²                              (length map)
    q_12^{l+1} = σ_w² E[φ(u_1)φ(u_2)] + σ_b²,   c^{l+1} = q_12^{l+1} / √(q_11^{l+1} q_22^{l+1})

The length map has a fixed point ``q*``; at ``q*`` the correlation map has the fixed point
``c* = 1`` whose stability is set by ``χ₁ = σ_w² E[φ'(√q* z)²]``: ``χ₁ < 1`` is the ordered
phase (all inputs become correlated), ``χ₁ > 1`` the chaotic phase (a second fixed point
``c* < 1`` attracts). Near a stable fixed point ``|c^l − c*| ∝ e^{−l/ξ_c}`` with depth scale
``ξ_c = −1/ln χ_c``, ``χ_c = σ_w² E[φ'(u_1)φ'(u_2)]`` at ``c*`` (``χ_c = χ₁`` when
``c* = 1``); ``ξ_c`` diverges at the order–chaos boundary ``χ₁ = 1``, which is where
Schoenholz et al. find deep networks trainable (up to depth ``≈ 6 ξ_c``).

Here ``σ_w²`` is ``w_var`` and ``σ_b²`` is ``b_var``; activations are those of
:func:`~learnmech.theory.kernels.gaussian_expectations`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import brentq

from learnmech.errors import InputError
from learnmech.theory.kernels import Activation, gaussian_expectations, gaussian_variances


def _e(activation: Activation, q11: float, q22: float, q12: float) -> tuple[float, float]:
    t = torch.tensor
    k, kdot = gaussian_expectations(
        activation, t(q11, dtype=torch.float64), t(q22, dtype=torch.float64),
        t(q12, dtype=torch.float64),
    )
    return float(k), float(kdot)


def _e_diag(activation: Activation, q: float) -> tuple[float, float]:
    k, kdot = gaussian_variances(activation, torch.tensor(q, dtype=torch.float64))
    return float(k), float(kdot)


def length_map(q: float, activation: Activation, w_var: float, b_var: float) -> float:
    """``σ_w² E[φ(√q z)²] + σ_b²``."""
    return w_var * _e_diag(activation, q)[0] + b_var


def _iterate_length(
    activation: Activation, w_var: float, b_var: float, q0: float, tol: float
) -> tuple[float, bool]:
    """Iterate the length map from ``q0``: ``(q, converged)``; stops at ``q > 10¹²``."""
    q = q0
    for _ in range(10_000):
        nxt = length_map(q, activation, w_var, b_var)
        if not math.isfinite(nxt) or nxt > 1e12:
            return q, False
        if abs(nxt - q) <= tol * max(1.0, q):
            return nxt, True
        q = nxt
    return q, True


def length_fixed_point(
    activation: Activation, w_var: float, b_var: float, q0: float = 1.0, tol: float = 1e-13
) -> float:
    """``q*`` reached by iterating the length map from ``q0`` (raises if lengths diverge)."""
    q, converged = _iterate_length(activation, w_var, b_var, q0, tol)
    if not converged:
        raise InputError("w_var", w_var, "a variance for which the length map converges")
    return q


@dataclass(frozen=True)
class Propagation:
    """Layer-by-layer ``q_11``, ``q_22`` and ``c`` of two inputs; index ``l`` is the
    pre-activation of layer ``l + 1`` (index 0: the first layer, ``σ_w² x·x'/d + σ_b²``)."""

    q11: np.ndarray
    q22: np.ndarray
    c: np.ndarray


def propagate(
    q11: float, q22: float, c: float, depth: int, activation: Activation, w_var: float,
    b_var: float,
) -> Propagation:
    """Iterate the length and correlation maps ``depth − 1`` times from the first layer's
    ``(q_11, q_22, c)`` (transients included)."""
    qa, qb, cs = [q11], [q22], [c]
    for _ in range(depth - 1):
        q12 = cs[-1] * math.sqrt(qa[-1] * qb[-1])
        ka = length_map(qa[-1], activation, w_var, b_var)
        kb = length_map(qb[-1], activation, w_var, b_var)
        k12 = w_var * _e(activation, qa[-1], qb[-1], q12)[0] + b_var
        qa.append(ka)
        qb.append(kb)
        cs.append(min(1.0, k12 / math.sqrt(ka * kb)))
    return Propagation(np.array(qa), np.array(qb), np.array(cs))


def correlation_map(c: float, q: float, activation: Activation, w_var: float, b_var: float
                    ) -> float:
    """One step of the correlation map at fixed length ``q``."""
    return (w_var * _e(activation, q, q, c * q)[0] + b_var) / q


def chi1(activation: Activation, w_var: float, b_var: float) -> float:
    """``χ₁ = σ_w² E[φ'(√q* z)²]``: the slope of the correlation map at ``c = 1``.

    Where lengths grow without bound (e.g. ReLU with ``σ_w² > 2``) it is evaluated at the
    largest length reached (``~10¹²``), its limit for activations homogeneous at infinity.
    """
    q, _ = _iterate_length(activation, w_var, b_var, 1.0, 1e-13)
    return w_var * _e_diag(activation, q)[1]


def correlation_fixed_point(activation: Activation, w_var: float, b_var: float) -> float:
    """The stable fixed point ``c*`` of the correlation map at ``q*`` (1 in the ordered
    phase; the fixed point in ``[−1, 1)`` in the chaotic phase)."""
    q = length_fixed_point(activation, w_var, b_var)
    if w_var * _e_diag(activation, q)[1] <= 1.0:
        return 1.0
    g = lambda c: correlation_map(c, q, activation, w_var, b_var) - c  # noqa: E731
    lo = -1.0 if g(-1.0) > 0 else 0.0
    return brentq(g, lo, 1.0 - 1e-9, xtol=1e-14)


def depth_scale(activation: Activation, w_var: float, b_var: float) -> float:
    """``ξ_c = −1/ln χ_c`` with ``χ_c = σ_w² E[φ'(u_1)φ'(u_2)]`` at ``(q*, c*)``."""
    q = length_fixed_point(activation, w_var, b_var)
    c = correlation_fixed_point(activation, w_var, b_var)
    chi_c = w_var * _e(activation, q, q, c * q)[1]
    return -1.0 / math.log(chi_c)


def critical_w_var(activation: Activation, b_var: float, lo: float = 0.5, hi: float = 4.0
                   ) -> float:
    """The order–chaos boundary: ``σ_w²`` in ``[lo, hi]`` with ``χ₁ = 1`` at this ``σ_b²``."""
    return brentq(lambda w: chi1(activation, w, b_var) - 1.0, lo, hi, xtol=1e-12)
