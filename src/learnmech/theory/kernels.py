"""Analytic infinite-width kernels (NNGP and NTK) of fully connected networks.

A fully connected network of ``depth`` dense layers ``z_l = dense_l(h_{l-1})``,
``h_l = φ(z_l)`` with ``h_0 = x``, becomes a Gaussian process as the hidden width ``n``
goes to infinity (Neal 1996; Lee et al. 2018), and its neural tangent kernel becomes
deterministic (Jacot et al. 2018). With ``σ_w = w_std`` and ``σ_b = b_std``:

* NTK parametrization (``"ntk"``, neural-tangents' ``stax.Dense(n, W_std, b_std,
  parameterization='ntk')``): ``z = σ_w/√fan_in · W h + σ_b b`` with ``W, b ~ N(0, 1)``.
  The recursion is ::

      K_1 = σ_w² xᵀx'/d + σ_b²,                 Θ_1 = K_1
      K_{l+1} = σ_w² E[φ(u)φ(v)] + σ_b²,       Θ_{l+1} = K_{l+1} + σ_w² E[φ'(u)φ'(v)] Θ_l

  with ``(u, v) ~ N(0, [[K_l(x,x), K_l(x,x')], [K_l(x,x'), K_l(x',x')]])``. The last layer
  is the readout (its width, the number of outputs, stays finite); ``K_L`` and ``Θ_L`` are
  the covariance and the NTK of every output, and different outputs are independent.
* Standard parametrization (``"standard"``, neural-tangents' ``parameterization='standard'``
  with ``s=(1, 1)``): ``z = W h + b`` with ``W ~ N(0, σ_w²/fan_in)``, ``b ~ N(0, σ_b²)``.
  The NNGP is the same; the NTK of the finite ``width`` network at unit learning rate is ::

      Θ_1 = xᵀx' + [bias],     Θ_{l+1} = n E[φ(u)φ(v)] + σ_w² E[φ'(u)φ'(v)] Θ_l + [bias]

  where ``[bias]`` is 1 when the layers have biases (``b_std`` not ``None``). It grows
  linearly with the width: this is why standard parametrization needs ``lr ∝ 1/width``.

``b_std=None`` means no biases (as in neural-tangents); in the NTK parametrization it is
the same as ``b_std=0``.

learnmech's own ``MLP(parametrization="ntp", init_scale=σ, bias=False)`` draws
``W ~ N(0, σ²)`` with multiplier ``1/√fan_in`` (σ in the weights, not in the multiplier):
its NNGP is ``K`` with ``w_std=σ`` and its NTK is ``Θ / σ²``, or exactly ``Θ`` with
``empirical_ntk(..., weights={name: σ² for every weight})``.

The Gaussian expectations ``E[φ(u)φ(v)]`` and ``E[φ'(u)φ'(v)]`` are in closed form for
``relu`` (the arc-cosine kernel of Cho & Saul 2009), ``leaky_relu``, ``erf`` (Williams
1997), ``gelu`` (Tsuchida et al. 2020; neural-tangents' ``stax.Gelu``) and ``identity``;
for ``tanh`` they come from Mehler's formula ``Σ_n ρⁿ a_n(q11) a_n(q22)``, a series in the
correlation ``ρ`` whose Hermite coefficients ``a_n`` are computed once per variance, cut
where its Parseval tail bounds the error within ``tol`` (:func:`_mehler`; entries it cannot
bound, at large variances or ``|ρ|`` near 1, go to the rule below). For any other activation
(a callable ``φ(tensor) -> tensor``), and for entries the series leaves, they are computed
by a two-dimensional trapezoid rule in Gaussian coordinates with error control: the rule
doubles (37, 73, 145, … :data:`MAX_POINTS` nodes per dimension) on the entries not yet
converged. The trapezoid rule's error for an integrand analytic in a strip is
``exp(−2πd/h)``, so halving the spacing ``h`` squares it: with ``Δ`` the difference of the
last two rules relative to the Cauchy–Schwarz scale ``√(E[φ(u)²] E[φ(v)²])``, the finer
rule's error is about ``Δ²``. An entry is done when ``Δ² ≤ tol`` (default
:data:`QUADRATURE_TOL`), and the largest ``Δ²`` is the error estimate carried by
:class:`Kernels` (with the series' bound for the entries it took). Large pre-activation
variances need more nodes (``tanh(√q z)`` has poles at ``z = iπ/(2√q)``): 73 for ``q ≈ 1``,
145 for ``q ≈ 4``, 577 for ``q ≈ 40``, the finest rule for ``q ≈ 400``. Derivatives are by
autograd for callables. Everything is float64, on ``x1``'s device.

Memory: besides the two ``(N1, N2)`` outputs, the work is done in blocks of rows of
``x1`` so that the temporaries stay under ``max_memory`` bytes (closed forms use about 12
``N2``-long float64 rows per row of ``x1``); quadrature works on chunks of entries whose
``(chunk, G, G)`` grids fit the same budget.
For example ``N1 = N2 = 10,000`` ReLU inputs need 1.6 GB for the outputs plus the budget.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from learnmech.errors import InputError
from learnmech.memory import require_memory

Activation = str | Callable[[Tensor], Tensor]
Parameterization = Literal["ntk", "standard"]

_BLOCK = 2**18  # entries per block of the closed-form path (a few MB of temporaries)
_EPS = torch.finfo(torch.float64).eps
_SNAP = 8 * _EPS
CLOSED_FORM = ("relu", "leaky_relu", "erf", "gelu", "identity")
QUADRATURE = ("tanh",)
QUADRATURE_TOL = 1e-12
"""Default agreement of two successive quadrature rules, relative to the entry's scale."""
MIN_POINTS, MAX_POINTS = 37, 1153
"""Nodes per dimension of the first and the finest two-dimensional rule (spacing 1/2
to 1/64 on ``[−9, 9]``); each refinement doubles the intervals."""
_MAX_POINTS_1D = 2**16 + 1


