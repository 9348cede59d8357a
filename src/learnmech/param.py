"""Parametrizations as plain data: one :class:`LayerPlan` per weight layer.

A layer ``l`` with weight ``W_l`` (shape ``fan_out × fan_in``) computes
``multiplier_l · W_l h + b_l``; ``W_l`` is drawn from ``N(0, init_std_l²)`` and trained with
learning rate ``lr · lr_mult_l`` (biases: ``lr · bias_lr_mult_l``, initialized at zero).
Nothing is stored on the parameters: the plan is a tuple of frozen dataclasses, so it
survives ``state_dict``, ``deepcopy`` and wrappers.

With ``σ = init_scale``, ``f = fan_in`` and, for μP, the width ratio ``m = n / n_base``
of the layer's hidden side (``m = 1`` at ``base_width``):

================  ===========  ==========  ===================  =================
parametrization   role         init std    multiplier           lr_mult SGD / Adam
================  ===========  ==========  ===================  =================
sp                all          σ/√f        1                    1 / 1
ntp               all          σ           1/√f                 1 / 1
mup               input        σ/√f        1                    m / 1
mup               hidden       σ/√f        1                    1 / 1/m
mup               output       σ/√(f·m)    1                    1/m / 1/m
mf                input        σ/√f        1                    f_out / 1
mf                hidden       σ/√f        1                    1 / 1/f
mf                output       σ           1/f                  f / 1
================  ===========  ==========  ===================  =================

``mup`` is Table 3 of Yang et al. (2022, "Tensor Programs V") written relative to a base
width, so it equals ``sp`` exactly at ``width == base_width``. ``mf`` is the mean-field
scaling (Mei et al. 2018; Chizat & Bach 2018) in absolute units: the readout carries
``1/n`` and learning rates carry the width, i.e. μP with base width 1. Biases of layers
with a hidden fan-out follow the input-layer rule (SGD lr × m); other biases use 1.
The readout's multiplier is further multiplied by ``output_multiplier`` (the richness
knob α of Chizat et al. 2019). A network of depth 1 has both sides finite and is ``sp``
under ``mup``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from learnmech.system import MLP, DeepLinear

Role = Literal["input", "hidden", "output", "readout"]


@dataclass(frozen=True)
class LayerPlan:
    """How one weight layer is initialized, scaled in the forward pass and trained."""

    name: str
    role: Role
    fan_in: int
    fan_out: int
    init_std: float
    multiplier: float
    lr_mult: float
    bias_lr_mult: float


def layer_widths(arch: MLP | DeepLinear, d_in: int, d_out: int) -> list[int]:
    """``[d_in, n_1, ..., n_{L-1}, d_out]`` for the architecture."""
    hidden = arch.hidden if isinstance(arch, DeepLinear) else [arch.width] * (arch.depth - 1)
    return [d_in, *hidden, d_out]


def plan(
    arch: MLP | DeepLinear, d_in: int, d_out: int, optimizer: str = "gd"
) -> tuple[LayerPlan, ...]:
    """The per-layer plan of ``arch`` on data of ``d_in`` inputs and ``d_out`` outputs.

    ``optimizer`` selects the SGD-family or the Adam column of the table above.
    """
    widths = layer_widths(arch, d_in, d_out)
    depth = len(widths) - 1
    adam = optimizer == "adam"
    sigma = arch.init_scale
    layers = []
    for l in range(depth):
        f, f_out = widths[l], widths[l + 1]
        role: Role
        if depth == 1:
            role = "readout"
        else:
            role = "input" if l == 0 else "output" if l == depth - 1 else "hidden"
        base = arch.base_width
        m_in = f / base if (base and role in ("hidden", "output")) else 1.0
        m_out = f_out / base if (base and role in ("input", "hidden")) else 1.0
        std, mult, lr, blr = sigma / math.sqrt(f), 1.0, 1.0, 1.0
        p = arch.parametrization
        if p == "ntp":
            std, mult = sigma, 1.0 / math.sqrt(f)
        elif p == "mup":
            if role == "input":
                lr = 1.0 if adam else m_out
            elif role == "hidden":
                lr = 1.0 / m_in if adam else 1.0
            elif role == "output":
                std, lr = sigma / math.sqrt(f * m_in), 1.0 / m_in
            blr = 1.0 if adam else m_out
        elif p == "mf":
            if role == "input":
                lr = 1.0 if adam else float(f_out)
            elif role == "hidden":
                lr = 1.0 / f if adam else 1.0
            elif role == "output":
                std, mult, lr = sigma, 1.0 / f, 1.0 if adam else float(f)
            blr = 1.0 if adam or role in ("output", "readout") else float(f_out)
        if role in ("output", "readout"):
            mult *= arch.output_multiplier
        layers.append(LayerPlan(f"layers.{l}", role, f, f_out, std, mult, lr, blr))
    return tuple(layers)
