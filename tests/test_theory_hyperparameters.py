"""The learning-rate exponents of theory.hyperparameters against direct computations: an
Adam (sign) step on random layers, a residual chain's first-order output change through
autograd, and the Hessian of a scalar chain network at the lazy and the rich scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learnmech.theory import hyperparameters as hp

WIDTHS = [64, 128, 256, 512, 1024]


def _exponent(xs, ys) -> float:
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def _sign_step_ratio(kind: str, parametrization: str, n: int, gen: torch.Generator) -> float:
    """‖ΔW‖/‖W‖ after one Adam step ΔW = η_l·sign(δ xᵀ) at base learning rate 1, with the
    layer's init and learning rate in ``parametrization`` (base width 1)."""
    d = k = 10
    mup = parametrization == "mup"
    if kind == "input":
        shape, std, lr = (n, d), 1 / d**0.5, 1.0
    elif kind == "hidden":
        shape, std, lr = (n, n), 1 / n**0.5, 1 / n if mup else 1.0
    else:
        shape, std, lr = (k, n), 1 / n if mup else 1 / n**0.5, 1 / n if mup else 1.0
    w = std * torch.randn(shape, generator=gen, dtype=torch.float64)
    delta = torch.randn(shape[0], generator=gen, dtype=torch.float64)
    x = torch.randn(shape[1], generator=gen, dtype=torch.float64)
    dw = lr * torch.sign(torch.outer(delta, x))
    norm = (lambda m: torch.linalg.matrix_norm(m, 2)) if kind == "hidden" else torch.linalg.norm
    return float(norm(dw) / norm(w))


@pytest.mark.parametrize("parametrization", ["mup", "sp"])
def test_update_exponents_match_a_sign_step_on_random_layers(parametrization):
    gen = torch.Generator().manual_seed(0)
    predicted = hp.adam_update_exponents(parametrization)
    for kind in hp.LAYERS:
        ratios = [_sign_step_ratio(kind, parametrization, n, gen) for n in WIDTHS]
        assert _exponent(WIDTHS, ratios) == pytest.approx(predicted[kind], abs=0.05), kind


def test_width_exponents_of_the_optimum():
    assert hp.optimal_lr_width_exponent("mup") == 0.0
    assert hp.optimal_lr_width_exponent("sp") == -1.0
    with pytest.raises(ValueError):
        hp.optimal_lr_width_exponent("ntp")  # type: ignore[arg-type]


def _residual_output_change(depth: int, rule: str, eta: float = 1e-8) -> float:
    """‖f_after − f_before‖ of a linear residual chain f = u·h_L, h_l = h_{l−1} + β W_l
    h_{l−1} (W_l = 0 at init), after one sign step on every branch at branch learning
    rate η·β (depth-μP) or η (no scaling), to first order in η."""
    gen = torch.Generator().manual_seed(1)
    n = 32
    beta = hp.depth_mup_branch_multiplier(depth) if rule == "depth-mup" else 1.0
    ws = [torch.zeros(n, n, dtype=torch.float64, requires_grad=True) for _ in range(depth)]
    h0 = torch.randn(n, generator=gen, dtype=torch.float64)
    u = torch.randn(n, generator=gen, dtype=torch.float64)

    def forward(weights):
        h = h0
        for w in weights:
            h = h + beta * (w @ h)
        return u @ h

    before = forward(ws)
    before.backward()
    with torch.no_grad():
        lr = eta * beta if rule == "depth-mup" else eta
        stepped = [w - lr * torch.sign(w.grad) for w in ws]
        return float(abs(forward(stepped) - before) / eta)


@pytest.mark.parametrize("rule", ["depth-mup", "none"])
def test_residual_update_size_matches_autograd(rule):
    depths = [1, 2, 4, 8]
    measured = np.array([_residual_output_change(L, rule) for L in depths])
    predicted = np.array([hp.residual_update_size(L, rule) for L in depths])
    np.testing.assert_allclose(measured / measured[0], predicted / predicted[0], rtol=1e-3)
    slope = float(np.polyfit(np.log2(depths), np.log2(measured), 1)[0])
    assert -slope == pytest.approx(hp.optimal_lr_depth_exponent(rule), abs=1e-3)


def test_branch_multiplier():
    assert hp.depth_mup_branch_multiplier(4) == pytest.approx(0.5)
    assert hp.depth_mup_branch_multiplier(8, base_depth=2) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        hp.depth_mup_branch_multiplier(0)


def _chain_curvature(gamma: float, depth: int, rich: bool) -> float:
    """Top Hessian eigenvalue of ½(f − 1)², f = w_L⋯w_1/γ (x = 1), at weights 1 (lazy, at
    init) or γ^{1/L} each (rich: the fit f = 1)."""
    scale = gamma ** (1 / depth) if rich else 1.0
    w0 = torch.full((depth,), scale, dtype=torch.float64)
    hess = torch.autograd.functional.hessian(
        lambda w: 0.5 * (torch.prod(w) / gamma - 1.0) ** 2, w0)
    return float(torch.linalg.eigvalsh(hess)[-1])


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_richness_exponents_are_the_inverse_curvature(depth):
    small, large = [2.0**-k for k in range(4, 8)], [2.0**k for k in range(4, 8)]
    lazy = _exponent(small, [_chain_curvature(g, depth, rich=False) for g in small])
    rich = _exponent(large, [_chain_curvature(g, depth, rich=True) for g in large])
    assert -lazy == pytest.approx(hp.richness_lr_exponent("lazy", depth), abs=0.02)
    assert -rich == pytest.approx(hp.richness_lr_exponent("rich", depth), abs=1e-6)
