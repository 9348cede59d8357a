"""Deep linear networks: mode-by-mode learning (Saxe, McClelland & Ganguli 2014).

Setting: ``f(x) = W_L ⋯ W_1 x``, whitened inputs (``Σ_xx = I``), loss
``L = ½ E‖y − f(x)‖²`` (the ½ convention of :mod:`learnmech.system`), gradient flow
``dW_l/dt = −∂L/∂W_l``. Gradient descent with step ``η`` follows it at time ``t = η·step``.
Write ``Σ_yx = Σ_α λ_α u_α v_αᵀ`` and call ``s_α = u_αᵀ (W_L ⋯ W_1) v_α`` the strength of
mode ``α``.

Balanced, aligned weights decouple into one ODE per mode (site Eq. 11)::

    ds/dt = L s^{2 − 2/L} (λ − s)

* ``L = 1``: ``s(t) = λ + (s₀ − λ) e^{−t}`` (convex, no plateau);
* ``L = 2``: the logistic ``s(t) = λ / (1 + (λ/s₀ − 1) e^{−2λt})``;
* ``L ≥ 3``: integrated numerically (in ``log s``, so tiny ``s₀`` are exact).

Time to learn: the time at which ``s`` reaches ``fraction·λ``; for ``L = 2`` and half
height, ``t½ = ln(λ/s₀ − 1) / (2λ) ≈ ln(λ/s₀) / (2λ)``. (The site's ``τ ≈ ln(λ/s₀)/λ``
drops this factor 2; its GD widget uses ``t = 2η·step`` because its loss has no ½.)

From *small random* init, depth 2: with ``a = W₁v_α`` and ``b = W₂ᵀu_α``, the early phase
is linear (``ȧ = λb``, ``ḃ = λa``), so ``s_α(t) ≈ ‖a₀+b₀‖²/4 · e^{2λt} − ‖a₀−b₀‖²/4 ·
e^{−2λt}``. Matching the logistic's early phase ``s₀ e^{2λt}`` gives the parameter-free
effective initial strength ``s₀ = ‖a₀ + b₀‖² / 4`` (:func:`effective_initial_strength`).
For a group of modes sharing one ``λ`` the strengths are the singular values of the
projected block, and ``s₀`` are the eigenvalues of ``P₀ᵀP₀/4`` with ``P₀ = W₁V_g + W₂ᵀU_g``.

Conservation (Arora et al. 2018; Du et al. 2018): ``C_l = W_{l+1}ᵀW_{l+1} − W_l W_lᵀ`` is
constant under gradient flow and decays as ``C_l(0) e^{−2λ_wd t}`` with weight decay
``λ_wd`` (``dW/dt = −∇L − λ_wd W``). Under GD each step adds exactly
``η² (G_{l+1}ᵀG_{l+1} − G_l G_lᵀ)`` (``G`` the gradients) and multiplies by
``(1 − ηλ_wd)²``, so at fixed time ``t`` the drift from conservation is ``O(η)``: summing
the ``k = t/η`` steps, ``C_l(t) = (1 − ηλ_wd)^{2k} C_l(0) + η D_l(t) + O(η²)`` with the
first-order drift coefficient ``D_l(t) = ∫₀ᵗ e^{−2λ_wd (t−τ)} (G_{l+1}ᵀG_{l+1} − G_l G_lᵀ)(τ)
dτ`` taken along the gradient-flow path (:func:`balancedness_drift`; the modified-equation
view of Kunin et al. 2021).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.integrate import quad, solve_ivp

from learnmech.errors import InputError


def _check(lam: float, s0: float, depth: int) -> None:
    if lam <= 0:
        raise InputError("lam", lam, "a positive singular value")
    if depth < 1:
        raise InputError("depth", depth, "an integer ≥ 1")
    if depth >= 2 and not 0 < s0 < lam:
        raise InputError("s0", s0, f"0 < s0 < lam = {lam} (a small positive initial strength)")


def mode_trajectory(
    lam: float, s0: float, t: Sequence[float] | np.ndarray, depth: int = 2
) -> np.ndarray:
    """Strength ``s(t)`` of one balanced aligned mode at the times ``t`` (``t ≥ 0``).

    Args:
        lam: the mode's singular value ``λ`` of ``Σ_yx``.
        s0: its strength at ``t = 0``.
        t: times (gradient-flow units, ``η·step``), any order.
        depth: number of layers ``L``.
    """
    _check(lam, s0, depth)
    t = np.asarray(t, dtype=float)
    if depth == 1:
        return lam + (s0 - lam) * np.exp(-t)
    if depth == 2:
        return lam / (1.0 + (lam / s0 - 1.0) * np.exp(-2.0 * lam * t))
    # z = log s:  dz/dt = L s^{1 − 2/L} (λ − s)
    def rhs(_: float, z: np.ndarray) -> np.ndarray:
        s = math.exp(z[0])
        return np.array([depth * s ** (1.0 - 2.0 / depth) * (lam - s)])

    order = np.argsort(t)
    ts = t[order]
    sol = solve_ivp(rhs, (0.0, float(ts[-1]) if ts.size else 0.0), [math.log(s0)],
                    t_eval=ts, rtol=1e-10, atol=1e-12, method="LSODA")
    out = np.empty_like(t)
    out[order] = np.exp(sol.y[0])
    return out


def time_to_learn(lam: float, s0: float, depth: int = 2, fraction: float = 0.5) -> float:
    """Exact time for a balanced aligned mode to grow from ``s0`` to ``fraction·λ``.

    ``t = ∫ ds / (L s^{2−2/L} (λ − s))``; closed form for ``L ≤ 2``.
    """
    _check(lam, s0, depth)
    if not 0 < fraction < 1:
        raise InputError("fraction", fraction, "a number in (0, 1)")
    target = fraction * lam
    if depth == 1:
        return math.log((lam - s0) / (lam - target)) if s0 < target else 0.0
    if s0 >= target:
        return 0.0
    if depth == 2:
        return math.log((lam / s0 - 1.0) * fraction / (1.0 - fraction)) / (2.0 * lam)
    value, _ = quad(
        lambda z: 1.0 / (depth * math.exp(z) ** (1.0 - 2.0 / depth) * (lam - math.exp(z))),
        math.log(s0), math.log(target), limit=200, epsabs=0, epsrel=1e-10,
    )
    return float(value)


def effective_initial_strength(
    w1: torch.Tensor, w2: torch.Tensor, u: torch.Tensor, v: torch.Tensor
) -> np.ndarray:
    """Effective initial strengths of a group of modes of a depth-2 network at small init.

    Args:
        w1: first layer, ``(h, d_in)``.
        w2: second layer, ``(d_out, h)``.
        u: the group's left singular vectors of ``Σ_yx``, ``(d_out, k)``.
        v: its right singular vectors, ``(d_in, k)``.

    Returns:
        ``k`` strengths, descending: eigenvalues of ``P₀ᵀP₀ / 4`` with
        ``P₀ = w1 v + w2ᵀ u`` (``k = 1``: ``‖w1 v + w2ᵀ u‖² / 4``).
    """
    p = w1.detach().double() @ v.double() + w2.detach().double().T @ u.double()
    evals = torch.linalg.eigvalsh(p.T @ p / 4.0)
    return np.sort(evals.cpu().numpy())[::-1].copy()


def balancedness_drift(
    weights: Sequence[torch.Tensor], sigma_xx: torch.Tensor, sigma_yx: torch.Tensor,
    times: Sequence[float] | np.ndarray, weight_decay: float = 0.0,
) -> list[np.ndarray]:
    """First-order drift coefficients ``D_l(t)`` of the balancedness matrices under GD.

    Integrates gradient flow ``dW_l/dt = −G_l − λ_wd W_l`` of ``L = ½ tr Σ_yy − tr(Σ_yx Wᵀ)
    + ½ tr(W Σ_xx Wᵀ)``, ``W = W_L ⋯ W_1``, ``G_l = (W_L⋯W_{l+1})ᵀ (WΣ_xx − Σ_yx)
    (W_{l−1}⋯W_1)ᵀ``, together with ``dD_l/dt = G_{l+1}ᵀG_{l+1} − G_l G_lᵀ − 2λ_wd D_l``,
    ``D_l(0) = 0`` (float64, DOP853). GD with step ``η`` then has
    ``C_l(t) − (1 − ηλ_wd)^{2k} C_l(0) = η D_l(t) + O(η²)`` after ``k = t/η`` steps.

    Args:
        weights: ``W_1 … W_L`` at ``t = 0``, ``W_l`` of shape ``(n_l, n_{l−1})``.
        sigma_xx: input covariance ``(n_0, n_0)``.
        sigma_yx: input-output covariance ``(n_L, n_0)``.
        times: times ``t ≥ 0`` (gradient-flow units), ascending.
        weight_decay: ``λ_wd``.

    Returns:
        For each pair ``l = 1 … L−1``: ``D_l`` at ``times``, shape ``(len(times), n_l, n_l)``.
    """
    if len(weights) < 2:
        raise InputError("weights", len(weights), "at least two layers")
    t = np.asarray(times, dtype=float)
    if t.size == 0 or np.any(np.diff(t) < 0) or t[0] < 0:
        raise InputError("times", t.tolist(), "ascending times t ≥ 0")
    ws = [np.asarray(w.detach().double().cpu().numpy()) for w in weights]
    sxx = sigma_xx.detach().double().cpu().numpy()
    syx = sigma_yx.detach().double().cpu().numpy()
    shapes = [w.shape for w in ws] + [(w.shape[0], w.shape[0]) for w in ws[:-1]]
    sizes = [a * b for a, b in shapes]
    cuts = np.cumsum(sizes)[:-1]

    def rhs(_: float, y: np.ndarray) -> np.ndarray:
        parts = [p.reshape(shape) for p, shape in zip(np.split(y, cuts), shapes, strict=True)]
        w, d = parts[: len(ws)], parts[len(ws):]
        below = [np.eye(ws[0].shape[1])]  # W_{l−1} ⋯ W_1
        for wl in w[:-1]:
            below.append(wl @ below[-1])
        above = [np.eye(ws[-1].shape[0])]  # W_L ⋯ W_{l+1}, built from the top
        for wl in reversed(w[1:]):
            above.append(above[-1] @ wl)
        above.reverse()
        err = above[0] @ w[0] @ sxx - syx
        grads = [a.T @ err @ b.T for a, b in zip(above, below, strict=True)]
        dw = [-g - weight_decay * wl for g, wl in zip(grads, w, strict=True)]
        dd = [grads[l + 1].T @ grads[l + 1] - grads[l] @ grads[l].T - 2 * weight_decay * d[l]
              for l in range(len(d))]
        return np.concatenate([x.ravel() for x in dw + dd])

    y0 = np.concatenate([w.ravel() for w in ws] + [np.zeros(a * b) for a, b in shapes[len(ws):]])
    sol = solve_ivp(rhs, (0.0, float(t[-1])), y0, t_eval=t, method="DOP853", rtol=1e-10,
                    atol=1e-12)
    if not sol.success:
        raise RuntimeError(f"gradient-flow integration failed: {sol.message}")
    out = np.split(sol.y, cuts, axis=0)[len(ws):]
    return [o.T.reshape(len(t), *shape) for o, shape in zip(out, shapes[len(ws):], strict=True)]


def conserved_decay(
    c0: float | np.ndarray, weight_decay: float, t: np.ndarray | float
) -> np.ndarray:
    """``‖C(t)‖ = ‖C(0)‖ e^{−2 λ_wd t}`` under gradient flow with weight decay ``λ_wd``."""
    return np.asarray(c0) * np.exp(-2.0 * weight_decay * np.asarray(t, dtype=float))
