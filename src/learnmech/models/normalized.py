"""A two-layer network whose hidden layer feeds a batch normalization.

``f(x) = W₂ relu(BN(W₁ x)) + b₂`` with ``BN(z)_i = (z_i − mean_batch z_i) /
√(var_batch z_i + ε)`` and no affine parameters. Each row ``w_i`` of ``W₁`` is then a
scale-invariant direction: ``f`` is unchanged when ``w_i`` is multiplied by any ``α > 0``
(exactly when ``ε = 0``), which is the symmetry behind the norm law of
:mod:`learnmech.theory.symmetry`. Shapes: ``x`` ``(batch, d_in)``, ``f(x)`` ``(batch, d_out)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn


class BatchNormMLP(nn.Module):
    """``x -> W₂ relu(BN(W₁ x)) + b₂`` (LeCun-initialized, float32 until cast).

    Args:
        d_in, width, d_out: layer sizes.
        eps: the normalization's ε (it breaks the scale invariance by ``O(ε/var)``).
        generator: draws the initial weights.
    """

    def __init__(self, d_in: int, width: int, d_out: int, eps: float = 1e-10,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.hidden = nn.Linear(d_in, width, bias=False)
        self.readout = nn.Linear(width, d_out)
        self.eps = eps
        with torch.no_grad():
            for layer in (self.hidden, self.readout):
                std = 1.0 / math.sqrt(layer.in_features)
                layer.weight.copy_(std * torch.randn(layer.weight.shape, generator=generator))
            self.readout.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        z = self.hidden(x)
        z = z - z.mean(0)
        z = z / torch.sqrt(z.pow(2).mean(0) + self.eps)
        return self.readout(torch.relu(z))


@dataclass
class NormalizedRun:
    """Squared row norms over a GD run of :class:`BatchNormMLP` and the squared norms of
    their loss gradients: ``hidden`` ``(K+1, width)`` (rows of ``W₁``, scale-invariant),
    ``hidden_grad`` ``(K, width)``, ``readout`` ``(K+1, d_out)`` (rows of ``W₂``, no
    symmetry) and ``readout_grad`` ``(K, d_out)``; ``lr`` the step ``η``."""

    lr: float
    hidden: np.ndarray
    hidden_grad: np.ndarray
    readout: np.ndarray
    readout_grad: np.ndarray


def train_normalized_gd(x: Tensor, y: Tensor, width: int, lr: float, steps: int,
                        seed: int = 0) -> NormalizedRun:
    """Full-batch GD in float64 on ``L = ‖f(x) − y‖² / (2n)`` for :class:`BatchNormMLP` of
    ``width`` hidden units (initialized from ``seed``), ``x`` ``(n, d_in)``, ``y``
    ``(n, d_out)``, recording every step: ``θ_{k+1} = θ_k − η ∇L(θ_k)``, ``k < steps``."""
    x, y = x.double(), y.double()
    model = BatchNormMLP(x.shape[1], width, y.shape[1],
                         generator=torch.Generator().manual_seed(seed)).double()
    rows: dict[str, list[np.ndarray]] = {"h": [], "hg": [], "r": [], "rg": []}

    def norms() -> None:
        rows["h"].append(model.hidden.weight.detach().pow(2).sum(1).numpy().copy())
        rows["r"].append(model.readout.weight.detach().pow(2).sum(1).numpy().copy())

    norms()
    params = [model.hidden.weight, model.readout.weight, model.readout.bias]
    for _ in range(steps):
        loss = 0.5 * (model(x) - y).pow(2).sum() / x.shape[0]
        grads = torch.autograd.grad(loss, params)
        rows["hg"].append(grads[0].pow(2).sum(1).numpy().copy())
        rows["rg"].append(grads[1].pow(2).sum(1).numpy().copy())
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p.sub_(lr * g)
        norms()
    return NormalizedRun(lr, *(np.stack(rows[k]) for k in ("h", "hg", "r", "rg")))
