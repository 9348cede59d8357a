"""Network.forward_trace against the layer formula written out with explicit matrices."""

from __future__ import annotations

import torch

from learnmech.models import Network


def test_forward_trace_is_the_layer_formula():
    torch.manual_seed(0)
    net = Network([3, 5, 4, 2], "tanh", True, [0.5, 1.0, 2.0]).double()
    x = torch.randn(6, 3, dtype=torch.float64)
    trace = net.forward_trace(x)
    h, hidden = x, []
    for i, layer in enumerate(net.layers):
        z = net.multipliers[i] * (h @ layer.weight.T) + layer.bias
        torch.testing.assert_close(trace.inputs[i], h)
        torch.testing.assert_close(trace.preactivations[i], z)
        h = torch.tanh(z)
        hidden.append(h)
    torch.testing.assert_close(trace.output, z)
    torch.testing.assert_close(net(x), z)
    assert len(trace.hidden) == 2
    for got, want in zip(trace.hidden, hidden[:-1], strict=True):
        torch.testing.assert_close(got, want)


def test_forward_trace_takes_the_callers_affine_map():
    net = Network([3, 4, 1], "relu", False, [1.0, 1.0]).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    shift = [torch.full((5, 4), 0.25, dtype=torch.float64), torch.zeros(5, 1, dtype=torch.float64)]
    trace = net.forward_trace(x, lambda i, h: net.affine(i, h) + shift[i])
    want = torch.relu(x @ net.layers[0].weight.T + 0.25) @ net.layers[1].weight.T
    torch.testing.assert_close(trace.output, want)
