"""Infinite-width NNGP and NTK of convolutional, pooled, residual and normalized networks.

A network is a sequence of layers, each a map on a :class:`KernelState`: the kernels of
one layer's channels, ``K[i, j, s, s'] = E[h_c(x_i, s) h_c(x_j, s')]`` (NNGP) and the NTK
``Θ[i, j, s, s']`` of the same channel, for every pair of inputs ``(i, j)`` and of spatial
positions ``(s, s')`` (flattened; ``shape`` is the spatial shape, ``()`` after
:class:`Flatten` or :class:`GlobalAvgPool`). Channels are i.i.d. in the limit, so one
channel's kernel is every channel's. Layers (neural-tangents' ``stax`` conventions,
written in PyTorch)::

    Dense / Conv:   K' = σ_w² T(K) + σ_b²          Θ' = K' + σ_w² T(Θ)      ("ntk")
                                                   Θ' = fan_in T(K) + σ_w² T(Θ) + [bias]
                                                                            ("standard")
    Activation φ:   K' = E[φ(u)φ(v)],  Θ' = Θ · E[φ'(u)φ'(v)],  (u, v) ~ N(0, K at (is, js'))
    AvgPool:        K' = P K Pᵀ (the pooling on each position index), Θ' likewise
    GlobalAvgPool:  K' = mean_{s,s'} K[s, s'];     Flatten: K' = mean_s K[s, s]
    LayerNorm:      K' = K / √((q_is + ε)(q_js' + ε)), Θ' likewise (+ the affine terms)
    Residual:       K' = α² K + β² K_branch,       Θ' = α² Θ + β² Θ_branch

``T`` of a convolution with filter ``F`` is ``T(K)[s, s'] = (1/|F|) Σ_{δ∈F}
K[s + δ, s' + δ]`` (the same filter tap on both positions: weights are shared), with
``same`` (zero), ``valid`` or ``circular`` padding and a stride; for a dense layer it is
the identity. A residual branch must end in a Dense or Conv layer, whose fresh zero-mean
weights make it uncorrelated with the skip path. LayerNorm normalizes over the channels
(``over="channels"``, at each position) or over channels and positions (``"all"``, as
``nn.LayerNorm([C, H, W])``); it assumes its input has zero mean across channels in the
limit (after a linear layer or an odd activation), and refuses an input after ReLU or
GELU, where the centring would need first moments the kernels do not carry.

``infinite_width_kernels(model, x1, x2)`` reads these layers off an ``nn.Module``
(``nn.Linear``, ``nn.Conv1d/2d``, activations, ``nn.AvgPool1d/2d``,
``nn.AdaptiveAvgPool1d/2d(1)``, ``nn.LayerNorm``, ``nn.Flatten``, ``nn.Sequential``,
:class:`learnmech.models.resmlp.ResMLP`) in standard parametrization, the way PyTorch
uses its parameters, with each layer's ``σ_w² = fan_in · mean(W²)`` and ``σ_b² =
mean(b²)`` measured from the module's own weights unless given.

Memory: the state holds ``(N, N, S, S)`` float64 tensors for ``N`` inputs (``x1`` and
``x2`` together) and ``S`` positions, or ``(N, N, S)`` when the network flattens its
positions before any pooling (only ``s = s'`` is needed then); the size is checked
against ``max_memory`` before anything is allocated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import Tensor, nn

from learnmech.errors import InputError
from learnmech.theory.kernels import (
    QUADRATURE_TOL,
    Activation,
    Kernels,
    expectations_with_error,
)

Padding = Literal["same", "valid", "circular"]
Parameterization = Literal["ntk", "standard"]
ODD = ("identity", "erf", "tanh")


@dataclass(frozen=True)
class KernelState:
    """The kernels of one layer's channels (see the module docstring).

    ``nngp``, ``ntk``: ``(N, N, S, S)`` float64 with ``S = prod(shape)``, or ``(N, N, S)``
    when only equal positions are kept (:attr:`diagonal`); ``channels``:
    the finite number of channels (the fan-in of the next layer per position);
    ``zero_mean``: whether each channel has mean zero (needed by LayerNorm); ``error``:
    the largest quadrature error estimate so far."""

    nngp: Tensor
    ntk: Tensor
    shape: tuple[int, ...]
    channels: int
    zero_mean: bool = True
    error: float = 0.0

    @property
    def diagonal(self) -> bool:
        """Whether only the pairs of equal positions ``s = s'`` are kept."""
        return self.nngp.ndim == 3

    @property
    def variances(self) -> Tensor:
        """``K[i, i, s, s]``, shape ``(N, S)``."""
        d = self.nngp.diagonal(0, 0, 1)
        return d.T if self.diagonal else d.diagonal(0, 0, 1)

    def pair(self, q: Tensor) -> tuple[Tensor, Tensor]:
        """A per-(input, position) ``(N, S)`` tensor broadcast to ``(i, s)`` and ``(j, s')``
        against the kernels."""
        if self.diagonal:
            return q[:, None, :], q[None, :, :]
        return q[:, None, :, None], q[None, :, None, :]


