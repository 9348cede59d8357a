"""The signal-propagation instrument against closed forms: the first layer's correlation is
the one asked for, and ReLU networks without biases follow the arc-cosine correlation map
c ↦ (√(1 − c²) + (π − arccos c) c)/π (Cho & Saul 2009) within finite-width noise."""

from __future__ import annotations

import math

import numpy as np
import torch

from learnmech.probes.signal import correlations


def _arccos_map(c: float) -> float:
    return (math.sqrt(max(1 - c * c, 0.0)) + (math.pi - math.acos(c)) * c) / math.pi


def test_relu_networks_follow_the_arc_cosine_map():
    c0s = [0.0, 0.3, 0.7]
    measured = correlations(2.0, c0s, 2.0, 0.0, width=2000, networks=4, pairs=4, depth=4,
                            activation="relu", generator=torch.Generator().manual_seed(0))
    for i, c0 in enumerate(c0s):
        expected = [c0]
        for _ in range(3):
            expected.append(_arccos_map(expected[-1]))
        # one pair's c fluctuates by ≈ 1/√width ≈ 0.02 per layer; the mean of 16 by ≈ 0.005
        assert np.max(np.abs(measured[i] - expected)) < 0.02, (c0, measured[i], expected)


def test_first_layer_has_the_requested_correlation_with_biases():
    c0s = [0.2, 0.9]
    measured = correlations(1.5, c0s, 1.8, 0.3, width=4000, networks=2, pairs=8, depth=1,
                            generator=torch.Generator().manual_seed(1))
    assert np.max(np.abs(measured[:, 0] - c0s)) < 0.01
