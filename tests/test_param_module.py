"""Parametrizations of any nn.Module: roles, Table 3 scalings, the abc symmetry, wrappers."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from learnmech.errors import InputError
from learnmech.models import build_model, char_transformer, res_mlp
from learnmech.param import DepthScaling, attention_scale, parametrize, parametrized
from learnmech.system import MLP, LearningRule
from learnmech.train import make_optimizer

WIDTHS = [64, 128, 256, 512]


def mlp(width: int, d_in: int = 20, d_out: int = 5) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, d_out))


def slope(xs, ys) -> float:
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_mup_equals_sp_at_base_width_on_a_transformer(optimizer):
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    mup, p_mup = char_transformer(11, 8, 32, parametrization="mup", optimizer=optimizer,
                                  base_width=32, generator=gen())
    sp, p_sp = char_transformer(11, 8, 32, parametrization="sp", optimizer=optimizer,
                                generator=gen())
    assert [(p.init_std, p.lr_mult, p.init) for p in p_mup] == [
        (p.init_std, p.lr_mult, p.init) for p in p_sp]
    # and the same function trained the same way: identical trajectories
    tokens = torch.randint(11, (4, 8), generator=torch.Generator().manual_seed(0))
    opt_mup, opt_sp = p_mup.make_optimizer(mup, 0.01), p_sp.make_optimizer(sp, 0.01)
    for _ in range(3):
        for model, opt in ((mup, opt_mup), (sp, opt_sp)):
            opt.zero_grad()
            model(tokens).logsumexp(-1).mean().backward()
            opt.step()
    assert torch.equal(mup(tokens), sp(tokens))


def test_sp_is_lecun_init_with_one_learning_rate():
    net = mlp(100)
    plan = parametrize(net, "sp", "adam")
    for name, w in net.named_parameters():
        p = plan[name]
        assert p.lr_mult == 1.0
        if w.ndim == 2:
            assert p.init_std == pytest.approx(1 / math.sqrt(w.shape[1]))


def _sampled_std(width: int, parametrization: str, optimizer: str = "sgd") -> dict[str, float]:
    net, _ = parametrized(mlp, width, parametrization, optimizer, base_width=WIDTHS[0],
                          generator=torch.Generator().manual_seed(width))
    return {n: float(w.detach().std()) for n, w in net.named_parameters() if w.ndim == 2}


def test_sampled_init_std_scales_with_width_as_table_3():
    """μP: input var ∝ 1 (fan_in fixed), hidden var ∝ 1/fan_in, output var ∝ 1/fan_in²:
    exponents of the std in width 0, −1/2, −1 — measured on the sampled weights."""
    stds = [_sampled_std(w, "mup") for w in WIDTHS]
    for name, expected in (("0.weight", 0.0), ("2.weight", -0.5), ("4.weight", -1.0)):
        assert slope(WIDTHS, [s[name] for s in stds]) == pytest.approx(expected, abs=0.03)
    sp = [_sampled_std(w, "sp") for w in WIDTHS]
    assert slope(WIDTHS, [s["4.weight"] for s in sp]) == pytest.approx(-0.5, abs=0.03)


@pytest.mark.parametrize(
    ("optimizer", "expected"),
    [("sgd", {"0.weight": 1, "0.bias": 1, "2.weight": 0, "2.bias": 1, "4.weight": -1,
              "4.bias": 0}),
     ("adam", {"0.weight": 0, "0.bias": 0, "2.weight": -1, "2.bias": 0, "4.weight": -1,
               "4.bias": 0})],
)
def test_per_group_learning_rates_scale_as_table_3(optimizer, expected):
    """SGD: input and biases ∝ fan_out, hidden 1, output 1/fan_in; Adam: input 1,
    hidden and output 1/fan_in. Read from the torch optimizer's parameter groups."""
    lrs: dict[str, list[float]] = {}
    for width in WIDTHS:
        net, plan = parametrized(mlp, width, "mup", optimizer, base_width=WIDTHS[0])
        for group in plan.make_optimizer(net, 0.1).param_groups:
            for name in group["names"]:
                lrs.setdefault(name, []).append(group["lr"])
    for name, exponent in expected.items():
        assert slope(WIDTHS, lrs[name]) == pytest.approx(exponent, abs=1e-9)
        assert lrs[name][0] == pytest.approx(0.1)  # base width: the SP learning rate


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_spectral_condition_at_init_and_after_one_step(optimizer):
    """Yang, Simon & Bernstein 2023: ‖W‖₂ and ‖ΔW‖₂ both Θ(√(fan_out/fan_in)). At init,
    ‖W‖₂ of a Gaussian matrix lies between std·√max(fan_out, fan_in) and
    std·(√fan_out + √fan_in) (Gordon), which is Θ(√(fan_out/fan_in)) under μP;
    after one real step ‖ΔW‖₂/‖W‖₂ must not scale with width (exponent 0 ± 0.15)."""
    x = torch.randn(64, 20, generator=torch.Generator().manual_seed(0))
    y = torch.randint(5, (64,), generator=torch.Generator().manual_seed(1))
    ratios: dict[str, list[float]] = {}
    for width in WIDTHS:
        net, plan = parametrized(mlp, width, "mup", optimizer, base_width=WIDTHS[0],
                                 generator=torch.Generator().manual_seed(0))
        before = {n: w.detach().clone() for n, w in net.named_parameters() if w.ndim == 2}
        for n, w in before.items():
            norm, std = float(torch.linalg.matrix_norm(w, 2)), plan[n].init_std
            assert norm <= 1.05 * std * (math.sqrt(w.shape[0]) + math.sqrt(w.shape[1]))
            assert norm >= 0.95 * std * math.sqrt(max(w.shape))
        opt = plan.make_optimizer(net, 0.05)
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        for n, w in net.named_parameters():
            if w.ndim == 2:
                dw = float(torch.linalg.matrix_norm(w.detach() - before[n], 2))
                ratios.setdefault(n, []).append(dw / float(torch.linalg.matrix_norm(before[n], 2)))
    for name in ("0.weight", "2.weight", "4.weight"):
        assert slope(WIDTHS, ratios[name]) == pytest.approx(0.0, abs=0.15)