@dataclass(frozen=True)
class Kernels:
    """The NNGP ``K(x1, x2)`` and NTK ``Θ(x1, x2)``, each ``(N1, N2)`` float64
    (``None`` for a kernel that was not requested), and ``error``: the largest estimated
    relative quadrature error of a layer's expectations (0 for closed forms; the first
    layer's, relative to the entry's scale, compounds mildly through the depth)."""

    nngp: Tensor | None
    ntk: Tensor | None
    error: float = 0.0


def gaussian_expectations(
    activation: Activation,
    q11: Tensor,
    q22: Tensor,
    q12: Tensor,
    *,
    negative_slope: float = 0.01,
    quadrature_points: int | None = None,
    tol: float = QUADRATURE_TOL,
) -> tuple[Tensor, Tensor]:
    """``E[φ(u)φ(v)]`` and ``E[φ'(u)φ'(v)]`` for ``(u, v) ~ N(0, [[q11, q12], [q12, q22]])``.

    All arguments broadcast together; the results have their common shape.
    ``negative_slope`` is the slope of ``leaky_relu`` below zero. Activations without a
    closed form use the error-controlled quadrature of the module docstring (``tol``);
    ``quadrature_points`` fixes the rule instead.
    """
    k, kdot, _ = expectations_with_error(
        activation, q11, q22, q12, negative_slope=negative_slope,
        quadrature_points=quadrature_points, tol=tol)
    return k, kdot


def expectations_with_error(
    activation: Activation,
    q11: Tensor,
    q22: Tensor,
    q12: Tensor,
    *,
    negative_slope: float = 0.01,
    quadrature_points: int | None = None,
    tol: float = QUADRATURE_TOL,
) -> tuple[Tensor, Tensor, float]:
    """:func:`gaussian_expectations` and the largest estimated relative error: 0 for
    closed forms, else ``Δ²`` with ``Δ`` the difference of the last two rules
    (``quadrature_points`` and half as many, for a fixed rule) over
    ``√(E[φ(u)²]E[φ(v)²])`` and ``√(E[φ'(u)²]E[φ'(v)²])`` (see the module docstring)."""
    if isinstance(activation, str):
        # closed forms take q11, q22 unexpanded: their roots are taken before broadcasting
        q12 = q12.expand(torch.broadcast_shapes(q11.shape, q22.shape, q12.shape))
        if activation == "identity":
            return q12.clone(), torch.ones_like(q12), 0.0
        if activation in ("relu", "leaky_relu"):
            return (*_relu_expectations(q11, q22, q12, negative_slope if activation ==
                                        "leaky_relu" else 0.0), 0.0)
        if activation == "erf":  # in place on fresh temporaries: these run on N² blocks
            a1, a2 = 1.0 + 2.0 * q11, 1.0 + 2.0 * q22
            k = (q12 * a1.rsqrt().mul_(2.0)).mul_(a2.rsqrt())
            k = k.clamp_(-1.0, 1.0).arcsin_().mul_(2.0 / math.pi)
            kdot = torch.addcmul(a1 * a2, q12, q12, value=-4.0).rsqrt_().mul_(4.0 / math.pi)
            return k, kdot, 0.0
        if activation == "gelu":
            return (*_gelu_expectations(*torch.broadcast_tensors(q11, q22, q12)), 0.0)
        if activation not in QUADRATURE:
            raise InputError(
                "activation", activation, f"one of {list(CLOSED_FORM + QUADRATURE)} or a callable"
            )
    _check_rule(quadrature_points, tol)
    q11, q22, q12 = torch.broadcast_tensors(q11, q22, q12)
    return _adaptive_quadrature(_function_and_derivative(activation), q11, q22, q12,
                                quadrature_points, tol, series=activation == "tanh")


