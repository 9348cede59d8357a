"""A two-layer network whose hidden layer feeds a batch normalization.

``f(x) = W₂ relu(BN(W₁ x)) + b₂`` with ``BN(z)_i = (z_i − mean_batch z_i) /
√(var_batch z_i + ε)`` and no affine parameters. Each row ``w_i`` of ``W₁`` is then a
scale-invariant direction: ``f`` is unchanged when ``w_i`` is multiplied by any ``α > 0``
(exactly when ``ε = 0``), which is the symmetry behind the norm law of
:mod:`learnmech.theory.symmetry`. Shapes: ``x`` ``(batch, d_in)``, ``f(x)`` ``(batch, d_out)``.
"""

from __future__ import annotations

import math

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