@pytest.mark.parametrize(("parametrization", "optimizer"),
                         [("mf", "gd"), ("ntp", "gd"), ("mup", "gd"), ("mf", "adam")])
def test_absorbed_plan_trains_like_the_multiplier_network(parametrization, optimizer):
    """The abc symmetry: the System's Network keeps forward multipliers; parametrize() on a
    plain nn.Sequential absorbs them into init and learning rates. Same noise, same data:
    the two functions must agree at every step."""
    arch = MLP(width=48, depth=3, parametrization=parametrization, base_width=16,
               output_multiplier=2.0, bias=False)
    rule = LearningRule(optimizer=optimizer, lr=0.05 if optimizer == "gd" else 0.003,
                        steps=5, eps=1e-12)
    net, layer_plan = build_model(arch, 7, 3, optimizer, torch.Generator().manual_seed(0))
    net = net.double()

    def seq(width: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(7, width, bias=False), nn.ReLU(),
                             nn.Linear(width, width, bias=False), nn.ReLU(),
                             nn.Linear(width, 3, bias=False))

    base, delta = seq(16), seq(32)
    plain = seq(48).double()
    plan = parametrize(plain, parametrization, optimizer, base=base, delta=delta,
                       output_multiplier=2.0)
    with torch.no_grad():
        for p, a, b in zip(layer_plan, net.layers, plain[::2], strict=True):
            b.weight.copy_(a.weight * p.multiplier)
    opt_net = make_optimizer(net, layer_plan, rule)
    opt_plain = plan.make_optimizer(plain, rule.lr, eps=rule.eps)
    x = torch.randn(32, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.randn(32, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for _ in range(rule.steps):
        for model, opt in ((net, opt_net), (plain, opt_plain)):
            opt.zero_grad()
            (0.5 * (model(x) - y).pow(2).sum() / 32).backward()
            opt.step()
        torch.testing.assert_close(plain(x), net(x), rtol=1e-6, atol=1e-9)


def test_roles_are_inferred_from_module_types_and_shapes():
    _, plan = char_transformer(13, 8, 64, depth=1, base_width=32)
    roles = {p.name: p.role for p in plan}
    assert roles["token.weight"] == roles["position.weight"] == "embedding"
    assert roles["blocks.0.attn.query.weight"] == "attention"
    assert roles["blocks.0.mlp.fc.weight"] == "hidden"
    assert roles["blocks.0.mlp.fc.bias"] == "bias"
    assert roles["blocks.0.ln1.weight"] == "norm"
    assert roles["readout.weight"] == "output"
    assert plan["blocks.0.ln1.weight"].init == "ones"
    assert plan["blocks.0.attn.query.weight"].init == "zeros"
    # without a base: structure decides (first layer input, last layer output)
    structural = parametrize(mlp(64), "mf", "sgd")
    assert structural["0.weight"].role == "input"
    assert structural["2.weight"].role == "hidden"
    assert structural["4.weight"].role == "output"
    assert structural["4.weight"].lr_mult == pytest.approx(1 / 64)  # mf readout, absorbed


def test_role_override_changes_the_rule_and_bad_roles_are_rejected():
    net = mlp(256)
    base = mlp(64)
    plan = parametrize(net, "mup", "adam", base=base, roles={"4.weight": "fixed"})
    assert plan["4.weight"].role == "fixed"
    assert plan["4.weight"].lr_mult == 1.0
    assert plan["4.weight"].init_std == pytest.approx(1 / math.sqrt(256))
    with pytest.raises(InputError, match="roles"):
        parametrize(net, "mup", "adam", roles={"4.weight": "readin"})
    with pytest.raises(InputError, match="base"):
        parametrize(net, "mup", "adam", base=nn.Sequential(nn.Linear(20, 64)))
    with pytest.raises(InputError, match="parametrization"):
        parametrize(net, "mu", "adam")


def test_plan_survives_copies_state_dicts_compile_and_wrappers():
    net, plan = parametrized(mlp, 128, "mup", "adam", base_width=32)
    again = pickle.loads(pickle.dumps(plan))
    assert again == plan
    twin = copy.deepcopy(net)
    fresh = mlp(128)
    fresh.load_state_dict(net.state_dict())
    base, delta = mlp(32), mlp(64)
    for model in (twin, fresh, torch.compile(net), nn.DataParallel(net)):
        assert parametrize(model, "mup", "adam", base=base, delta=delta) == plan
        groups = plan.param_groups(model, 1e-3)
        assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))
        lrs = {n: g["lr"] for g in groups for n in g["names"]}
        assert lrs["2.weight"] == pytest.approx(1e-3 / 4)