def _check_rule(points: int | None, tol: float) -> None:
    if points is not None and not (isinstance(points, int) and points >= 2):
        raise InputError("quadrature_points", points, "an integer ≥ 2, or None (adaptive)")
    if not tol > 0:
        raise InputError("tol", tol, "a positive relative tolerance")


def _gelu_expectations(q11: Tensor, q22: Tensor, q12: Tensor) -> tuple[Tensor, Tensor]:
    """Closed forms for ``φ(x) = x Φ(x)``: with ``p = q11 q22``, ``p₊ = (q11+1)(q22+1)``,
    ``δ = √(p₊ − q12²)`` and ``α = arctan(q12/δ)``::

        E[φφ]   = q12/4 + [q12 α + (q12² + p δ²)/(p₊ δ)] / (2π)
        E[φ'φ'] = 1/4 + α/(2π) + q12/(2πδ) · (1/δ² + (1 − p)/p₊ + 1)
    """
    p, p1 = q11 * q22, (q11 + 1.0) * (q22 + 1.0)
    delta2 = p1 - q12 * q12
    delta = delta2.sqrt()
    angle = torch.atan2(q12, delta)
    k = (q12 * q12 + p * delta2) / (p1 * delta) + q12 * angle
    k = k / (2 * math.pi) + 0.25 * q12
    kdot = (1.0 / delta2 + (1.0 - p) / p1 + 1.0) * q12 / (2 * math.pi * delta)
    kdot = kdot + 0.25 + angle / (2 * math.pi)
    return k, kdot


def _relu_expectations(
    q11: Tensor, q22: Tensor, q12: Tensor, slope: float
) -> tuple[Tensor, Tensor]:
    """Arc-cosine kernel of degree 1 and 0 (Cho & Saul 2009) for ``φ(x) = a x + (1 − a)
    relu(x)``: ``E[φφ] = a q12 + (1−a)² √(q11 q22)(sin θ + (π − θ) cos θ)/(2π)`` and
    ``E[φ'φ'] = a + (1−a)² (π − θ)/(2π)`` with ``cos θ = q12/√(q11 q22)``."""
    r1, r2 = q11.clamp_min(1e-300).rsqrt(), q22.clamp_min(1e-300).rsqrt()
    c = (q12 * r1).mul_(r2).clamp_(-1.0, 1.0)
    # θ = arccos c has slope −1/√(1−c²): a pair of equal inputs whose Gram entries differ
    # by round-off would get θ ~ 1e-8. Within a few ulps of ±1, c is ±1.
    c.masked_fill_(c > 1.0 - _SNAP, 1.0).masked_fill_(c < _SNAP - 1.0, -1.0)
    rest = torch.arcsin(c).add_(math.pi / 2)  # π − θ = π/2 + arcsin c
    k = (c * c).neg_().add_(1.0).clamp_min_(1e-300)
    k.mul_(k.rsqrt())  # sin θ (√ as x·x^−½: rsqrt is vectorized, sqrt is not)
    scale = (1.0 - slope) ** 2 / (2 * math.pi)
    k.addcmul_(rest, c).mul_(q11 * r1 * scale).mul_(q22 * r2)  # × √(q11 q22)
    kdot = rest.mul_((1.0 - slope) ** 2 / (2 * math.pi))
    if slope:
        k.add_(q12, alpha=slope)
        kdot.add_(slope)
    return k, kdot


