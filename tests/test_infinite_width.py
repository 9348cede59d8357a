"""Infinite-width kernels of conv, pooling, residual and LayerNorm networks against
independent references: Monte-Carlo kernels of wide random torch networks (with error
bars), the empirical NTK of wide finite networks, and the fully connected recursion of
:func:`learnmech.theory.kernels.analytic_kernels` (a second implementation) for Dense."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from learnmech.errors import InputError
from learnmech.models.resmlp import ResMLP
from learnmech.probes.ntk import empirical_ntk
from learnmech.theory.infinite_width import (
    ActivationLayer,
    Conv,
    Dense,
    Flatten,
    GlobalAvgPool,
    LayerNorm,
    infinite_width_kernels,
    network_kernels,
)
from learnmech.theory.kernels import analytic_kernels

W_STD, B_STD = 1.4, 0.1


@pytest.fixture(autouse=True)
def _float64() -> None:
    torch.manual_seed(0)


def _init(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Weights ``N(0, σ_w²/fan_in)``, biases ``N(0, σ_b²)``, float64."""
    model = model.double()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, W_STD / math.sqrt(fan_in), generator=generator)
                if m.bias is not None:
                    m.bias.normal_(0.0, B_STD, generator=generator)
    return model


def _monte_carlo(make: Callable[[], nn.Module], x: torch.Tensor, inits: int
                 ) -> tuple[torch.Tensor, torch.Tensor, nn.Module]:
    """Mean and standard error over ``inits`` random networks of the output covariance
    given the hidden features ``h`` (the readout's input, fan-in ``n``): ``E[f fᵀ | h] =
    σ_w² h hᵀ/n + σ_b²``, the readout's own randomness averaged exactly."""
    gen = torch.Generator().manual_seed(1)
    estimates = []
    with torch.no_grad():
        for _ in range(inits):
            model = _init(make(), gen)
            readout = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
            seen: list[torch.Tensor] = []
            hook = readout.register_forward_hook(
                lambda m, args, out, seen=seen: seen.append(args[0]))
            model(x)
            hook.remove()
            h = seen[0]
            estimates.append(W_STD**2 * h @ h.T / h.shape[1] + B_STD**2)
    k = torch.stack(estimates)
    return k.mean(0), k.std(0) / math.sqrt(inits), model


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "gelu"])
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_dense_layers_are_the_fully_connected_recursion(activation: str,
                                                        parameterization: str) -> None:
    x1, x2 = torch.randn(5, 7, dtype=torch.float64), torch.randn(3, 7, dtype=torch.float64)
    ref = analytic_kernels(x1, x2, depth=3, activation=activation, w_std=W_STD, b_std=B_STD,
                           parameterization=parameterization, width=32)
    p = parameterization
    layers = [Dense(32, W_STD, B_STD, p), ActivationLayer(activation),
              Dense(32, W_STD, B_STD, p), ActivationLayer(activation), Dense(1, W_STD, B_STD, p)]
    got = network_kernels(layers, x1, x2)
    torch.testing.assert_close(got.nngp, ref.nngp, rtol=1e-12, atol=0)
    torch.testing.assert_close(got.ntk, ref.ntk, rtol=1e-12, atol=0)


def test_one_by_one_convolution_is_a_dense_layer() -> None:
    x = torch.randn(6, 5, dtype=torch.float64)
    conv = [Conv(16, 1, w_std=W_STD, b_std=B_STD), ActivationLayer("relu"), Flatten(),
            Dense(1, W_STD, B_STD)]
    dense = [Dense(16, W_STD, B_STD), ActivationLayer("relu"), Dense(1, W_STD, B_STD)]
    a = network_kernels(conv, x[:, :, None, None])  # 1×1 images
    b = network_kernels(dense, x)
    torch.testing.assert_close(a.nngp, b.nngp, rtol=1e-13, atol=0)
    torch.testing.assert_close(a.ntk, b.ntk, rtol=1e-13, atol=0)
    # a 3-wide 'same' filter on 1×1 images sees the centre tap only: σ_w²/3 per dimension
    wide = network_kernels([Conv(16, 3, w_std=W_STD * 3), GlobalAvgPool(), Dense(1)],
                           x[:, :, None, None])
    plain = network_kernels([Dense(16, W_STD), Dense(1)], x)
    torch.testing.assert_close(wide.nngp, plain.nngp, rtol=1e-13, atol=0)


C = 384  # channels of the Monte-Carlo networks: the finite-width bias is O(1/C)


