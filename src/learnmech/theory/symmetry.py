"""Conservation laws from parameter symmetries (Kunin et al. 2021, "Neural mechanics").

A loss invariant under a continuous transformation of the parameters has, under gradient
flow ``dθ/dt = −∇L``, a conserved quantity (Noether). Two cases are measured here:

* **Rescaling** (positively homogeneous activations): per hidden neuron,
  ``q_i = ‖a_i‖² − ‖w_i‖² − b_i²`` is conserved (:mod:`learnmech.probes.conservation`).
* **Scale** (weights ``w`` feeding a normalization, ``L(αw) = L(w)``): then ``⟨w, ∇_w L⟩ = 0``,
  so ``‖w‖²`` is conserved by gradient flow. Under GD with step ``η`` the orthogonality
  makes each step a right triangle: ``‖w_{k+1}‖² = ‖w_k‖² + η²‖g_k‖²`` exactly, so the norm
  only grows, by ``η ∫‖g‖² dt = O(η)`` at a fixed time ``t = η·k``.

With weight decay ``λ`` (``g → g + λθ``) each step also multiplies the quadratic
quantities by ``(1 − ηλ)²``: ``‖w_{k+1}‖² = (1 − ηλ)²‖w_k‖² + η²‖g_k‖²`` and
``q_{k+1} = (1 − ηλ)² q_k + O(η²)``, so under gradient flow both decay as ``e^{−2λt}``
(:func:`learnmech.theory.dln.conserved_decay`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from learnmech.errors import InputError


def gd_norm_growth(
    norm0_sq: float | np.ndarray, grad_sq: Sequence[float] | np.ndarray, lr: float,
    weight_decay: float = 0.0,
) -> np.ndarray:
    """Squared norms ``‖w_k‖²``, ``k = 0 … K``, of scale-invariant weights under GD.

    Args:
        norm0_sq: ``‖w_0‖²`` (a scalar, or one value per weight vector ``(m,)``).
        grad_sq: ``‖g_k‖²`` of the loss gradient (without decay) at steps ``k = 0 … K−1``:
            shape ``(K,)`` or ``(K, m)``.
        lr: the step ``η``.
        weight_decay: ``λ``.

    Returns:
        ``(K + 1,)`` or ``(K + 1, m)``: ``n_{k+1} = (1 − ηλ)² n_k + η² ‖g_k‖²``.
    """
    if lr <= 0:
        raise InputError("lr", lr, "a positive step size")
    g = np.asarray(grad_sq, dtype=float)
    shrink = (1.0 - lr * weight_decay) ** 2
    out = [np.asarray(norm0_sq, dtype=float)]
    for gk in g:
        out.append(shrink * out[-1] + lr**2 * gk)
    return np.stack(out)


def breaking_exponent() -> float:
    """Exponent ``p`` of ``|Δq| ∝ η^p`` at a fixed time ``t = η·k`` under GD: ``1``.

    Each step changes a gradient-flow invariant by ``η²`` times squared gradients (the
    cross term ``⟨θ, g⟩`` the symmetry cancels), e.g. ``q_{k+1} − q_k = η²(‖g_a‖² − ‖g_w‖²
    − g_b²)`` and ``‖w_{k+1}‖² − ‖w_k‖² = η²‖g_k‖²``; over ``t/η`` steps that is
    ``η ∫ (…) dt = O(η)``.
    """
    return 1.0


def conserved_decay_rate(weight_decay: float) -> float:
    """Rate ``2λ`` of ``q(t) = q(0) e^{−2λt}``: weight decay ``λ`` multiplies every quadratic
    invariant by ``(1 − ηλ)²`` per step (:func:`learnmech.theory.dln.conserved_decay`)."""
    if weight_decay < 0:
        raise InputError("weight_decay", weight_decay, "λ ≥ 0")
    return 2.0 * weight_decay
