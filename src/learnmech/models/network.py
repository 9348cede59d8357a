"""The fully connected network behind ``mlp`` and ``deep_linear``.

``h_0 = x``, ``h_l = φ(m_l W_l h_{l-1} + b_l)`` for ``l < L`` and
``f(x) = m_L W_L h_{L-1} + b_L``, with multipliers ``m_l`` from the plan
(:mod:`learnmech.param`). Shapes: ``x`` is ``(batch, d_in)``, ``f(x)`` is ``(batch, d_out)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learnmech.errors import InputError
from learnmech.param import LayerPlan, plan
from learnmech.system import MLP, DeepLinear


def _erf(x: Tensor) -> Tensor:
    return torch.erf(x)


def _identity(x: Tensor) -> Tensor:
    return x


_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "gelu": F.gelu,
    "erf": _erf,
    "identity": _identity,
}


def activation_fn(name: str) -> Callable[[Tensor], Tensor]:
    """The elementwise nonlinearity called ``name``."""
    if name not in _ACTIVATIONS:
        raise InputError("activation", name, f"one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


@dataclass
class Trace:
    """One forward pass of a :class:`Network` with ``L`` layers.

    ``inputs[l]`` is layer ``l``'s input ``h_l`` (``inputs[0] = x``), ``preactivations[l]``
    its pre-activation ``z_{l+1}``; shapes ``(batch, width)``.
    """

    inputs: list[Tensor]
    preactivations: list[Tensor]

    @property
    def output(self) -> Tensor:
        """``f(x) = z_L``, ``(batch, d_out)``."""
        return self.preactivations[-1]

    @property
    def hidden(self) -> list[Tensor]:
        """The hidden representations ``[h_1, …, h_{L−1}]``."""
        return self.inputs[1:]


class Network(nn.Module):
    """A stack of :class:`torch.nn.Linear` layers with per-layer forward multipliers.

    Args:
        widths: ``[d_in, n_1, ..., d_out]``.
        activation: name of the nonlinearity between layers (``"identity"`` for a DLN).
        bias: whether the layers carry biases.
        multipliers: one forward multiplier per layer (plain floats, not parameters).
    """

    def __init__(
        self, widths: Sequence[int], activation: str, bias: bool, multipliers: Sequence[float]
    ) -> None:
        super().__init__()
        if len(multipliers) != len(widths) - 1:
            raise ValueError("one multiplier per layer is needed")
        self.layers = nn.ModuleList(
            nn.Linear(widths[i], widths[i + 1], bias=bias) for i in range(len(widths) - 1)
        )
        self.activation = activation
        self.multipliers = tuple(float(m) for m in multipliers)
        self._phi = activation_fn(activation)

    def linears(self) -> list[nn.Linear]:
        """The layers, typed as :class:`torch.nn.Linear`."""
        return [cast(nn.Linear, layer) for layer in self.layers]

    def affine(self, index: int, h: Tensor) -> Tensor:
        """Layer ``index``'s pre-activation ``z = m W h + b``; ``h`` is ``(batch, fan_in)``."""
        layer = cast(nn.Linear, self.layers[index])
        z = F.linear(h, layer.weight)
        m = self.multipliers[index]
        if m != 1.0:
            z = z * m
        return z if layer.bias is None else z + layer.bias

    def forward_trace(
        self, x: Tensor, affine: Callable[[int, Tensor], Tensor] | None = None
    ) -> Trace:
        """The forward pass with every layer's input and pre-activation kept.

        ``h_0 = x``, ``z_l = affine(l, h_{l−1})`` (default :meth:`affine`, ``m_l W_l h + b_l``)
        and ``h_l = φ(z_l)`` for ``l < L``; the output is ``z_L``. ``affine`` replaces the
        layers' products, e.g. to add a perturbation to each ``z_l`` or to run stacked
        weights of an ensemble (then the leading dims are the caller's). Gradients flow
        through the trace.
        """
        affine = affine or self.affine
        inputs, pre = [], []
        h, last = x, len(self.layers) - 1
        for i in range(len(self.layers)):
            inputs.append(h)
            z = affine(i, h)
            pre.append(z)
            h = self._phi(z) if i < last else z
        return Trace(inputs, pre)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_trace(x).output

    def effective_weights(self) -> list[Tensor]:
        """``m_l W_l`` for every layer, detached, shapes ``(fan_out, fan_in)``."""
        return [m * layer.weight.detach() for m, layer in zip(self.multipliers, self.linears())]

    def end_to_end(self, dtype: torch.dtype | None = None) -> Tensor:
        """``m_L W_L ⋯ m_1 W_1`` (the whole map of a linear network), ``(d_out, d_in)``,
        multiplied out in ``dtype`` (default: the weights' dtype)."""
        if self.activation != "identity" or self.layers[0].bias is not None:
            raise InputError(
                "architecture", self.activation, "a deep linear network (identity, no bias)"
            )
        product = None
        for w in self.effective_weights():
            w = w.to(dtype) if dtype is not None else w
            product = w if product is None else w @ product
        assert product is not None
        return product


def build_model(
    arch: MLP | DeepLinear,
    d_in: int,
    d_out: int,
    optimizer: str = "gd",
    generator: torch.Generator | None = None,
) -> tuple[Network, tuple[LayerPlan, ...]]:
    """Build and initialize the network of ``arch`` (float32, CPU) and return it with its plan.

    Initialization draws from ``generator`` (CPU), so a seed fixes every weight.
    """
    layer_plan = plan(arch, d_in, d_out, optimizer)
    widths = [d_in] + [p.fan_out for p in layer_plan]
    if isinstance(arch, DeepLinear):
        net = Network(widths, "identity", False, [p.multiplier for p in layer_plan])
    else:
        net = Network(widths, arch.activation, arch.bias, [p.multiplier for p in layer_plan])
    near_identity = isinstance(arch, DeepLinear) and arch.init == "near_identity"
    if near_identity and len(set(widths)) != 1:
        raise InputError(
            "architecture.init", "near_identity", f"square layers (all widths equal); got {widths}"
        )
    with torch.no_grad():
        for p, layer in zip(layer_plan, net.linears()):
            noise = torch.randn(layer.weight.shape, generator=generator)
            if near_identity:
                assert isinstance(arch, DeepLinear)
                eye = torch.eye(p.fan_out, p.fan_in)
                layer.weight.copy_(arch.init_scale * (eye + arch.init_noise * noise))
            else:
                layer.weight.copy_(p.init_std * noise)
            if layer.bias is not None:
                layer.bias.zero_()
    return net, layer_plan


def lecun_mlp(
    widths: Sequence[int], activation: str, generator: torch.Generator | None = None
) -> Network:
    """A LeCun-initialized (std ``1/√fan_in``) MLP without biases, e.g. a teacher network."""
    net = Network(widths, activation, False, [1.0] * (len(widths) - 1))
    with torch.no_grad():
        for layer in net.linears():
            std = 1.0 / math.sqrt(layer.in_features)
            layer.weight.copy_(std * torch.randn(layer.weight.shape, generator=generator))
    return net
