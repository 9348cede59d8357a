"""Where the optimal learning rate sits as width, depth and richness change.

Every function returns an exponent: ``η* ∝ s^p`` for a setting ``s`` (a width, a depth, a
richness γ), or ``q ∝ width^p`` for an update size ``q``. Pure functions, no training.

* **Width** (Yang et al. 2022, Tensor Programs V). Under Adam the first update of a weight
  matrix is ``ΔW = η·sign(∇W)`` up to Θ(1) factors, whatever the gradient's size. For a
  hidden ``n × n`` layer the gradient is (close to) rank one, ``δ xᵀ``, so
  ``‖ΔW‖₂ = η·n`` while ``‖W‖₂ ≈ 2`` at LeCun init: in the standard parametrization (SP,
  one learning rate) the relative update grows like ``n``, and keeping the change of the
  network's output Θ(1) needs ``η* ∝ 1/n`` (exponent −1). μP scales the hidden and output
  Adam learning rates by ``1/n`` (and the readout init variance by ``1/n²``), which makes
  every relative update Θ(1) and the optimal base learning rate width-independent
  (exponent 0).
* **Depth** (Yang et al. 2023, Tensor Programs VI; Bordelon et al. 2023). A residual
  network ``h_l = h_{l−1} + β W_l φ(h_{l−1})`` of ``L`` one-layer branches trained by Adam
  moves its residual stream by ``Σ_l β·Δ(W_l φ) = L·β·Θ(η_branch)``. Without depth
  scaling (β = 1, one learning rate) this is ``Θ(L η)``, so ``η* ∝ 1/L`` (exponent −1);
  depth-μP sets ``β = √(L₀/L)`` and the branches' Adam learning rate ``η·√(L₀/L)``, which
  makes it ``Θ(η)`` and the optimum depth-independent (exponent 0).
* **Richness** (Atanasov, Meterez, Simon & Pehlevan 2024). With the readout of a
  mean-field network multiplied by ``1/γ``, GD's optimal learning rate follows the inverse
  curvature of the loss in the weights. The Hessian block of one layer is
  ``∝ γ⁻²·Π_{k≠l} s_k²``, ``s_k`` the scale of layer ``k``. Lazy (γ ≪ 1): the weights
  stay at init (``s_k = 1``), so the curvature is ``∝ γ⁻²`` and ``η* ∝ γ²``. Rich
  (γ ≫ 1): to fit Θ(1) targets through the ``1/γ`` readout the product of the ``L``
  layers' scales must reach γ, each ``s_k ∝ γ^{1/L}``; the curvature is then
  ``∝ γ⁻²·γ^{2(L−1)/L} = γ^{−2/L}`` and ``η* ∝ γ^{2/L}``.
"""

from __future__ import annotations

import math
from typing import Literal

WidthParametrization = Literal["mup", "sp"]
DepthRule = Literal["depth-mup", "none"]
Richness = Literal["lazy", "rich"]
LAYERS: tuple[str, ...] = ("input", "hidden", "output")
"""The layer kinds of an MLP whose update exponents :func:`adam_update_exponents` gives."""


def optimal_lr_width_exponent(parametrization: WidthParametrization) -> float:
    """Exponent ``p`` of the Adam-optimal base learning rate ``η* ∝ width^p``: 0 under μP,
    −1 in the standard parametrization (hidden layers' relative update ``∝ η·width``)."""
    if parametrization == "mup":
        return 0.0
    if parametrization == "sp":
        return -1.0
    raise ValueError(f"parametrization {parametrization!r}: one of 'mup', 'sp'")


def adam_update_exponents(parametrization: WidthParametrization) -> dict[str, float]:
    """Exponents ``p`` of ``‖ΔW‖/‖W‖ ∝ width^p`` after an Adam step at a fixed base
    learning rate, per layer kind of an MLP (``input``: ``n × d``, ``hidden``: ``n × n``,
    ``output``: ``k × n``, with ``d, k`` fixed). Spectral norms for the hidden (matrix-like)
    layer, Frobenius norms for the vector-like ones, as the coordinate check measures them.

    With ``ΔW = η_l·sign(∇W)`` (entries ``±η_l``, rank one) and init std ``σ_l``:

    * input: ``‖ΔW‖_F = η√(nd)``, ``‖W‖_F = σ√(nd)`` with ``σ = 1/√d``: exponent 0 in both;
    * hidden: ``‖ΔW‖₂ = η_h n``, ``‖W‖₂ ≈ 2``: SP (``η_h = η``) +1, μP (``η_h = η/n``) 0;
    * output: ``‖ΔW‖_F = η_o√(kn)``, ``‖W‖_F = σ_o√(kn)``: SP (``σ_o = 1/√n``,
      ``η_o = η``) +½, μP (``σ_o ∝ 1/n``, ``η_o = η/n``) 0.
    """
    if parametrization == "mup":
        return {"input": 0.0, "hidden": 0.0, "output": 0.0}
    if parametrization == "sp":
        return {"input": 0.0, "hidden": 1.0, "output": 0.5}
    raise ValueError(f"parametrization {parametrization!r}: one of 'mup', 'sp'")


def depth_mup_branch_multiplier(depth: int, base_depth: int = 1) -> float:
    """Depth-μP's branch multiplier ``β = √(L₀/L)`` (also the factor on the branches' Adam
    learning rate)."""
    if depth < 1 or base_depth < 1:
        raise ValueError("depths must be at least 1")
    return math.sqrt(base_depth / depth)


def residual_update_size(depth: int, rule: DepthRule, base_depth: int = 1) -> float:
    """The change of the residual stream after one Adam step, in units of one branch's
    change at ``β = 1`` and the base learning rate: ``L·β·(η_branch/η) = L`` without depth
    scaling and ``L·(L₀/L) = L₀`` under depth-μP."""
    if rule == "none":
        return float(depth)
    return depth * (base_depth / depth)  # β² = L₀/L, exactly


def optimal_lr_depth_exponent(rule: DepthRule) -> float:
    """Exponent ``p`` of ``η* ∝ L^p`` for a residual net of ``L`` branches trained by Adam:
    the optimum keeps :func:`residual_update_size`·η fixed, so ``p`` is minus the depth
    exponent of that size: 0 under depth-μP, −1 without depth scaling."""
    if rule not in ("depth-mup", "none"):
        raise ValueError(f"depth rule {rule!r}: one of 'depth-mup', 'none'")
    size = residual_update_size(2, rule) / residual_update_size(1, rule)
    return 0.0 - math.log2(size)


def richness_lr_exponent(regime: Richness, depth: int = 2) -> float:
    """Exponent ``p`` of the GD-optimal learning rate ``η* ∝ γ^p`` of a mean-field network of
    ``depth`` weight layers with readout ``×1/γ``: 2 in the lazy regime (γ ≪ 1), ``2/L`` in
    the rich regime (γ ≫ 1)."""
    if depth < 1:
        raise ValueError("depth must be at least 1")
    if regime == "lazy":
        return 2.0
    if regime == "rich":
        return 2.0 / depth
    raise ValueError(f"regime {regime!r}: one of 'lazy', 'rich'")