def gaussian_variances(
    activation: Activation,
    q: Tensor,
    *,
    negative_slope: float = 0.01,
    quadrature_points: int | None = None,
    tol: float = QUADRATURE_TOL,
) -> tuple[Tensor, Tensor]:
    """``E[φ(√q z)²]`` and ``E[φ'(√q z)²]`` for ``z ~ N(0, 1)``: the diagonal ``u = v`` of
    :func:`gaussian_expectations`, by a one-dimensional rule where there is no closed form
    (doubled from 37 nodes until two successive rules differ by at most ``√tol`` relative)."""
    if _closed(activation):
        return gaussian_expectations(activation, q, q, q, negative_slope=negative_slope)
    if isinstance(activation, str) and activation not in QUADRATURE:
        raise InputError(
            "activation", activation, f"one of {list(CLOSED_FORM + QUADRATURE)} or a callable"
        )
    _check_rule(quadrature_points, tol)
    return _variances(_function_and_derivative(activation), q, quadrature_points, tol)


def _variances(
    both: Pair,
    q: Tensor,
    points: int | None,
    tol: float,
) -> tuple[Tensor, Tensor]:
    """``E[φ(√q z)²]`` and ``E[φ'(√q z)²]`` by a fixed or a doubling trapezoid rule."""

    def rule(points: int) -> tuple[Tensor, Tensor]:
        z, w = _gaussian_rule(points, q)
        f, df = both(torch.sqrt(q).unsqueeze(-1) * z)
        return (f * f * w).sum(-1), (df * df * w).sum(-1)

    if points is not None:
        return rule(points)
    points, (k, kdot) = MIN_POINTS, rule(MIN_POINTS)
    while points < _MAX_POINTS_1D:
        points = 2 * points - 1
        k2, kdot2 = rule(points)
        done = bool(((k2 - k).abs() <= math.sqrt(tol) * k2.abs()).all()
                    and ((kdot2 - kdot).abs() <= math.sqrt(tol) * kdot2.abs()).all())
        k, kdot = k2, kdot2
        if done:
            break
    return k, kdot


Pair = Callable[[Tensor], tuple[Tensor, Tensor]]


def _function_and_derivative(activation: Activation) -> Pair:
    """``x ↦ (φ(x), φ'(x))``, sharing work where it can (``tanh``: ``φ' = 1 − φ²``)."""
    if activation == "tanh":
        def tanh(x: Tensor) -> tuple[Tensor, Tensor]:
            t = torch.tanh(x)
            return t, 1.0 - t * t

        return tanh
    if isinstance(activation, str):
        raise InputError("activation", activation, "a name with a known derivative or a callable")
    fn = activation

    def both(x: Tensor) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            y = fn(xg)
            (g,) = torch.autograd.grad(y.sum(), xg)
        return y.detach(), g

    return both


_HALF_RANGE = 9.0  # |z| ≤ 9: the Gaussian mass left out is 2e-19


@functools.lru_cache(maxsize=16)
def _trapezoid_nodes(points: int) -> tuple[np.ndarray, np.ndarray]:
    z = np.linspace(-_HALF_RANGE, _HALF_RANGE, points)
    w = np.exp(-0.5 * z * z)
    return z, w / w.sum()


