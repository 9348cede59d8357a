"""Infinite-width NNGP and NTK of convolutional, pooled, residual and normalized networks.

A network is a sequence of layers, each a map on a :class:`KernelState`: the kernels of
one layer's channels, ``K[i, j, s, s'] = E[h_c(x_i, s) h_c(x_j, s')]`` (NNGP) and the NTK
``Θ[i, j, s, s']`` of the same channel, for every pair of inputs ``i ≤ j`` and of spatial
positions ``(s, s')`` (flattened; ``shape`` is the spatial shape, ``()`` after
:class:`Flatten` or :class:`GlobalAvgPool`). Every layer maps the block of one input pair
``(i, j)`` on its own (reading only the variances of the blocks ``(i, i)`` and ``(j, j)``),
and ``K[j, i, s', s] = K[i, j, s, s']``, so the pairs ``j < i`` are never computed: they
are the mirror image, filled in for the final ``(N, N)`` kernels. Channels are i.i.d. in
the limit, so one channel's kernel is every channel's. Layers (neural-tangents' ``stax``
conventions, written in PyTorch)::

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

Memory: the state holds ``(P, S, S)`` float64 tensors for the ``P = N(N + 1)/2`` pairs
of ``N`` inputs (``x1`` and ``x2`` together) and ``S`` positions, or ``(P, S)`` when the
network flattens its positions before any pooling (only ``s = s'`` is needed then); the
size is checked against ``max_memory`` before anything is allocated.
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
_BLOCK = 2**17


@dataclass(frozen=True)
class Pairs:
    """The input pairs ``i ≤ j`` of ``N`` inputs, row by row: ``rows[p]``, ``cols[p]`` and
    ``selves[i]``, the index of the pair ``(i, i)``."""

    rows: Tensor
    cols: Tensor
    selves: Tensor

    @staticmethod
    def of(n: int, device: torch.device | None = None) -> Pairs:
        rows, cols = torch.triu_indices(n, n, device=device)
        return Pairs(rows, cols, torch.nonzero(rows == cols).squeeze(1))

    def gram(self, f: Tensor, diagonal: bool) -> Tensor:
        """``Σ_c f[i, s, c] f[j, s', c]`` of features ``f`` ``(N, S, F)`` at the pairs:
        ``(P, S, S)``, or ``(P, S)`` at ``s = s'`` if ``diagonal``."""
        if diagonal:
            g = torch.bmm(f.transpose(0, 1), f.permute(1, 2, 0))  # (S, N, N)
            return g[:, self.rows, self.cols].T.contiguous()
        n, s = f.shape[:2]
        flat = f.reshape(n * s, -1)
        return (flat @ flat.T).reshape(n, s, n, s)[self.rows, :, self.cols]

    def unpack(self, values: Tensor) -> Tensor:
        """``(P,)`` values of the pairs as the symmetric ``(N, N)`` matrix."""
        n = self.selves.shape[0]
        out = values.new_empty(n, n)
        out[self.rows, self.cols] = values
        out[self.cols, self.rows] = values
        return out


@dataclass(frozen=True)
class KernelState:
    """The kernels of one layer's channels (see the module docstring).

    ``nngp``, ``ntk``: ``(P, S, S)`` float64 over the input pairs ``pairs`` and
    ``S = prod(shape)`` positions, or ``(P, S)`` when only equal positions are kept
    (:attr:`diagonal`); ``channels``: the finite number of channels (the fan-in of the next
    layer per position); ``zero_mean``: whether each channel has mean zero (needed by
    LayerNorm); ``error``: the largest quadrature error estimate so far."""

    nngp: Tensor
    ntk: Tensor
    pairs: Pairs
    shape: tuple[int, ...]
    channels: int
    zero_mean: bool = True
    error: float = 0.0

    @property
    def diagonal(self) -> bool:
        """Whether only the pairs of equal positions ``s = s'`` are kept."""
        return self.nngp.ndim == 2

    @property
    def variances(self) -> Tensor:
        """``K[i, i, s, s]``, shape ``(N, S)``."""
        d = self.nngp[self.pairs.selves]
        return d if self.diagonal else d.diagonal(0, 1, 2)

    def pair(self, q: Tensor) -> tuple[Tensor, Tensor]:
        """A per-(input, position) ``(N, S)`` tensor at ``(i, s)`` and ``(j, s')`` of each
        pair, broadcast against the kernels."""
        q1, q2 = q[self.pairs.rows], q[self.pairs.cols]
        if self.diagonal:
            return q1, q2
        return q1[:, :, None], q2[:, None, :]


Layer = Callable[[KernelState], KernelState]


def input_state(x: Tensor, diagonal: bool = False) -> KernelState:
    """The kernel of the inputs ``x`` ``(N, d)`` or ``(N, C, *spatial)``, channels first:
    ``K[i, j, s, s'] = Σ_c x[i, c, s] x[j, c, s'] / C`` (only ``s = s'`` if ``diagonal``);
    no NTK yet."""
    x = x.to(torch.float64)
    if x.ndim < 2:
        raise InputError("x", tuple(x.shape), "(N, d) or (N, C, *spatial) inputs")
    n, c = x.shape[:2]
    pairs = Pairs.of(n, x.device)
    k = pairs.gram(x.reshape(n, c, -1).transpose(1, 2), diagonal).div_(c)
    return KernelState(k, torch.zeros_like(k), pairs, tuple(x.shape[2:]), c)


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
    acc: Tensor | None = None
    for tap in sorted(range(size), key=lambda tap: tap != left):  # shift 0 covers every o
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
        if acc is None:
            acc = t[tuple(src)].clone()
        else:
            acc[tuple(into)] += t[tuple(src)]
    assert acc is not None
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


def _affine(state: KernelState, tk: Tensor, ttheta: Tensor | None, fan_in: int, out: int,
            w_std: float, b_std: float | None, parameterization: str,
            shape: tuple[int, ...], owned: bool = False) -> KernelState:
    """The kernels after weights and biases, given ``T(K)``, ``T(Θ)`` (``None``: zero)
    and the fan-in; ``owned``: ``T(K)`` and ``T(Θ)`` are temporaries, updated in place."""
    if w_std <= 0 or (b_std is not None and b_std < 0) or out < 1:
        raise InputError("w_std/b_std/out", (w_std, b_std, out), "w_std > 0, b_std ≥ 0, out ≥ 1")
    if parameterization not in ("ntk", "standard"):
        raise InputError("parameterization", parameterization, "'ntk' or 'standard'")
    b2, w2 = (b_std or 0.0) ** 2, w_std**2
    bias = 1.0 if b_std is not None else 0.0
    if parameterization == "ntk":
        k = tk.mul_(w2).add_(b2) if owned else tk * w2 + b2
        if ttheta is None:
            theta = k.clone()
        else:
            theta = ttheta.mul_(w2).add_(k) if owned else torch.add(k, ttheta, alpha=w2)
    else:
        theta = tk * fan_in + bias
        if ttheta is not None:
            theta.add_(ttheta, alpha=w2)
        k = tk.mul_(w2).add_(b2) if owned else tk * w2 + b2
    return replace(state, nngp=k, ntk=theta, shape=shape, channels=out, zero_mean=True)


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
        out = []
        for kernel in (state.nngp, state.ntk):
            t = kernel.reshape(kernel.shape[0], *state.shape * (1 if state.diagonal else 2))
            shape = list(state.shape)
            for d, (size, stride) in enumerate(zip(sizes, strides)):
                axes = (1 + d,) if state.diagonal else (1 + d, 1 + dims + d)
                t, shape[d] = _shift_sum(t, axes, size, stride, self.padding)
            out.append(t)
        shape_t = tuple(shape)
        s_out = math.prod(shape_t)
        tk, ttheta = (t.reshape(t.shape[0], *((s_out,) if state.diagonal else (s_out, s_out)))
                      for t in out)
        return _affine(state, tk, ttheta, state.channels * math.prod(sizes), self.out,
                       self.w_std, self.b_std, self.parameterization, shape_t, owned=True)

    def from_inputs(self, x: Tensor, diagonal: bool = False) -> KernelState:
        """This layer applied to :func:`input_state` ``(x, diagonal)`` directly: ``T(K)`` is
        the Gram matrix of the input patches ``P[i, s] = x[i, :, s + F]`` (padded as the
        layer pads), ``(1/(C|F|)) P[i, s]·P[j, s']`` — one matrix product instead of the
        shifted sums over all pairs of input positions; ``T(Θ) = 0``."""
        x = x.to(torch.float64)
        dims = x.ndim - 2
        if dims < 1:
            raise InputError("Conv", "input without spatial dimensions", "(N, C, *spatial) inputs")
        if self.padding not in ("same", "valid", "circular"):
            raise InputError("padding", self.padding, "'same', 'valid' or 'circular'")
        sizes = _per_dim(self.kernel_size, dims, "kernel_size")
        strides = _per_dim(self.stride, dims, "stride")
        n, c = x.shape[:2]
        shape = []
        for d, (size, stride) in enumerate(zip(sizes, strides)):
            length = x.shape[2 + d]
            if self.padding == "valid":
                out, left, right = (length - size) // stride + 1, 0, 0
                if out < 1:
                    raise InputError("kernel_size", size,
                                     f"at most the input length {length} ('valid')")
            else:
                out, left = (length - 1) // stride + 1, (size - 1) // 2
                right = max(0, (out - 1) * stride + size - left - length)
            if left or right:
                if self.padding == "circular":
                    parts = [x.narrow(2 + d, length - left, left), x,
                             x.narrow(2 + d, 0, right)]
                else:
                    zeros = x.new_zeros(1).expand(*x.shape[:2 + d], 1, *x.shape[3 + d:])
                    parts = [zeros.expand(*x.shape[:2 + d], left, *x.shape[3 + d:]), x,
                             zeros.expand(*x.shape[:2 + d], right, *x.shape[3 + d:])]
                x = torch.cat(parts, 2 + d)
            x = x.unfold(2 + d, size, stride)  # window axis appended at the end
            shape.append(out)
        # (N, C, *out, *window) → (N, S_out, C·|F|)
        patches = x.permute(0, *range(2, 2 + dims), 1, *range(2 + dims, 2 + 2 * dims))
        s_out = math.prod(shape)
        patches = patches.reshape(n, s_out, -1)
        fan_in = c * math.prod(sizes)
        pairs = Pairs.of(n, x.device)
        tk = pairs.gram(patches, diagonal).div_(fan_in)
        state = KernelState(tk, tk, pairs, tuple(shape), c)
        return _affine(state, tk, None, fan_in, self.out, self.w_std, self.b_std,
                       self.parameterization, tuple(shape), owned=True)


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
        """On blocks of about ``2¹⁷`` entries (temporaries stay in cache)."""
        per = math.prod(state.nngp.shape[1:])
        q1, q2 = state.pair(state.variances)
        k, theta = torch.empty_like(state.nngp), torch.empty_like(state.ntk)
        err, rows = 0.0, max(1, _BLOCK // per)
        for a in range(0, k.shape[0], rows):
            sl = slice(a, a + rows)
            e, edot, block_err = expectations_with_error(
                self.activation, q1[sl], q2[sl], state.nngp[sl],
                negative_slope=self.negative_slope, tol=self.tol)
            err = max(err, block_err)
            k[sl] = e
            torch.mul(state.ntk[sl], edot, out=theta[sl])
        odd = isinstance(self.activation, str) and self.activation in ODD
        return replace(state, nngp=k, ntk=theta, zero_mean=state.zero_mean and odd,
                       error=max(state.error, err))


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
        out = []
        for kernel in (state.nngp, state.ntk):
            t = kernel.reshape(kernel.shape[0], *state.shape * 2)
            shape = list(state.shape)
            for d, (size, stride) in enumerate(zip(sizes, strides)):
                for axis in (1 + d, 1 + dims + d):  # each position index pooled on its own
                    t, shape[d] = _shift_sum(t, (axis,), size, stride, "valid")
            s_out = math.prod(shape)
            out.append(t.reshape(t.shape[0], s_out, s_out))
        return replace(state, nngp=out[0], ntk=out[1], shape=tuple(shape))


@dataclass(frozen=True)
class GlobalAvgPool:
    """The mean over all positions: ``K' = mean_{s, s'} K[s, s']``."""

    def __call__(self, state: KernelState) -> KernelState:
        if state.diagonal:
            raise InputError("GlobalAvgPool", "a diagonal state",
                             "the kernels of all position pairs")
        k = state.nngp.mean((1, 2), keepdim=True)
        return replace(state, nngp=k, ntk=state.ntk.mean((1, 2), keepdim=True), shape=())


@dataclass(frozen=True)
class Flatten:
    """Positions become channels: ``K' = mean_s K[s, s]``, ``channels' = C · S``."""

    def __call__(self, state: KernelState) -> KernelState:
        s = state.nngp.shape[1]

        def diag_mean(t: Tensor) -> Tensor:
            if state.diagonal:
                return t.mean(-1, keepdim=True)
            return t.diagonal(0, 1, 2).mean(-1)[:, None, None]

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
                eye = torch.eye(k.shape[1], dtype=k.dtype, device=k.device)
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
        return replace(state, nngp=state.nngp * a2 + out.nngp * b2,
                       ntk=state.ntk * a2 + out.ntk * b2,
                       zero_mean=state.zero_mean and out.zero_mean, error=out.error)


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
    pairs = x.shape[0] * (x.shape[0] + 1) // 2
    need = 6 * pairs * s ** (1 if diagonal else 2) * 8  # the kernels and temporaries
    if need > max_memory:
        raise InputError("inputs", f"{x.shape[0]} inputs × {s} positions",
                         f"≤ max_memory = {max_memory:.3g} bytes; these need about {need:.3g}")
    if layers and isinstance(layers[0], Conv):  # the first convolution reads the inputs
        state = serial(*layers[1:])(layers[0].from_inputs(x, diagonal))
    else:
        state = serial(*layers)(input_state(x, diagonal))
    if state.shape:
        raise InputError("layers", f"output with spatial shape {state.shape}",
                         "a network ending in Flatten/GlobalAvgPool and a readout")
    n1 = x1.shape[0]
    cols = slice(0, n1) if x2 is None else slice(n1, None)
    k, theta = (state.pairs.unpack(t.reshape(-1))[:n1, cols] for t in (state.nngp, state.ntk))
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
