"""A residual MLP: the network behind depth-μP and CompleteP.

``h_0 = W_in x``, ``h_l = h_{l−1} + β · W_l φ(h_{l−1})`` for ``l = 1 … L`` and
``f(x) = W_out φ(h_L)``, with ``β`` the branch multiplier (1 for a plain ResNet,
``(L₀/L)^α`` under depth scaling, see :class:`learnmech.param.DepthScaling`). Shapes:
``x`` is ``(batch, d_in)``, ``f(x)`` is ``(batch, d_out)``. Parameters are named ``input.*``,
``blocks.<l>.*`` (the residual branches) and ``readout.*``.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor, nn

from learnmech.models.network import activation_fn
from learnmech.param import DepthRule, DepthScaling, ModulePlan, branch_multiplier, parametrized


class ResMLP(nn.Module):
    """Residual MLP of ``depth`` one-layer branches of size ``width``.

    Args:
        d_in, d_out: input and output sizes.
        width: the residual stream's size ``n``.
        depth: the number of residual branches ``L`` (0: a two-layer MLP).
        activation: the nonlinearity φ's name.
        branch_multiplier: β, the factor on every branch.
        bias: whether layers carry biases.
    """

    def __init__(
        self, d_in: int, d_out: int, width: int, depth: int, activation: str = "relu",
        branch_multiplier: float = 1.0, bias: bool = True,
    ) -> None:
        super().__init__()
        self.input = nn.Linear(d_in, width, bias=bias)
        self.blocks = nn.ModuleList(nn.Linear(width, width, bias=bias) for _ in range(depth))
        self.readout = nn.Linear(width, d_out, bias=bias)
        self.branch_multiplier = float(branch_multiplier)
        self.activation = activation
        self._phi = activation_fn(activation)

    def forward(self, x: Tensor) -> Tensor:
        h = self.input(x)
        for block in self.blocks:
            h = h + self.branch_multiplier * block(self._phi(h))
        return self.readout(self._phi(h))


def res_mlp(
    d_in: int, d_out: int, width: int, depth: int, parametrization: str = "mup",
    optimizer: str = "adam", *, base_width: int | None = None, depth_rule: str | None = None,
    base_depth: int = 1, activation: str = "relu", generator: torch.Generator | None = None,
    **options: Any,
) -> tuple[ResMLP, ModulePlan]:
    """A :class:`ResMLP` parametrized and initialized: ``parametrization`` across width
    (relative to ``base_width``) and, with ``depth_rule`` (``depth-mup`` or ``completep``),
    across depth relative to ``base_depth``. ``options`` go to
    :func:`learnmech.param.parametrize`."""
    scaling = (DepthScaling(cast(DepthRule, depth_rule), depth, base_depth)
               if depth_rule else None)
    beta = branch_multiplier(scaling)

    def factory(n: int) -> ResMLP:
        return ResMLP(d_in, d_out, n, depth, activation, beta)

    model, plan = parametrized(factory, width, parametrization, optimizer, base_width=base_width,
                               generator=generator, depth=scaling, **options)
    return cast(ResMLP, model), plan
