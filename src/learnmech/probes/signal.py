"""Signal propagation measured in random networks at initialization (the experiment of
:mod:`learnmech.theory.signal`).

A fully connected network of width ``n`` with ``W ~ N(0, σ_w²/fan_in)`` and
``b ~ N(0, σ_b²)`` maps pairs of inputs to pre-activations ``z^l``; the instrument records
their correlation ``c^l = ⟨z_1^l, z_2^l⟩ / (|z_1^l| |z_2^l|)`` layer by layer (pre-activation
``l`` at index ``l − 1``), averaged over input pairs and networks. The inputs are drawn so
that the first layer has squared length ``q¹ = σ_w² |x|²/d + σ_b² = q`` and correlation
``c¹``: two unit vectors with cosine ``ρ = (c¹ q − σ_b²)/(q − σ_b²)``, scaled by
``√((q − σ_b²) d/σ_w²)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch


def correlations(
    q: float, c0s: Sequence[float], w_var: float, b_var: float, *, width: int, networks: int,
    pairs: int, depth: int, activation: Literal["tanh", "relu"] = "tanh", d_in: int = 100,
    generator: torch.Generator,
) -> np.ndarray:
    """Mean pre-activation correlation ``c^l`` for each first-layer correlation in ``c0s``.

    Args:
        q: the first layer's squared length ``q¹``.
        c0s: first-layer correlations ``c¹``.
        w_var, b_var: ``σ_w²`` and ``σ_b²``.
        width, networks, pairs, depth: hidden width, random networks, input pairs per
            ``c¹``, and pre-activation layers recorded.
        activation: the nonlinearity between layers.
        d_in: input dimension ``d``.
        generator: the source of every random draw (inputs, weights, biases).

    Returns:
        ``(len(c0s), depth)``, float64.
    """
    phi = torch.tanh if activation == "tanh" else torch.relu
    scale = math.sqrt((q - b_var) / w_var * d_in)
    out = np.zeros((len(c0s), depth))
    for _ in range(networks):
        firsts, seconds = [], []
        for c0 in c0s:
            rho = (c0 * q - b_var) / (q - b_var)
            a = torch.randn(pairs, d_in, generator=generator, dtype=torch.float64)
            b = torch.randn(pairs, d_in, generator=generator, dtype=torch.float64)
            a = a / a.norm(dim=1, keepdim=True)
            b = b - (b * a).sum(1, keepdim=True) * a
            b = b / b.norm(dim=1, keepdim=True)
            firsts.append(a)
            seconds.append(rho * a + math.sqrt(1 - rho**2) * b)
        x = torch.cat(firsts + seconds) * scale
        half = len(c0s) * pairs
        z = x @ torch.randn(d_in, width, generator=generator, dtype=torch.float64) * math.sqrt(
            w_var / d_in)
        z = z + math.sqrt(b_var) * torch.randn(width, generator=generator, dtype=torch.float64)
        for layer in range(depth):
            length = (z * z).mean(1)
            c = (z[:half] * z[half:]).mean(1) / (length[:half] * length[half:]).sqrt()
            out[:, layer] += c.reshape(len(c0s), pairs).mean(1).numpy() / networks
            w = torch.randn(width, width, generator=generator, dtype=torch.float64)
            z = phi(z) @ w * math.sqrt(w_var / width) + math.sqrt(b_var) * torch.randn(
                width, generator=generator, dtype=torch.float64)
    return out
