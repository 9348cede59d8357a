"""Parametrization plans: the table's formulas and the weights they produce."""

from __future__ import annotations

import math

import pytest
import torch

from learnmech.models import build_model
from learnmech.param import plan
from learnmech.system import MLP


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_mup_equals_sp_at_base_width(optimizer):
    sp = plan(MLP(width=64, depth=3, parametrization="sp"), 10, 3, optimizer)
    mup = plan(MLP(width=64, depth=3, parametrization="mup", base_width=64), 10, 3, optimizer)
    assert sp == mup


def test_mup_scales_with_width_as_tensor_programs_table_3():
    """Relative to the base width: readout variance ∝ 1/(fan_in·m), SGD lrs m, 1, 1/m;
    Adam lrs 1, 1/m, 1/m."""
    base = MLP(width=32, depth=3, parametrization="mup", base_width=32)
    wide = base.model_copy(update={"width": 256})
    m = 256 / 32
    for optimizer, expected in (("gd", (m, 1.0, 1 / m)), ("adam", (1.0, 1 / m, 1 / m))):
        p0, p1 = plan(base, 10, 3, optimizer), plan(wide, 10, 3, optimizer)
        assert [p.lr_mult for p in p1] == pytest.approx(expected)
        assert [p.lr_mult for p in p0] == pytest.approx([1.0, 1.0, 1.0])
    out0, out1 = plan(base, 10, 3)[-1], plan(wide, 10, 3)[-1]
    assert (out1.init_std / out0.init_std) ** 2 == pytest.approx(1 / m**2)  # ∝ 1/fan_in²
    hid0, hid1 = plan(base, 10, 3)[1], plan(wide, 10, 3)[1]
    assert (hid1.init_std / hid0.init_std) ** 2 == pytest.approx(1 / m)  # ∝ 1/fan_in


def test_ntp_and_mf_effective_scales():
    ntp = plan(MLP(width=100, depth=2, parametrization="ntp", init_scale=2.0), 9, 1)
    assert [p.init_std for p in ntp] == [2.0, 2.0]
    assert [p.multiplier for p in ntp] == pytest.approx([1 / 3, 1 / 10])
    mf = plan(MLP(width=100, depth=2, parametrization="mf", output_multiplier=5.0), 9, 1)
    assert mf[-1].multiplier == pytest.approx(5.0 / 100)
    assert [p.lr_mult for p in mf] == [100.0, 100.0]


@pytest.mark.parametrize("parametrization", ["sp", "ntp", "mup", "mf"])
def test_sampled_weights_have_the_planned_std(parametrization):
    arch = MLP(width=400, depth=3, parametrization=parametrization, init_scale=1.5, base_width=50)
    net, layer_plan = build_model(arch, 300, 200, generator=torch.Generator().manual_seed(0))
    for p, layer in zip(layer_plan, net.layers):
        w = layer.weight.detach()
        assert w.shape == (p.fan_out, p.fan_in)
        n = w.numel()
        # sample std of n Gaussians: relative standard error ≈ 1/sqrt(2n)
        assert float(w.std()) == pytest.approx(p.init_std, rel=6 / math.sqrt(2 * n))
        assert float(w.mean()) == pytest.approx(0.0, abs=6 * p.init_std / math.sqrt(n))