def _conv1d() -> nn.Module:
    return nn.Sequential(nn.Conv1d(2, C, 3, padding=1), nn.ReLU(),
                         nn.Conv1d(C, C, 3, stride=2), nn.Tanh(),
                         nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(C, 32))


def _conv2d_circular_pool() -> nn.Module:
    return nn.Sequential(nn.Conv2d(2, C, 3, padding=1, padding_mode="circular"), nn.GELU(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(C * 4, 32))


def _conv2d_layernorm() -> nn.Module:
    return nn.Sequential(nn.Conv2d(2, C, 3, padding="same"), nn.LayerNorm([C, 4, 4]),
                         nn.Tanh(), nn.Conv2d(C, C, 2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(C * 9, 32))


def _resmlp() -> nn.Module:
    return ResMLP(6, 32, 2 * C, depth=2, activation="relu", branch_multiplier=0.7)


@pytest.mark.parametrize("make", [_conv1d, _conv2d_circular_pool, _conv2d_layernorm, _resmlp])
def test_nngp_matches_monte_carlo_of_wide_networks(make: Callable[[], nn.Module]) -> None:
    torch.set_num_threads(1)
    model = make()
    if isinstance(model, ResMLP):
        x = torch.randn(4, 6, dtype=torch.float64)
    elif isinstance(model[0], nn.Conv1d):
        x = torch.randn(4, 2, 6, dtype=torch.float64)
    else:
        x = torch.randn(4, 2, 4, 4, dtype=torch.float64)
    mc, se, last = _monte_carlo(make, x, inits=40)
    theory = infinite_width_kernels(last, x, w_std=W_STD, b_std=B_STD).nngp
    z = ((mc - theory).abs() / (se + 1e-12)).max()
    # a 4σ band, plus the O(1/C) finite-width bias (1/C ≈ 0.3 % of the scale)
    bias = 2.0 / C * theory.abs().max()
    assert ((mc - theory).abs() <= 4 * se + bias).all(), (float(z), mc, theory)
    # and it resolves: a 10 % change of σ_w² in one layer would be seen
    assert (0.1 * theory.abs() > 4 * se + bias).any()


def test_ntk_matches_the_empirical_ntk_of_wide_networks() -> None:
    """The standard-parametrization NTK of a conv net at its widths: the empirical NTK
    approaches it as the channels grow (relative error falling like C^-½)."""
    torch.set_num_threads(1)
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    gen = torch.Generator().manual_seed(2)
    errors = []
    for channels in (32, 512):
        def make(c: int = channels) -> nn.Module:
            return nn.Sequential(nn.Conv2d(2, c, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(c * 16, 1))
        errs = []
        for _ in range(3):
            model = _init(make(), gen)
            theory = infinite_width_kernels(model, x, w_std=W_STD, b_std=B_STD).ntk
            emp = empirical_ntk(model, x, outputs="trace")
            errs.append(float((emp.detach() - theory).norm() / theory.norm()))
        errors.append(sum(errs) / len(errs))
    assert errors[1] < 0.06, errors
    assert errors[1] < errors[0] / 2, errors  # 16× the channels: about 4× smaller


def test_layer_norm_and_residual_ntk_match_the_empirical_ntk() -> None:
    torch.set_num_threads(1)
    x = torch.randn(3, 6, dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    errs = []
    for _ in range(3):
        model = _init(nn.Sequential(nn.Linear(6, 1024), nn.LayerNorm(1024), nn.Tanh(),
                                    nn.Linear(1024, 1)), gen)
        theory = infinite_width_kernels(model, x, w_std=W_STD, b_std=B_STD).ntk
        emp = empirical_ntk(model, x, outputs="trace")
        errs.append(float((emp - theory).norm() / theory.norm()))
    assert sum(errs) / 3 < 0.05, errs


def test_unsupported_modules_and_budgets_are_named() -> None:
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(InputError, match=r"\.1.*BatchNorm2d"):
        infinite_width_kernels(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)), x)
    with pytest.raises(InputError, match="LayerNorm"):  # centring after ReLU is not tracked
        network_kernels([Dense(8), ActivationLayer("relu"), LayerNorm(), Dense(1)],
                        torch.randn(3, 4))
    with pytest.raises(InputError, match="max_memory"):
        network_kernels([Conv(8), GlobalAvgPool(), Dense(1)], torch.randn(50, 1, 16, 16),
                        max_memory=1e6)
    with pytest.raises(InputError, match="Flatten or GlobalAvgPool"):
        network_kernels([Conv(8), Dense(1)], x)

