"""Hidden representations of a :class:`~learnmech.models.Network`.

:class:`~learnmech.models.Network` calls :func:`torch.nn.functional.linear` on its layers'
weights, so module forward hooks on ``layers[l]`` do not fire; :func:`hidden_features`
reads them from :meth:`~learnmech.models.Network.forward_trace` instead: every hidden
representation
``h_l = φ(m_l W_l h_{l−1} + b_l)``, ``l = 1 … L−1``. The last one is the *penultimate*
representation that the readout ``f(x) = m_L W_L h_{L−1} + b_L`` acts on.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from learnmech.errors import InputError
from learnmech.models import Network


def as_network(model: nn.Module) -> Network:
    """``model`` if it is a learnmech :class:`Network`, else an :class:`InputError`."""
    if not isinstance(model, Network):
        raise InputError("model", type(model).__name__, "a learnmech Network")
    return model


def linear_layers(net: Network) -> list[nn.Linear]:
    """The network's layers, typed as :class:`torch.nn.Linear`."""
    return [cast(nn.Linear, layer) for layer in net.layers]


def hidden_features(net: Network, x: Tensor) -> list[Tensor]:
    """``[h_1, …, h_{L−1}]``, each ``(batch, n_l)``, for inputs ``x`` of shape ``(batch, d_in)``.

    Gradients flow through the result; wrap the call in :func:`torch.no_grad` to measure.
    """
    return net.forward_trace(x).hidden


def penultimate(net: Network, x: Tensor) -> Tensor:
    """The last hidden representation ``h_{L−1}(x)``, ``(batch, n_{L−1})``, without gradients."""
    if len(net.layers) < 2:
        raise InputError("architecture.depth", len(net.layers), "at least 2 layers")
    with torch.no_grad():
        return hidden_features(net, x)[-1]


def readout(net: Network) -> tuple[Tensor, Tensor | None]:
    """The effective readout ``(m_L W_L, b_L)``: shapes ``(d_out, n_{L−1})`` and ``(d_out,)``."""
    last = linear_layers(net)[-1]
    bias = None if last.bias is None else last.bias.detach()
    return net.multipliers[-1] * last.weight.detach(), bias
