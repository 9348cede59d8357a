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
1997) and ``identity``; for any other activation (``tanh``, ``gelu`` or a callable
``φ(tensor) -> tensor``) they are computed by two-dimensional Gauss–Hermite quadrature
(derivatives by autograd for callables). Everything is float64, on ``x1``'s device.

Memory: besides the two ``(N1, N2)`` outputs, the work is done in blocks of rows of
``x1`` so that the temporaries stay under ``max_memory`` bytes (closed forms use about 12
``N2``-long float64 rows per row of ``x1``; quadrature ``quadrature_points²`` times more).
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
import torch.nn.functional as F
from scipy.special import roots_hermitenorm
from torch import Tensor

from learnmech.errors import InputError

Activation = str | Callable[[Tensor], Tensor]
Parameterization = Literal["ntk", "standard"]

_BLOCK = 2**18  # entries per block of the closed-form path (a few MB of temporaries)
_SNAP = 8 * torch.finfo(torch.float64).eps
CLOSED_FORM = ("relu", "leaky_relu", "erf", "identity")
QUADRATURE = ("tanh", "gelu")


@dataclass(frozen=True)
class Kernels:
    """The NNGP ``K(x1, x2)`` and NTK ``Θ(x1, x2)``, each ``(N1, N2)`` float64
    (``None`` for a kernel that was not requested)."""

    nngp: Tensor | None
    ntk: Tensor | None


def gaussian_expectations(
    activation: Activation,
    q11: Tensor,
    q22: Tensor,
    q12: Tensor,
    *,
    negative_slope: float = 0.01,
    quadrature_points: int = 64,
) -> tuple[Tensor, Tensor]:
    """``E[φ(u)φ(v)]`` and ``E[φ'(u)φ'(v)]`` for ``(u, v) ~ N(0, [[q11, q12], [q12, q22]])``.

    All arguments broadcast together; the results have their common shape.
    ``negative_slope`` is the slope of ``leaky_relu`` below zero; ``quadrature_points`` is
    the number of Gauss–Hermite nodes per dimension for activations without closed form.
    """
    q11, q22, q12 = torch.broadcast_tensors(q11, q22, q12)
    if isinstance(activation, str):
        if activation == "identity":
            return q12.clone(), torch.ones_like(q12)
        if activation in ("relu", "leaky_relu"):
            return _relu_expectations(q11, q22, q12, negative_slope if activation ==
                                      "leaky_relu" else 0.0)
        if activation == "erf":  # in place on fresh temporaries: these run on N² blocks
            ab = (1.0 + 2.0 * q11) * (1.0 + 2.0 * q22)
            k = (2.0 * q12).div_(ab.sqrt()).clamp_(-1.0, 1.0).arcsin_().mul_(2.0 / math.pi)
            kdot = ab.addcmul_(q12, q12, value=-4.0).rsqrt_().mul_(4.0 / math.pi)
            return k, kdot
        if activation not in QUADRATURE:
            raise InputError(
                "activation", activation, f"one of {list(CLOSED_FORM + QUADRATURE)} or a callable"
            )
    phi, dphi = _function_and_derivative(activation)
    return _quadrature(phi, dphi, q11, q22, q12, quadrature_points)


def _relu_expectations(
    q11: Tensor, q22: Tensor, q12: Tensor, slope: float
) -> tuple[Tensor, Tensor]:
    """Arc-cosine kernel of degree 1 and 0 (Cho & Saul 2009) for ``φ(x) = a x + (1 − a)
    relu(x)``: ``E[φφ] = a q12 + (1−a)² √(q11 q22)(sin θ + (π − θ) cos θ)/(2π)`` and
    ``E[φ'φ'] = a + (1−a)² (π − θ)/(2π)`` with ``cos θ = q12/√(q11 q22)``."""
    norm = (q11 * q22).sqrt_()
    c = torch.div(q12, norm.clamp_min(1e-300)).clamp_(-1.0, 1.0)
    # θ = arccos c has slope −1/√(1−c²): a pair of equal inputs whose Gram entries differ
    # by round-off would get θ ~ 1e-8. Within a few ulps of ±1, c is ±1.
    c = torch.where(c.abs() > 1.0 - _SNAP, c.sign(), c)
    rest = torch.arccos(c).neg_().add_(math.pi)  # π − θ
    k = c.mul(c).neg_().add_(1.0).clamp_min_(0.0).sqrt_()  # sin θ
    k.addcmul_(rest, c).mul_(norm).mul_((1.0 - slope) ** 2 / (2 * math.pi))
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
    quadrature_points: int = 64,
) -> tuple[Tensor, Tensor]:
    """``E[φ(√q z)²]`` and ``E[φ'(√q z)²]`` for ``z ~ N(0, 1)``: the diagonal ``u = v`` of
    :func:`gaussian_expectations`, by a one-dimensional rule where there is no closed form."""
    if _closed(activation):
        return gaussian_expectations(activation, q, q, q, negative_slope=negative_slope)
    if isinstance(activation, str) and activation not in QUADRATURE:
        raise InputError(
            "activation", activation, f"one of {list(CLOSED_FORM + QUADRATURE)} or a callable"
        )
    phi, dphi = _function_and_derivative(activation)
    z, w = _hermite_rule(quadrature_points, q)
    u = torch.sqrt(q).unsqueeze(-1) * z
    return (phi(u) ** 2 * w).sum(-1), (dphi(u) ** 2 * w).sum(-1)


