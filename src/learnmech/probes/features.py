"""Kernel and feature movement: how far training takes a network from its initialization.

Functions:

* :func:`empirical_nngp` — one random network's NNGP sample: the output covariance over
  the readout's random initialization given the hidden features;
* :func:`kernel_alignment`, :func:`kernel_distance`, :func:`relative_change` — compare two
  kernels (e.g. the NTK at initialization and after training).

Probes (by name): ``outputs`` (network outputs on both splits), ``ntk_change`` (NTK on
the first training inputs against its value at the first measurement), ``feature_movement``
(``‖h_l(t) − h_l(0)‖/‖h_l(0)‖`` per hidden layer), ``weight_movement``
(``‖W_l(t) − W_l(0)‖/‖W_l(0)‖`` per layer) and ``neurons`` (input weights and readout
weights of a two-layer network, for trajectory plots).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor, nn

from learnmech.errors import InputError
from learnmech.models import Network
from learnmech.probes.base import Batch, LossFn, optimizer_weights, splits, training_pair
from learnmech.probes.hidden import as_network, hidden_features, linear_layers
from learnmech.probes.ntk import empirical_ntk
from learnmech.probes.registry import register_probe


class ReadoutPlan(Protocol):
    """A readout layer's initial scale (a :class:`learnmech.param.LayerPlan` is one)."""

    @property
    def multiplier(self) -> float: ...
    @property
    def init_std(self) -> float: ...


@torch.no_grad()
def empirical_nngp(
    model: Network, plan: Sequence[ReadoutPlan], x1: Tensor, x2: Tensor | None = None
) -> Tensor:
    """``E_readout[f(x1) f(x2)]`` for one network: ``(m_L σ_L)² h(x1)·h(x2)``, ``(N1, N2)``.

    ``h`` are the last hidden features and ``σ_L``, ``m_L`` the readout's initial standard
    deviation and multiplier from ``plan`` (biases start at zero and add nothing). Averaged
    over independent networks this is a Monte-Carlo estimate of the NNGP in which the
    Gaussian readout is integrated exactly; for one network it converges to the NNGP at
    rate ``width^{−1/2}``.
    """
    if len(model.layers) < 2:
        raise InputError("model", "depth 1", "a network with at least one hidden layer")
    h1 = hidden_features(model, x1)[-1]
    h2 = h1 if x2 is None else hidden_features(model, x2)[-1]
    readout = plan[-1]
    return (readout.multiplier * readout.init_std) ** 2 * (h1 @ h2.T)


def kernel_alignment(k1: Tensor, k2: Tensor) -> float:
    """``⟨K1, K2⟩_F / (‖K1‖_F ‖K2‖_F)`` (Cristianini et al. 2001): 1 for proportional kernels."""
    a, b = k1.double().flatten(), k2.double().flatten()
    return float(a @ b / (a.norm() * b.norm()))


def kernel_distance(k1: Tensor, k2: Tensor) -> float:
    """``1 − alignment``: 0 when the kernels are proportional (Fort et al. 2020)."""
    return 1.0 - kernel_alignment(k1, k2)


def relative_change(before: Tensor, after: Tensor) -> float:
    """``‖after − before‖_F / ‖before‖_F``."""
    b = before.double()
    return float((after.double() - b).norm() / b.norm())


# ---- probes --------------------------------------------------------------------------------
@register_probe("outputs")
class Outputs:
    """Network outputs on both splits, flattened row-major from ``(N, O)``:
    ``train_outputs`` and ``test_outputs``."""

    name = "outputs"

    @torch.no_grad()
    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> dict[str, Tensor]:
        return {f"{split}_outputs": model(x).flatten() for split, x, _ in splits(batch)}


@register_probe("ntk_change")
class NTKChange:
    """The NTK (trace over outputs, weighted by the optimizer's learning-rate multipliers)
    on the first ``points`` training inputs, against its value at the first measurement:
    ``ntk_change.relative`` = ``‖Θ_t − Θ_0‖/‖Θ_0‖`` and ``ntk_change.distance`` =
    ``1 − alignment(Θ_t, Θ_0)``."""

    name = "ntk_change"
    points = 64

    def __init__(self) -> None:
        self._initial: Tensor | None = None

    def start(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> None:
        self._initial = None

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> dict[str, float]:
        x = training_pair(batch)[0][: self.points]
        weights = optimizer_weights(model, optimizer)
        theta = empirical_ntk(model, x, outputs="trace", weights=weights)
        if self._initial is None:
            self._initial = theta
        return {
            "ntk_change.relative": relative_change(self._initial, theta),
            "ntk_change.distance": kernel_distance(self._initial, theta),
        }


@register_probe("feature_movement")
class FeatureMovement:
    """``feature_movement.<l>`` = ``‖h_l(t) − h_l(0)‖_F / ‖h_l(0)‖_F`` for each hidden layer
    ``l`` (1-based) on the training inputs, relative to the first measurement."""

    name = "feature_movement"

    def __init__(self) -> None:
        self._initial: list[Tensor] | None = None

    def start(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> None:
        self._initial = None

    @torch.no_grad()
    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> dict[str, float]:
        now = hidden_features(as_network(model), training_pair(batch)[0])
        if self._initial is None:
            self._initial = now
        return {
            f"feature_movement.{l + 1}": relative_change(h0, h)
            for l, (h0, h) in enumerate(zip(self._initial, now, strict=True))
        }


@register_probe("weight_movement")
class WeightMovement:
    """``weight_movement.<l>`` = ``‖W_l(t) − W_l(0)‖_F / ‖W_l(0)‖_F`` for each layer ``l``
    (0-based, raw weights), relative to the first measurement."""

    name = "weight_movement"

    def __init__(self) -> None:
        self._initial: list[Tensor] | None = None

    def start(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> None:
        self._initial = None

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> dict[str, float]:
        now = [layer.weight.detach().clone() for layer in linear_layers(as_network(model))]
        if self._initial is None:
            self._initial = now
        return {
            f"weight_movement.{l}": relative_change(w0, w)
            for l, (w0, w) in enumerate(zip(self._initial, now, strict=True))
        }


@register_probe("neurons")
class Neurons:
    """A two-layer network's neurons: ``neurons.input`` = ``m_1 W_1`` flattened from
    ``(n, d)`` and ``neurons.output`` = the readout ``m_2 W_2`` flattened from ``(O, n)``."""

    name = "neurons"

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> dict[str, Tensor]:
        net = as_network(model)
        if len(net.layers) != 2:
            raise InputError("probe", "neurons", "a two-layer network (depth 2)")
        w_in, w_out = net.effective_weights()
        return {"neurons.input": w_in.flatten(), "neurons.output": w_out.flatten()}