Layer = Callable[[KernelState], KernelState]


def input_state(x: Tensor, diagonal: bool = False) -> KernelState:
    """The kernel of the inputs ``x`` ``(N, d)`` or ``(N, C, *spatial)``, channels first:
    ``K[i, j, s, s'] = Σ_c x[i, c, s] x[j, c, s'] / C`` (only ``s = s'`` if ``diagonal``);
    no NTK yet."""
    x = x.to(torch.float64)
    if x.ndim < 2:
        raise InputError("x", tuple(x.shape), "(N, d) or (N, C, *spatial) inputs")
    n, c = x.shape[:2]
    shape = tuple(x.shape[2:])
    flat = x.reshape(n, c, -1)
    k = torch.einsum("ics,jcs->ijs" if diagonal else "ics,jct->ijst", flat, flat) / c
    return KernelState(k, torch.zeros_like(k), shape, c)


def _positions(state: KernelState) -> Tensor:
    """The kernels as ``(2, N, N, *shape, *shape)`` (NNGP and NTK stacked), or
    ``(2, N, N, *shape)`` for a diagonal state."""
    n = state.nngp.shape[0]
    groups = 1 if state.diagonal else 2
    return torch.stack([state.nngp, state.ntk]).reshape(2, n, n, *state.shape * groups)


def _flatten(t: Tensor, shape: tuple[int, ...], diagonal: bool) -> Tensor:
    s = math.prod(shape)
    return t.reshape(2, t.shape[1], t.shape[2], *((s,) if diagonal else (s, s)))


