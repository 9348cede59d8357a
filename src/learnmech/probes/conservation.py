"""Per-neuron conserved quantities of the rescaling symmetry (Kunin et al. 2021).

In a network with a positively homogeneous activation (ReLU, identity), scaling the
incoming weights ``w_i`` (row ``i`` of ``W_l``) and bias ``b_i`` of hidden neuron ``i`` by
``α > 0`` and its outgoing weights ``a_i`` (column ``i`` of ``W_{l+1}``) by ``1/α`` leaves the
function unchanged, whatever the forward multipliers. Noether's theorem then makes

    q_i = ‖a_i‖²/ρ_out − ‖w_i‖²/ρ_in − b_i²/ρ_b

constant under gradient flow ``dp/dt = −η ρ_p ∂L/∂p`` (``ρ`` the plan's learning-rate
multipliers; for ``sp`` all are 1 and ``q_i = ‖a_i‖² − ‖w_i‖² − b_i²``). One GD step
changes ``q_i`` by exactly ``η²(ρ_out‖g_a‖² − ρ_in‖g_w‖² − ρ_b g_b²)`` (``g`` the
gradients), so at a fixed time ``t = η·steps`` the drift is ``O(η)``; weight decay ``λ``
multiplies ``q_i`` by ``(1 − ηλ)²`` per step, ``≈ e^{−2λt}``. Parameters are the raw
(trained) tensors, not the effective weights ``m_l W_l``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from learnmech.errors import InputError
from learnmech.models import Network
from learnmech.probes.base import Batch, LossFn, optimizer_weights
from learnmech.probes.hidden import as_network, linear_layers
from learnmech.probes.registry import register_probe


class LayerRates(Protocol):
    """A layer's learning-rate multipliers (a :class:`learnmech.param.LayerPlan` is one)."""

    @property
    def lr_mult(self) -> float: ...
    @property
    def bias_lr_mult(self) -> float: ...


@dataclass(frozen=True)
class Rates:
    """The learning-rate multipliers of one layer, as an optimizer's groups have them."""

    lr_mult: float
    bias_lr_mult: float


def optimizer_rates(net: Network, optimizer: torch.optim.Optimizer) -> list[Rates]:
    """Each layer's ``(lr_mult, bias_lr_mult)``: its group learning rates over the
    optimizer's default (:func:`~learnmech.probes.base.optimizer_weights`)."""
    weights = optimizer_weights(net, optimizer)
    return [
        Rates(weights[f"layers.{l}.weight"], weights.get(f"layers.{l}.bias", 1.0))
        for l in range(len(net.layers))
    ]


def neuron_terms(net: Network, plan: Sequence[LayerRates] | None = None
                 ) -> list[tuple[Tensor, Tensor]]:
    """For each hidden layer: ``(outgoing, incoming)`` weighted squared norms per neuron.

    ``outgoing_i = ‖a_i‖²/ρ_out`` and ``incoming_i = ‖w_i‖²/ρ_in + b_i²/ρ_b``, each
    ``(n_l,)`` float64; ``plan=None`` means all multipliers 1.
    """
    out = []
    layers = linear_layers(net)
    for l in range(len(layers) - 1):
        w_in, w_out = layers[l].weight.detach().double(), layers[l + 1].weight.detach().double()
        r_in = plan[l].lr_mult if plan else 1.0
        r_b = plan[l].bias_lr_mult if plan else 1.0
        r_out = plan[l + 1].lr_mult if plan else 1.0
        incoming = w_in.pow(2).sum(1) / r_in
        bias = layers[l].bias
        if bias is not None:
            incoming = incoming + bias.detach().double().pow(2) / r_b
        out.append((w_out.pow(2).sum(0) / r_out, incoming))
    return out


def neuron_balance(net: Network, plan: Sequence[LayerRates] | None = None) -> list[Tensor]:
    """``q_i = outgoing_i − incoming_i`` for every neuron of every hidden layer."""
    return [a - w for a, w in neuron_terms(net, plan)]


@register_probe("neuron_balance")
class NeuronBalance:
    """Per-neuron conserved quantities ``q_i`` of each hidden layer ``l``.

    Observables ``neuron_balance.<l>`` (the vector ``q``) and ``neuron_balance.drift.<l>``
    = ``max_i |q_i(t) − q_i(0)|`` divided by the mean over neurons of
    ``outgoing_i + incoming_i`` at the first measurement (a scale for ``q``).
    """

    name = "neuron_balance"

    def __init__(self) -> None:
        self._initial: list[tuple[Tensor, float]] | None = None

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
    ) -> dict[str, Tensor | float]:
        net = as_network(model)
        terms = neuron_terms(net, optimizer_rates(net, optimizer))
        q = [a - w for a, w in terms]
        if self._initial is None:
            self._initial = [(qi, float((a + w).mean()))
                             for qi, (a, w) in zip(q, terms, strict=True)]
        out: dict[str, Tensor | float] = {}
        for l, (qi, (q0, scale)) in enumerate(zip(q, self._initial, strict=True)):
            out[f"neuron_balance.{l}"] = qi
            out[f"neuron_balance.drift.{l}"] = float((qi - q0).abs().max()) / scale
        return out


def decay_rate(t: np.ndarray, q: np.ndarray) -> float:
    """Fitted rate ``r`` of ``q(t) ≈ q(0) e^{−rt}`` for a vector quantity ``q`` ``(times,
    neurons)`` at times ``t`` ``(times,)`` (``t[0] = 0``): the least-squares slope through the
    origin of ``−log ρ(t)`` against ``t``, with ``ρ(t) = ⟨q(0), q(t)⟩ / ‖q(0)‖²`` the
    projection of ``q(t)`` on its start."""
    t, q = np.asarray(t, dtype=float), np.asarray(q, dtype=float)
    if q.ndim != 2 or q.shape[0] != t.shape[0]:
        raise InputError("q", q.shape, f"(times, neurons) with {t.shape[0]} times")
    ratio = q @ q[0] / (q[0] @ q[0])
    return float(-(t @ np.log(ratio)) / (t @ t))