def _gaussian_rule(points: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Nodes and weights of ``E[f(z)]``, ``z ~ N(0, 1)``: the trapezoid rule on
    ``[−9, 9]`` with weights normalised to sum to one. For ``f`` analytic in the strip
    ``|Im z| < d`` its error falls like ``exp(−2πd/h)`` with the spacing ``h`` (Trefethen
    & Weideman 2014), much faster than Gauss–Hermite's ``exp(−2d√(2G))`` when the poles are
    close (``tanh(√q z)``: ``d = π/(2√q)``); doubling the nodes halves ``h`` and nests."""
    z, w = _trapezoid_nodes(points)
    return (
        torch.tensor(z, dtype=like.dtype, device=like.device),
        torch.tensor(w, dtype=like.dtype, device=like.device),
    )


def _quadrature(both: Pair, q11: Tensor, q22: Tensor, q12: Tensor, points: int
                ) -> tuple[Tensor, Tensor]:
    """``u = √q11 z1``, ``v = (q12/√q11) z1 + √(q22 − q12²/q11) z2`` on a tensor grid,
    with ``u`` the variable of larger variance (the rule is then exactly symmetric); the
    inner sum over ``z2`` is a matrix-vector product."""
    z, w = _gaussian_rule(points, q12)
    q11, q22 = torch.maximum(q11, q22), torch.minimum(q11, q22)
    root = torch.sqrt(q11)
    a = (q12 / root.clamp_min(1e-300))[..., None, None]
    b = torch.sqrt((q22 - q12 * q12 / q11.clamp_min(1e-300)).clamp_min(0.0))[..., None, None]
    fu, dfu = both(root[..., None] * z)  # (..., G)
    fv, dfv = both(a * z[:, None] + b * z[None, :])  # (..., G, G): z1 rows, z2 columns
    wu = w * fu
    k = (wu * (fv @ w)).sum(-1)
    kdot = (w * dfu * (dfv @ w)).sum(-1)
    return k, kdot


SERIES_TERMS = (16, 32, 64, 128, 256, 512)
"""Lengths tried for the Mehler series of ``tanh``, shortest first (see :func:`_mehler`)."""
_SERIES_NODES = 4001  # the one-dimensional rule of the series' coefficients, on [−14, 14]
_SERIES_HALF_RANGE = 14.0  # Gaussian weight beyond: e^−98; h_n(z) e^−z²/2 ≤ e^−z²/4 there


@functools.lru_cache(maxsize=2)
def _hermite_table(terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes ``z`` and weights ``w`` (``E[f(z)] ≈ Σ w f(z)``, the trapezoid rule on
    ``[−14, 14]``) and the orthonormal Hermite polynomials ``h_n(z) = He_n(z)/√n!``,
    ``(terms, nodes)``, from ``h_{n+1} = (z h_n − √n h_{n−1})/√(n+1)``."""
    z = np.linspace(-_SERIES_HALF_RANGE, _SERIES_HALF_RANGE, _SERIES_NODES)
    w = np.exp(-0.5 * z * z)
    h = np.empty((terms, z.size))
    h[0], h[1] = 1.0, z
    for n in range(1, terms - 1):
        h[n + 1] = (z * h[n] - math.sqrt(n) * h[n - 1]) / math.sqrt(n + 1)
    return z, w / w.sum(), h


@dataclass(frozen=True)
class _Hermite:
    """Per variance ``q`` ``(U,)``: the coefficients ``a_n(q) = E[φ(√q z) h_n(z)]`` of ``φ``
    and of ``φ'`` (``coeff``, two ``(U, terms)``) and their relative Parseval tails
    ``√(Σ_{m ≥ n} a_m² / E[φ²])`` (``tail``, two ``(U, terms)``, floored at the rounding of
    the total they are taken from)."""

    coeff: tuple[Tensor, Tensor]
    tail: tuple[Tensor, Tensor]

    @staticmethod
    def of(both: Pair, q: Tensor, chunk: int = 256) -> _Hermite:
        """The tables of the variances ``q`` ``(U,)``, ``chunk`` variances at a time (each
        chunk's function values on the rule take ``chunk × 4001`` floats)."""
        z, w, h = (torch.tensor(t, dtype=q.dtype, device=q.device)
                   for t in _hermite_table(SERIES_TERMS[-1] + 1))
        coeff: list[list[Tensor]] = [[], []]
        tail: list[list[Tensor]] = [[], []]
        for part in q.split(chunk):
            values = both(part.clamp_min(0.0).sqrt()[:, None] * z)  # φ, φ': (chunk, nodes)
            for k, g in enumerate(values):
                c = (g * w) @ h.T
                total = (g * g * w).sum(-1, keepdim=True)
                rest = (total - torch.cumsum(c * c, -1) + c * c).clamp_min(4 * _EPS * total)
                coeff[k].append(c)
                tail[k].append((rest / total.clamp_min(1e-300)).sqrt())
        return _Hermite((torch.cat(coeff[0]), torch.cat(coeff[1])),
                        (torch.cat(tail[0]), torch.cat(tail[1])))


def _mehler(a: _Hermite, i: Tensor, b: _Hermite, j: Tensor, rho: Tensor, tol: float
            ) -> tuple[Tensor, Tensor, Tensor]:
    """``E[φ(u)φ(v)]`` and ``E[φ'(u)φ'(v)]`` by Mehler's formula: with ``ρ = q12/√(q11 q22)``
    and ``a_n(q) = E[φ(√q z) h_n(z)]`` (``h_n`` the orthonormal Hermite polynomials),

        E[φ(u)φ(v)] = Σ_n ρⁿ a_n(q11) a_n(q22)        (and the same with φ'),

    for entries of shape ``rho.shape``, the variance of ``u`` being ``a``'s at index ``i``
    and that of ``v`` ``b``'s at ``j`` (``i``, ``j`` broadcast to ``rho``). Cut at ``N``
    terms the error is at most ``|ρ|^N √(T_N(q11) T_N(q22))`` (Cauchy–Schwarz, with the
    Parseval tails ``T_N = Σ_{n ≥ N} a_n²``), relative to the scale ``√(E[φ(u)²]E[φ(v)²])``.
    ``N`` is the shortest of :data:`SERIES_TERMS` that bounds every entry within ``tol``
    (else the longest). Returns the two expectations and each entry's relative bound;
    an entry over ``tol`` is left to the caller."""

    def bound(n: int) -> Tensor:
        out = torch.zeros_like(rho)
        for ta, tb in zip(a.tail, b.tail, strict=True):
            out = torch.maximum(out, rho.abs() ** n * ta[i, n] * tb[j, n])
        return out

    longest = SERIES_TERMS[-1]
    terms = next((n for n in SERIES_TERMS[:-1] if bool((bound(n) <= tol).all())), longest)
    out = []
    for ca, cb in zip(a.coeff, b.coeff, strict=True):
        total = torch.zeros_like(rho)
        for n in range(terms - 1, -1, -1):  # Horner in ρ
            total.mul_(rho).addcmul_(ca[i, n], cb[j, n])
        out.append(total)
    return out[0], out[1], bound(terms)


def _correlation(q11: Tensor, q22: Tensor, q12: Tensor) -> Tensor:
    """``q12/√(q11 q22)`` in ``[−1, 1]``; 0 where a variance vanishes (that variable is
    constant, and the series' terms past ``n = 0`` vanish with it)."""
    prod = q11 * q22
    return torch.where(prod > 0, q12 / prod.clamp_min(1e-300).sqrt(), 0.0).clamp(-1.0, 1.0)


def _adaptive_quadrature(
    both: Pair,
    q11: Tensor,
    q22: Tensor,
    q12: Tensor,
    points: int | None,
    tol: float,
    max_memory: float = 2**27,
    series: bool = False,
) -> tuple[Tensor, Tensor, float]:
    """:func:`_quadrature` with doubling rules on the entries not yet converged (see the
    module docstring); ``points`` fixes the rule (error: against half as many nodes).
    With ``series`` (an analytic ``φ``) and no fixed rule, entries go first to the Mehler
    series (:func:`_mehler`), and only those it cannot bound within ``tol`` to the rule.
    Entries are processed in chunks whose ``(chunk, G, G)`` temporaries fit ``max_memory``."""
    shape = q12.shape
    a, b, c = (t.reshape(-1) for t in (q11, q22, q12))
    def rule(idx: Tensor, g: int) -> tuple[Tensor, Tensor]:
        chunk = max(1, int(max_memory // (3 * 8 * g * g)))
        parts = [_quadrature(both, a[i], b[i], c[i], g) for i in idx.split(chunk)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    @functools.cache
    def scales() -> tuple[Tensor, Tensor]:  # √(E[φ(u)²]E[φ(v)²]) and the same of φ'
        (ea, eda), (eb, edb) = _variances(both, a, None, tol), _variances(both, b, None, tol)
        return (ea * eb).sqrt().clamp_min(1e-300), (eda * edb).sqrt().clamp_min(1e-300)

    def gap(k1: Tensor, kd1: Tensor, k2: Tensor, kd2: Tensor, idx: Tensor) -> Tensor:
        scale_k, scale_kdot = scales()
        return torch.maximum((k2 - k1).abs() / scale_k[idx], (kd2 - kd1).abs() / scale_kdot[idx])

    everything = torch.arange(c.numel(), device=c.device)
    if points is not None:
        k, kdot = rule(everything, points)
        k_half, kdot_half = rule(everything, max(2, (points + 1) // 2))
        err = gap(k_half, kdot_half, k, kdot, everything) ** 2
        return k.reshape(shape), kdot.reshape(shape), _largest(err)
    if series:
        values, inverse = torch.unique(torch.cat([a, b]), return_inverse=True)
        table = _Hermite.of(both, values)
        k, kdot, err = _mehler(table, inverse[: c.numel()], table, inverse[c.numel():],
                               _correlation(a, b, c), tol)
        active = everything[err > tol]
        if active.numel():
            k[active], kdot[active] = rule(active, MIN_POINTS)
            err[active] = math.inf
    else:
        k, kdot = rule(everything, MIN_POINTS)
        err = torch.full_like(c, math.inf)
        active = everything
    g = MIN_POINTS
    while active.numel() and g < MAX_POINTS:
        g = 2 * g - 1
        k2, kd2 = rule(active, g)
        err[active] = gap(k[active], kdot[active], k2, kd2, active) ** 2
        k[active], kdot[active] = k2, kd2
        active = active[err[active] > tol]
    return k.reshape(shape), kdot.reshape(shape), _largest(err)


def _largest(err: Tensor) -> float:
    """The largest error estimate, no smaller than float64 rounding."""
    return max(float(err.max()), _EPS) if err.numel() else 0.0


def _check(
    depth: int,
    parameterization: str,
    width: int | None,
    w_std: float,
    b_std: float | None,
    get: tuple[str, ...],
) -> None:
    if depth < 1:
        raise InputError("depth", depth, "an integer ≥ 1 (number of dense layers)")
    if parameterization not in ("ntk", "standard"):
        raise InputError("parameterization", parameterization, "'ntk' or 'standard'")
    if parameterization == "standard" and depth > 1 and (width is None or width < 1):
        raise InputError("width", width, "the hidden width (a positive integer) for 'standard'")
    if w_std <= 0 or (b_std is not None and b_std < 0):
        raise InputError("w_std/b_std", (w_std, b_std), "w_std > 0 and b_std ≥ 0 or None")
    if not get or any(g not in ("nngp", "ntk") for g in get):
        raise InputError("get", get, "a non-empty tuple of 'nngp' and/or 'ntk'")


def analytic_kernels(
    x1: Tensor,
    x2: Tensor | None = None,
    *,
    depth: int,
    activation: Activation = "relu",
    w_std: float = 1.0,
    b_std: float | None = None,
    parameterization: Parameterization = "ntk",
    width: int | None = None,
    negative_slope: float = 0.01,
    get: tuple[str, ...] = ("nngp", "ntk"),
    quadrature_points: int | None = None,
    tol: float = QUADRATURE_TOL,
    max_memory: float = 2**28,
    progress: Callable[[int, int], None] | None = None,
) -> Kernels:
    """The infinite-width NNGP and NTK of a fully connected network (see module docstring).

    Args:
        x1: inputs ``(N1, d)``; x2: inputs ``(N2, d)``, default ``x1``.
        depth: number of dense layers (``depth − 1`` hidden layers and the readout).
        activation: ``relu``, ``leaky_relu``, ``erf``, ``gelu``, ``identity`` (closed
            forms), ``tanh`` or a callable (error-controlled quadrature).
        w_std, b_std: σ_w and σ_b (``b_std=None``: no biases).
        parameterization: ``"ntk"`` or ``"standard"`` (then ``width`` is the hidden width).
        get: which kernels to compute.
        quadrature_points: fix the quadrature rule (nodes per dimension) instead of
            refining it until two successive rules agree to ``tol`` (relative).
        max_memory: bytes of temporaries per block of rows of ``x1``.
        progress: ``callback(rows_done, N1)`` after each block of rows.

    Returns:
        :class:`Kernels` with ``(N1, N2)`` float64 tensors and the error estimate.
    """
    _check(depth, parameterization, width, w_std, b_std, get)
    _check_rule(quadrature_points, tol)
    x1 = x1.to(torch.float64).reshape(x1.shape[0], -1)
    x2 = x1 if x2 is None else x2.to(device=x1.device, dtype=torch.float64).reshape(
        x2.shape[0], -1
    )  # x2 is x1: the kernel is symmetric and only blocks on and above the diagonal are computed
    if x1.shape[1] != x2.shape[1]:
        raise InputError("x2", tuple(x2.shape), f"inputs with {x1.shape[1]} features like x1")
    require_memory("x1", f"{len(get)} kernel(s) of {x1.shape[0]} × {x2.shape[0]} inputs",
                   8.0 * len(get) * x1.shape[0] * x2.shape[0], "pass fewer inputs")
    d = x1.shape[1]
    w2, b2 = w_std**2, (b_std or 0.0) ** 2
    has_bias = b_std is not None

    def diag_layers(x: Tensor) -> list[Tensor]:
        """``K_l(x, x)`` for l = 1..depth (pre-activations)."""
        q = w2 * (x * x).sum(1) / d + b2
        out = [q]
        for _ in range(depth - 1):
            k, _ = gaussian_variances(
                activation, q, negative_slope=negative_slope,
                quadrature_points=quadrature_points, tol=tol,
            )
            q = w2 * k + b2
            out.append(q)
        return out

    symmetric = x2 is x1
    q1s = diag_layers(x1)
    q2s = q1s if symmetric else diag_layers(x2)
    # tanh's Mehler series: Hermite coefficients once per input and layer, not per block
    series = activation == "tanh" and quadrature_points is None
    if series:
        tanh = _function_and_derivative("tanh")
        tables1 = [_Hermite.of(tanh, q) for q in q1s[:-1]]
        tables2 = tables1 if symmetric else [_Hermite.of(tanh, q) for q in q2s[:-1]]
    n1, n2 = x1.shape[0], x2.shape[0]
    # blocks of ~2¹⁶ entries keep the temporaries in cache; quadrature chunks its own grids
    rows = max(1, min(n1, _BLOCK // n2, int(max_memory // (12 * n2 * 8))))
    error = 0.0
    nngp = torch.empty(n1, n2, dtype=torch.float64, device=x1.device) if "nngp" in get else None
    ntk = torch.empty(n1, n2, dtype=torch.float64, device=x1.device) if "ntk" in get else None
    want_ntk = ntk is not None
    for start in range(0, n1, rows):
        sl = slice(start, min(start + rows, n1))
        cols = slice(start if symmetric else 0, n2)  # symmetric: upper blocks, mirrored
        dot = x1[sl] @ x2[cols].T
        k = w2 * dot / d + b2
        if parameterization == "ntk":
            theta = k.clone() if want_ntk else None
        else:
            theta = dot + (1.0 if has_bias else 0.0) if want_ntk else None
        for layer in range(depth - 1):
            qa = q1s[layer][sl].unsqueeze(1)
            qb = q2s[layer][cols].unsqueeze(0)
            if series:
                e, edot, err = _series_block(tables1[layer], sl, tables2[layer], cols, qa, qb,
                                             k, tol)
            else:
                e, edot, err = expectations_with_error(
                    activation, qa, qb, k, negative_slope=negative_slope,
                    quadrature_points=quadrature_points, tol=tol,
                )
            error = max(error, err)
            k = e.mul_(w2).add_(b2)  # K_{l+1} = σ_w² E[φφ] + σ_b²
            if theta is not None:
                theta.mul_(edot).mul_(w2)  # σ_w² E[φ'φ'] Θ_l
                if parameterization == "ntk":
                    theta.add_(k)
                else:
                    assert width is not None
                    theta.add_(k, alpha=width / w2).add_(
                        (1.0 if has_bias else 0.0) - width * b2 / w2)
        for out, block in ((nngp, k), (ntk, theta)):
            if out is not None:
                assert block is not None
                out[sl, cols] = block
                if symmetric:
                    out[cols, sl] = block.T
        if progress is not None:
            progress(sl.stop, n1)
    return Kernels(nngp, ntk, error)


def _series_block(
    ta: _Hermite, rows: slice, tb: _Hermite, cols: slice, qa: Tensor, qb: Tensor, q12: Tensor,
    tol: float,
) -> tuple[Tensor, Tensor, float]:
    """tanh's expectations on a block ``(rows, cols)`` of inputs by the Mehler series from
    per-input tables; entries the series cannot bound within ``tol`` by the two-dimensional
    rule alone (the series is not tried on them again). Returns both and the largest error
    estimate."""
    i = torch.arange(rows.start, rows.stop, device=q12.device)[:, None]
    j = torch.arange(cols.start, cols.stop, device=q12.device)[None, :]
    e, edot, bound = _mehler(ta, i, tb, j, _correlation(qa, qb, q12), tol)
    left = bound > tol
    err = _largest(bound[~left])
    if bool(left.any()):
        e[left], edot[left], rest = _adaptive_quadrature(
            _function_and_derivative("tanh"), qa.expand_as(q12)[left],
            qb.expand_as(q12)[left], q12[left], None, tol)
        err = max(err, rest)
    return e, edot, err


def _closed(activation: Activation) -> bool:
    return isinstance(activation, str) and activation in CLOSED_FORM
