"""The neural feature ansatz for deep linear networks (Radhakrishnan et al. 2024).

For ``f(x) = W_L ⋯ W_1 x`` the input Jacobian is constant, ``J = W_L ⋯ W_1`` ``(k, d)``, so
the AGOP is ``JᵀJ = W_1ᵀ ⋯ W_Lᵀ W_L ⋯ W_1``. Gradient flow conserves
``W_{l+1}ᵀW_{l+1} − W_l W_lᵀ``; from a small initialization it is ≈ 0 (balanced layers),
and then ``W_Lᵀ W_L ⋯`` telescopes: ``AGOP = (W_1ᵀW_1)^L``. Hence

    W_1ᵀW_1 = AGOP^{1/L},

the ansatz with exponent ``α = 1/L`` (1/2 for two layers); the ansatz as first stated,
``W_1ᵀW_1 ∝ AGOP``, is the exponent 1.
"""

from __future__ import annotations

from learnmech.errors import InputError


def feature_exponent(depth: int) -> float:
    """``α = 1/L``: the power of the AGOP that ``W_1ᵀW_1`` equals for balanced depth-``L``
    linear networks."""
    if depth < 1:
        raise InputError("depth", depth, "a number of weight layers ≥ 1")
    return 1.0 / depth