def test_depth_scaling_rules():
    for rule, alpha in (("depth-mup", 0.5), ("completep", 1.0)):
        d = DepthScaling(rule, depth=16, base_depth=4)
        assert d.branch_multiplier == pytest.approx(4.0**-alpha)
        assert d.lr_mult(adam=True) == pytest.approx(4.0 ** (alpha - 1))
        assert d.lr_mult(adam=False) == pytest.approx(4.0 ** (2 * alpha - 1))
    model, plan = res_mlp(10, 3, 64, 8, "mup", "adam", base_width=64, depth_rule="completep",
                          base_depth=2)
    assert model.branch_multiplier == pytest.approx(2 / 8)
    assert plan["blocks.3.weight"].eps_mult == pytest.approx(2 / 8)
    assert plan["blocks.3.weight"].lr_mult == pytest.approx(1.0)  # CompleteP, Adam
    assert plan["input.weight"].eps_mult == 1.0
    _, dmup = res_mlp(10, 3, 64, 8, "mup", "adam", base_width=64, depth_rule="depth-mup",
                      base_depth=2)
    assert dmup["blocks.3.weight"].lr_mult == pytest.approx(0.5)  # (8/2)^(−1/2)
    assert dmup["readout.weight"].lr_mult == 1.0
    with pytest.raises(InputError):
        DepthScaling("depth-sp", depth=4)  # type: ignore[arg-type]


def test_attention_scale_is_one_over_d_under_mup():
    assert attention_scale("mup", 64, 64) == pytest.approx(1 / 8)  # = SP at the base
    ds = [64, 128, 256, 512]
    assert slope(ds, [attention_scale("mup", d, 64) for d in ds]) == pytest.approx(-1.0)
    assert slope(ds, [attention_scale("sp", d) for d in ds]) == pytest.approx(-0.5)
    assert attention_scale("mf", 32) == pytest.approx(1 / 32)