def _function_and_derivative(
    activation: Activation,
) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
    if activation == "tanh":
        return torch.tanh, lambda x: 1.0 - torch.tanh(x) ** 2
    if activation == "gelu":
        inv_sqrt2pi = 1.0 / math.sqrt(2 * math.pi)
        return F.gelu, lambda x: 0.5 * (1 + torch.erf(x / math.sqrt(2))) + x * inv_sqrt2pi * (
            torch.exp(-0.5 * x * x)
        )
    if isinstance(activation, str):
        raise InputError("activation", activation, "a name with a known derivative or a callable")
    fn = activation

    def derivative(x: Tensor) -> Tensor:
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(fn(xg).sum(), xg)
        return g

    return fn, derivative


@functools.lru_cache(maxsize=16)
def _hermite_nodes(points: int) -> tuple[np.ndarray, np.ndarray]:
    z, w = roots_hermitenorm(points)
    return z, w / w.sum()


def _hermite_rule(points: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Probabilists' Gauss–Hermite nodes and weights normalised to sum to one."""
    z, w = _hermite_nodes(points)
    return (
        torch.tensor(z, dtype=like.dtype, device=like.device),
        torch.tensor(w, dtype=like.dtype, device=like.device),
    )


def _quadrature(
    phi: Callable[[Tensor], Tensor],
    dphi: Callable[[Tensor], Tensor],
    q11: Tensor,
    q22: Tensor,
    q12: Tensor,
    points: int,
) -> tuple[Tensor, Tensor]:
    """``u = √q11 z1``, ``v = (q12/√q11) z1 + √(q22 − q12²/q11) z2`` on a tensor grid,
    with ``u`` the variable of larger variance (the rule is then exactly symmetric)."""
    z, w = _hermite_rule(points, q12)
    q11, q22 = torch.maximum(q11, q22), torch.minimum(q11, q22)
    s11 = torch.sqrt(q11).unsqueeze(-1).unsqueeze(-1)
    a = (q12 / torch.sqrt(q11).clamp_min(1e-300)).unsqueeze(-1).unsqueeze(-1)
    b = torch.sqrt((q22 - q12 * q12 / q11.clamp_min(1e-300)).clamp_min(0.0))
    b = b.unsqueeze(-1).unsqueeze(-1)
    z1, z2 = z.view(-1, 1), z.view(1, -1)
    u = s11 * z1  # (..., G, 1)
    v = a * z1 + b * z2  # (..., G, G)
    grid = w.view(-1, 1) * w.view(1, -1)
    k = (phi(u) * phi(v) * grid).sum((-1, -2))
    kdot = (dphi(u) * dphi(v) * grid).sum((-1, -2))
    return k, kdot


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
    quadrature_points: int = 64,
    max_memory: float = 2**28,
) -> Kernels:
    """The infinite-width NNGP and NTK of a fully connected network (see module docstring).

    Args:
        x1: inputs ``(N1, d)``; x2: inputs ``(N2, d)``, default ``x1``.
        depth: number of dense layers (``depth − 1`` hidden layers and the readout).
        activation: ``relu``, ``leaky_relu``, ``erf``, ``identity`` (closed forms),
            ``tanh``, ``gelu`` or a callable (Gauss–Hermite quadrature).
        w_std, b_std: σ_w and σ_b (``b_std=None``: no biases).
        parameterization: ``"ntk"`` or ``"standard"`` (then ``width`` is the hidden width).
        get: which kernels to compute.
        max_memory: bytes of temporaries per block of rows of ``x1``.

    Returns:
        :class:`Kernels` with ``(N1, N2)`` float64 tensors.
    """
    _check(depth, parameterization, width, w_std, b_std, get)
    x1 = x1.to(torch.float64).reshape(x1.shape[0], -1)
    x2 = x1 if x2 is None else x2.to(device=x1.device, dtype=torch.float64).reshape(
        x2.shape[0], -1
    )  # x2 is x1: the kernel is symmetric and only blocks on and above the diagonal are computed
    if x1.shape[1] != x2.shape[1]:
        raise InputError("x2", tuple(x2.shape), f"inputs with {x1.shape[1]} features like x1")
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
                quadrature_points=quadrature_points,
            )
            q = w2 * k + b2
            out.append(q)
        return out

    symmetric = x2 is x1
    q1s = diag_layers(x1)
    q2s = q1s if symmetric else diag_layers(x2)
    n1, n2 = x1.shape[0], x2.shape[0]
    if _closed(activation):  # blocks of ~2¹⁶ entries keep the temporaries in cache
        rows = max(1, min(n1, _BLOCK // n2, int(max_memory // (12 * n2 * 8))))
    else:
        rows = max(1, min(n1, int(max_memory // (36 * n2 * 8 * quadrature_points**2))))
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
            e, edot = gaussian_expectations(
                activation, qa, qb, k, negative_slope=negative_slope,
                quadrature_points=quadrature_points,
            )
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
    return Kernels(nngp, ntk)


def _closed(activation: Activation) -> bool:
    return isinstance(activation, str) and activation in CLOSED_FORM