def _shift_sum(t: Tensor, axes: tuple[int, ...], size: int, stride: int, padding: Padding
               ) -> tuple[Tensor, int]:
    """``(1/size) Σ_δ t[…, o·stride + δ − left, …]`` with the same tap ``δ`` on every axis
    of ``axes`` (all of one length ``L``), padded with zeros (``same``), wrapped
    (``circular``) or not (``valid``; ``left = 0``); and the output length."""
    length = t.shape[axes[0]]
    if padding == "valid":
        out, left = (length - size) // stride + 1, 0
    else:
        out, left = (length - 1) // stride + 1, (size - 1) // 2
    if out < 1:
        raise InputError("kernel_size", size, f"at most the input length {length} ('valid')")
    if padding == "circular":  # wrap: pad with the far ends once, then read like 'valid'
        right = max(0, (out - 1) * stride + size - left - length)
        for axis in axes:
            parts = [t.narrow(axis, length - left, left), t, t.narrow(axis, 0, right)]
            t = torch.cat(parts, axis)
        left = 0
    shape = list(t.shape)
    for axis in axes:
        shape[axis] = out
    acc = t.new_zeros(shape)
    for tap in range(size):
        shift = tap - left  # output o reads input o·stride + shift; zero padding outside
        lo = max(0, -(shift // stride))  # the first o with o·stride + shift ≥ 0
        hi = min(out, (t.shape[axes[0]] - 1 - shift) // stride + 1)
        if hi <= lo:
            continue
        into = [slice(None)] * t.ndim
        src = [slice(None)] * t.ndim
        for axis in axes:
            into[axis] = slice(lo, hi)
            start = lo * stride + shift
            src[axis] = slice(start, start + (hi - lo - 1) * stride + 1, stride)
        acc[tuple(into)] += t[tuple(src)]
    return acc.div_(size), out


@dataclass(frozen=True)
class Dense:
    """A fully connected layer of ``out`` units (the readout when last)."""

    out: int = 1
    w_std: float = 1.0
    b_std: float | None = None
    parameterization: Parameterization = "ntk"

    def __call__(self, state: KernelState) -> KernelState:
        if state.shape:
            raise InputError("Dense", f"input with spatial shape {state.shape}",
                             "Flatten or GlobalAvgPool before a dense layer")
        return _affine(state, state.nngp, state.ntk, state.channels, self.out, self.w_std,
                       self.b_std, self.parameterization, state.shape)


def _affine(state: KernelState, tk: Tensor, ttheta: Tensor, fan_in: int, out: int,
            w_std: float, b_std: float | None, parameterization: str,
            shape: tuple[int, ...]) -> KernelState:
    """The kernels after weights and biases, given ``T(K)``, ``T(Θ)`` and the fan-in."""
    if w_std <= 0 or (b_std is not None and b_std < 0) or out < 1:
        raise InputError("w_std/b_std/out", (w_std, b_std, out), "w_std > 0, b_std ≥ 0, out ≥ 1")
    if parameterization not in ("ntk", "standard"):
        raise InputError("parameterization", parameterization, "'ntk' or 'standard'")
    b2 = (b_std or 0.0) ** 2
    k = tk * w_std**2 + b2
    if parameterization == "ntk":
        theta = k + ttheta * w_std**2
    else:
        theta = tk * fan_in + ttheta * w_std**2 + (1.0 if b_std is not None else 0.0)
    return KernelState(k, theta, shape, out, True, state.error)


@dataclass(frozen=True)
class Conv:
    """A convolution of ``out`` channels with filter ``kernel_size`` (an int or one per
    spatial dimension), ``stride`` and ``padding`` (``same``: zeros, output positions
    ``⌈L/stride⌉``; ``valid``; ``circular``)."""

    out: int
    kernel_size: int | tuple[int, ...] = 3
    stride: int | tuple[int, ...] = 1
    padding: Padding = "same"
    w_std: float = 1.0
    b_std: float | None = None
    parameterization: Parameterization = "ntk"

    def __call__(self, state: KernelState) -> KernelState:
        dims = len(state.shape)
        if dims == 0:
            raise InputError("Conv", "input without spatial dimensions", "(N, C, *spatial) inputs")
        if self.padding not in ("same", "valid", "circular"):
            raise InputError("padding", self.padding, "'same', 'valid' or 'circular'")
        sizes = _per_dim(self.kernel_size, dims, "kernel_size")
        strides = _per_dim(self.stride, dims, "stride")
        t = _positions(state)
        shape = list(state.shape)
        for d, (size, stride) in enumerate(zip(sizes, strides)):
            axes = (3 + d,) if state.diagonal else (3 + d, 3 + dims + d)
            t, shape[d] = _shift_sum(t, axes, size, stride, self.padding)
        shape_t = tuple(shape)
        t = _flatten(t, shape_t, state.diagonal)
        return _affine(state, t[0], t[1], state.channels * math.prod(sizes), self.out,
                       self.w_std, self.b_std, self.parameterization, shape_t)


def _per_dim(value: int | tuple[int, ...], dims: int, name: str) -> tuple[int, ...]:
    values = (value,) * dims if isinstance(value, int) else tuple(value)
    if len(values) != dims or any(v < 1 for v in values):
        raise InputError(name, value, f"a positive integer or {dims} of them")
    return values


@dataclass(frozen=True)
class ActivationLayer:
    """An elementwise nonlinearity φ (a name of :mod:`learnmech.theory.kernels` or a
    callable), exact where it has a closed form, error-controlled quadrature otherwise."""

    activation: Activation = "relu"
    negative_slope: float = 0.01
    tol: float = QUADRATURE_TOL

    def __call__(self, state: KernelState) -> KernelState:
        q1, q2 = state.pair(state.variances)
        e, edot, err = expectations_with_error(
            self.activation, q1, q2, state.nngp,
            negative_slope=self.negative_slope, tol=self.tol)
        odd = isinstance(self.activation, str) and self.activation in ODD
        return KernelState(e, state.ntk * edot, state.shape, state.channels,
                           state.zero_mean and odd, max(state.error, err))


@dataclass(frozen=True)
class AvgPool:
    """Average pooling over windows ``window`` with ``stride`` (default: the window) and
    ``valid`` padding, as ``nn.AvgPool1d/2d`` with its defaults."""

    window: int | tuple[int, ...]
    stride: int | tuple[int, ...] | None = None

    def __call__(self, state: KernelState) -> KernelState:
        dims = len(state.shape)
        if dims == 0:
            raise InputError("AvgPool", "input without spatial dimensions",
                             "(N, C, *spatial) inputs")
        sizes = _per_dim(self.window, dims, "window")
        strides = _per_dim(self.stride if self.stride is not None else self.window, dims,
                           "stride")
        if state.diagonal:
            raise InputError("AvgPool", "a diagonal state", "the kernels of all position pairs")
        t = _positions(state)
        shape = list(state.shape)
        for d, (size, stride) in enumerate(zip(sizes, strides)):
            for axis in (3 + d, 3 + dims + d):  # each position index pooled on its own
                t, shape[d] = _shift_sum(t, (axis,), size, stride, "valid")
        shape_t = tuple(shape)
        t = _flatten(t, shape_t, False)
        return replace(state, nngp=t[0], ntk=t[1], shape=shape_t)


@dataclass(frozen=True)
class GlobalAvgPool:
    """The mean over all positions: ``K' = mean_{s, s'} K[s, s']``."""

    def __call__(self, state: KernelState) -> KernelState:
        if state.diagonal:
            raise InputError("GlobalAvgPool", "a diagonal state",
                             "the kernels of all position pairs")
        k = state.nngp.mean((2, 3), keepdim=True)
        return replace(state, nngp=k, ntk=state.ntk.mean((2, 3), keepdim=True), shape=())


@dataclass(frozen=True)
class Flatten:
    """Positions become channels: ``K' = mean_s K[s, s]``, ``channels' = C · S``."""

    def __call__(self, state: KernelState) -> KernelState:
        s = state.nngp.shape[2]

        def diag_mean(t: Tensor) -> Tensor:
            if state.diagonal:
                return t.mean(-1, keepdim=True)
            return t.diagonal(0, 2, 3).mean(-1)[:, :, None, None]

        return replace(state, nngp=diag_mean(state.nngp), ntk=diag_mean(state.ntk), shape=(),
                       channels=state.channels * s)


@dataclass(frozen=True)
class LayerNorm:
    """Layer normalization ``h / √(mean h² + eps)`` over the channels at each position
    (``over="channels"``) or over channels and positions (``"all"``); ``affine`` adds the
    NTK of a trainable scale and shift, per channel (``"channels"``) or per channel and
    position (``"all"``), as ``nn.LayerNorm``'s ``weight`` and ``bias``."""

    over: Literal["channels", "all"] = "channels"
    eps: float = 1e-5
    affine: bool = False

    def __call__(self, state: KernelState) -> KernelState:
        if not state.zero_mean:
            raise InputError("LayerNorm", "an input with non-zero channel mean (after ReLU/GELU)",
                             "LayerNorm after a linear layer or an odd activation")
        if self.over not in ("channels", "all"):
            raise InputError("over", self.over, "'channels' or 'all'")
        q = state.variances  # (N, S)
        if self.over == "all":
            q = q.mean(1, keepdim=True).expand_as(q)
        q1, q2 = state.pair(q)
        norm = (q1 + self.eps).sqrt() * (q2 + self.eps).sqrt()
        k = state.nngp / norm
        theta = state.ntk / norm
        if self.affine:
            # per channel: shared by all positions; per position: by s = s' only (all a
            # diagonal state holds)
            if self.over == "channels" or state.diagonal:
                theta = theta + k + 1.0
            else:
                eye = torch.eye(k.shape[2], dtype=k.dtype, device=k.device)
                theta = theta + (k + 1.0) * eye
        return replace(state, nngp=k, ntk=theta)


@dataclass(frozen=True)
class Residual:
    """``skip · h + branch_scale · branch(h)``; the branch must end in Dense or Conv."""

    branch: Sequence[Layer]
    branch_scale: float = 1.0
    skip: float = 1.0

    def __call__(self, state: KernelState) -> KernelState:
        if not self.branch or not isinstance(self.branch[-1], Dense | Conv):
            raise InputError("branch", [type(b).__name__ for b in self.branch],
                             "a branch ending in Dense or Conv (uncorrelated with the skip)")
        out = serial(*self.branch)(state)
        if out.shape != state.shape or out.channels != state.channels:
            raise InputError("branch", f"output {out.channels}×{out.shape}",
                             f"the input's {state.channels}×{state.shape}")
        a2, b2 = self.skip**2, self.branch_scale**2
        return KernelState(state.nngp * a2 + out.nngp * b2, state.ntk * a2 + out.ntk * b2,
                           state.shape, state.channels, state.zero_mean and out.zero_mean,
                           out.error)


def serial(*layers: Layer) -> Layer:
    """The composition ``layers[-1] ∘ … ∘ layers[0]``."""

    def apply(state: KernelState) -> KernelState:
        for layer in layers:
            state = layer(state)
        return state

    return apply


def network_kernels(
    layers: Sequence[Layer],
    x1: Tensor,
    x2: Tensor | None = None,
    *,
    max_memory: float = 2**31,
) -> Kernels:
    """The NNGP and NTK ``(N1, N2)`` of the network ``layers`` (ending in a layer with no
    spatial shape, e.g. a Dense readout) on inputs ``x1``, ``x2`` (default ``x1``;
    ``(N, d)`` or ``(N, C, *spatial)``, channels first)."""
    x = x1 if x2 is None else torch.cat([x1, x2.to(x1)])
    s = math.prod(x.shape[2:]) if x.ndim > 2 else 1
    diagonal = _flatten_first(layers)
    need = 6 * x.shape[0] ** 2 * s ** (1 if diagonal else 2) * 8  # stacked copies, padding
    if need > max_memory:
        raise InputError("inputs", f"{x.shape[0]} inputs × {s} positions",
                         f"≤ max_memory = {max_memory:.3g} bytes; these need about {need:.3g}")
    state = serial(*layers)(input_state(x, diagonal))
    if state.shape:
        raise InputError("layers", f"output with spatial shape {state.shape}",
                         "a network ending in Flatten/GlobalAvgPool and a readout")
    n1 = x1.shape[0]
    cols = slice(0, n1) if x2 is None else slice(n1, None)
    k, theta = (t[:n1, cols].reshape(n1, -1) for t in (state.nngp, state.ntk))
    return Kernels(k.contiguous(), theta.contiguous(), state.error)


def _flatten_first(layers: Sequence[Layer]) -> bool:
    """Whether the positions meet ``Flatten`` before any pooling: then only pairs of equal
    positions matter (convolutions, nonlinearities and LayerNorm map ``K[s, s]`` to
    ``K'[s, s]``), as neural-tangents' diagonal spatial mode."""
    for layer in layers:
        if isinstance(layer, Residual):
            if not _flatten_first(layer.branch):
                return False
        elif isinstance(layer, Flatten):
            return True
        elif isinstance(layer, AvgPool | GlobalAvgPool):
            return False
    return True


# ---- reading an nn.Module ------------------------------------------------------------------

_ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu", nn.Tanh: "tanh", nn.Identity: "identity", nn.LeakyReLU: "leaky_relu",
    nn.GELU: "gelu",
}


def _measured(weight: Tensor, bias: Tensor | None, w_std: float | None,
              b_std: float | None) -> tuple[float, float | None]:
    fan_in = weight[0].numel()
    w = w_std if w_std is not None else math.sqrt(fan_in * float(weight.double().pow(2).mean()))
    if bias is None:
        return w, None
    return w, b_std if b_std is not None else math.sqrt(float(bias.double().pow(2).mean()))


def module_layers(model: nn.Module, w_std: float | None = None,
                  b_std: float | None = None) -> list[Layer]:
    """The layers of ``model`` in standard parametrization (see the module docstring);
    an :class:`~learnmech.errors.InputError` names the first unsupported module."""
    from learnmech.models.resmlp import ResMLP

    def read(m: nn.Module, name: str) -> list[Layer]:
        if isinstance(m, nn.Sequential):
            return [layer for i, child in enumerate(m) for layer in read(child, f"{name}.{i}")]
        if isinstance(m, nn.Linear):
            w, b = _measured(m.weight, m.bias, w_std, b_std)
            return [Dense(m.out_features, w, b, "standard")]
        if isinstance(m, nn.Conv1d | nn.Conv2d):
            return [_conv(m, name, w_std, b_std)]
        if type(m) in _ACTIVATIONS:
            if isinstance(m, nn.GELU) and m.approximate != "none":
                raise InputError(name, "GELU(approximate='tanh')", "nn.GELU() (exact)")
            slope = m.negative_slope if isinstance(m, nn.LeakyReLU) else 0.01
            return [ActivationLayer(_ACTIVATIONS[type(m)], negative_slope=slope)]
        if isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise InputError(name, f"Flatten({m.start_dim}, {m.end_dim})", "nn.Flatten()")
            return [Flatten()]
        if isinstance(m, nn.AvgPool1d | nn.AvgPool2d):
            if any(p != 0 for p in _tuple(m.padding)) or m.ceil_mode:
                raise InputError(name, "padded or ceil-mode pooling", "padding 0, ceil_mode off")
            return [AvgPool(m.kernel_size, m.stride)]
        if isinstance(m, nn.AdaptiveAvgPool1d | nn.AdaptiveAvgPool2d):
            size = m.output_size
            if set(size if isinstance(size, tuple) else (size,)) != {1}:
                raise InputError(name, f"output_size {size}", "1 (global pooling)")
            return [GlobalAvgPool()]
        if isinstance(m, nn.LayerNorm):
            return [_LayerNormFromModule(m, name)]
        if isinstance(m, ResMLP):
            act = ActivationLayer(m.activation)
            layers = read(m.input, f"{name}.input")
            for i, block in enumerate(m.blocks):
                layers.append(Residual([act, *read(block, f"{name}.blocks.{i}")],
                                       m.branch_multiplier))
            return [*layers, act, *read(m.readout, f"{name}.readout")]
        raise InputError(name or "model", type(m).__name__,
                         "nn.Linear, nn.Conv1d/2d, ReLU/LeakyReLU/Tanh/GELU/Identity, "
                         "AvgPool, AdaptiveAvgPool(1), LayerNorm, Flatten, Sequential, ResMLP")

    return read(model, "")


def _tuple(v: int | Sequence[int] | None) -> tuple[int, ...]:
    if v is None:
        return ()
    return (v,) if isinstance(v, int) else tuple(v)


def _conv(m: nn.Conv1d | nn.Conv2d, name: str, w_std: float | None,
          b_std: float | None) -> Conv:
    if m.groups != 1 or set(_tuple(m.dilation)) != {1}:
        raise InputError(name, f"groups={m.groups}, dilation={m.dilation}",
                         "groups 1 and dilation 1")
    sizes = _tuple(m.kernel_size)
    half = tuple((k - 1) // 2 for k in sizes)
    pad = m.padding if isinstance(m.padding, str) else tuple(m.padding)
    if m.padding_mode not in ("zeros", "circular"):
        raise InputError(name, f"padding_mode {m.padding_mode}", "'zeros' or 'circular'")
    padding: Padding
    if pad == "valid" or pad == (0,) * len(sizes):
        padding = "valid"
    elif pad == "same" or (pad == half and all(k % 2 for k in sizes)):
        padding = "circular" if m.padding_mode == "circular" else "same"
    else:
        raise InputError(name, f"padding {m.padding}", "'same', 'valid' or (k − 1)/2 per side")
    w, b = _measured(m.weight, m.bias, w_std, b_std)
    return Conv(m.out_channels, sizes, _tuple(m.stride), padding, w, b, "standard")


@dataclass(frozen=True)
class _LayerNormFromModule:
    module: nn.LayerNorm
    name: str

    def __call__(self, state: KernelState) -> KernelState:
        shape = tuple(self.module.normalized_shape)
        if shape == (state.channels,) and not state.shape:
            over: Literal["channels", "all"] = "channels"
        elif shape == (state.channels, *state.shape):
            over = "all"
        else:
            raise InputError(self.name, f"LayerNorm{shape}",
                             f"normalized_shape ({state.channels},) on dense features or "
                             f"({state.channels}, *{state.shape}) on images")
        return LayerNorm(over, self.module.eps, self.module.elementwise_affine)(state)


def infinite_width_kernels(
    model: nn.Module,
    x1: Tensor,
    x2: Tensor | None = None,
    *,
    w_std: float | None = None,
    b_std: float | None = None,
    max_memory: float = 2**31,
) -> Kernels:
    """The NNGP and the standard-parametrization NTK (at the module's widths) of the
    infinite-width limit of ``model`` on ``x1``, ``x2``: ``(N1, N2)`` each, float64.

    ``w_std``/``b_std`` override the variances measured from the model's weights (see the
    module docstring). The NTK is that of every output (outputs are independent in the
    limit), to compare with ``empirical_ntk(model, x1, x2, outputs="trace")``.
    """
    return network_kernels(module_layers(model, w_std, b_std), x1, x2, max_memory=max_memory)
