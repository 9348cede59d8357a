"""Empirical NTK and movement probes against dense float64 Jacobians from torch.func."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev

from learnmech.errors import InputError
from learnmech.models import build_model
from learnmech.param import plan
from learnmech.probes.features import (
    empirical_nngp,
    hidden_features,
    kernel_alignment,
    kernel_distance,
    relative_change,
)
from learnmech.probes.ntk import empirical_ntk, ntk_eigen, ntk_vector_product, optimizer_weights
from learnmech.system import MLP, LearningRule, System, TeacherStudent
from learnmech.train import Schedule, make_optimizer, train

METHODS = ["structured", "jacobian", "ntvp"]


def _dense(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor, weights=None) -> torch.Tensor:
    """``Σ_p w_p J_p(x1) J_p(x2)ᵀ`` from full Jacobians, shape ``(N1, N2, O, O)``."""
    params = {n: p.detach() for n, p in model.named_parameters()}

    def jac(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return jacrev(lambda p: functional_call(model, p, (x,)))(params)

    j1, j2 = jac(x1), jac(x2)
    out = 0.0
    for n in params:
        a = j1[n].reshape(x1.shape[0], j1[n].shape[1], -1)
        b = j2[n].reshape(x2.shape[0], j2[n].shape[1], -1)
        out = out + (weights or {}).get(n, 1.0) * torch.einsum("iap,jbp->ijab", a, b)
    return out


def _net(parametrization: str, activation: str, bias: bool, d_out: int = 3) -> nn.Module:
    arch = MLP(width=24, depth=3, parametrization=parametrization, activation=activation,
               bias=bias)
    net, _ = build_model(arch, 5, d_out, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # non-zero biases so that their gradients matter
        for layer in net.layers:
            if layer.bias is not None:
                layer.bias.normal_(generator=torch.Generator().manual_seed(1))
    return net.double()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("parametrization", "activation", "bias"),
    [("ntp", "relu", True), ("sp", "tanh", False), ("mf", "gelu", True), ("mup", "erf", True)],
)
def test_network_ntk_matches_dense_jacobians(method, parametrization, activation, bias):
    net = _net(parametrization, activation, bias)
    g = torch.Generator().manual_seed(2)
    x1 = torch.randn(7, 5, generator=g, dtype=torch.float64)
    x2 = torch.randn(4, 5, generator=g, dtype=torch.float64)
    ref = _dense(net, x1, x2)
    full = empirical_ntk(net, x1, x2, method=method)
    assert full.shape == (7, 4, 3, 3)
    assert torch.allclose(full, ref, atol=1e-12, rtol=1e-10)
    trace = empirical_ntk(net, x1, x2, method=method, outputs="trace")
    assert torch.allclose(trace, torch.einsum("ijaa->ij", ref) / 3, atol=1e-12, rtol=1e-10)
    # symmetric case in small blocks
    blocks = empirical_ntk(net, x1, method=method, max_memory=4000)
    assert torch.allclose(blocks, _dense(net, x1, x1), atol=1e-12, rtol=1e-10)


class _Mixed(nn.Module):
    """A model with a LayerNorm, a shared linear layer used twice and a free parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(4, 16)
        self.norm = nn.LayerNorm(16)
        self.shared = nn.Linear(16, 16)
        self.scale = nn.Parameter(torch.tensor(1.3))
        self.out = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.norm(self.inp(x)))
        h = torch.tanh(self.shared(torch.tanh(self.shared(h))))
        return self.scale * self.out(h)


@pytest.mark.parametrize("method", ["auto", "jacobian", "ntvp"])
def test_any_module_matches_dense_jacobians(method: str) -> None:
    torch.manual_seed(3)
    model = _Mixed().double()
    x = torch.randn(6, 4, dtype=torch.float64)
    weights = {"shared.weight": 0.5, "norm.bias": 3.0, "out.weight": 2.0}
    ref = _dense(model, x, x, weights)
    assert torch.allclose(empirical_ntk(model, x, method=method, weights=weights), ref,
                          atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("model", ["network", "mixed"])
def test_symmetric_kernel_in_mirrored_tiles(model: str) -> None:
    """Over 256 inputs the symmetric kernel is computed in tiles on and above the
    diagonal and mirrored below it (with the Jacobian-contracted parameters of a mixed
    model too): against dense Jacobians, both output forms."""
    torch.manual_seed(4)
    net = _net("ntp", "relu", True) if model == "network" else _Mixed().double()
    x = torch.randn(300, 5 if model == "network" else 4, dtype=torch.float64)
    ref = _dense(net, x, x)
    assert torch.allclose(empirical_ntk(net, x), ref, atol=1e-12, rtol=1e-10)
    trace = torch.einsum("ijaa->ij", ref) / ref.shape[-1]
    assert torch.allclose(empirical_ntk(net, x, outputs="trace"), trace, atol=1e-12,
                          rtol=1e-10)


def test_ntk_vector_product_and_eigen() -> None:
    net = _net("ntp", "tanh", True)
    g = torch.Generator().manual_seed(4)
    x1, x2 = torch.randn(5, 5, generator=g, dtype=torch.float64), torch.randn(
        6, 5, generator=g, dtype=torch.float64)
    v = torch.randn(6, 3, generator=g, dtype=torch.float64)
    ref = _dense(net, x1, x2)
    assert torch.allclose(ntk_vector_product(net, x1, x2, v), torch.einsum("ijab,jb->ia", ref, v),
                          atol=1e-12)
    theta = _dense(net, x2, x2)
    evals, evecs = ntk_eigen(theta)
    flat = theta.permute(0, 2, 1, 3).reshape(18, 18)
    assert torch.allclose(flat @ evecs, evecs * evals, atol=1e-10)
    assert bool((evals[:-1] >= evals[1:]).all())


def test_probe_leaves_model_untouched() -> None:
    net = _net("ntp", "relu", True).float()
    net.eval()
    marker = [torch.full_like(p, 7.0) for p in net.parameters()]
    for p, m in zip(net.parameters(), marker, strict=True):
        p.grad = m
    before = [p.detach().clone() for p in net.parameters()]
    theta = empirical_ntk(net, torch.randn(3, 5))
    assert theta.dtype == torch.float32 and not net.training
    for p, m, b in zip(net.parameters(), marker, before, strict=True):
        assert p.grad is m and torch.equal(p, b) and p.requires_grad


def test_optimizer_weights_give_the_gd_kernel() -> None:
    """With the optimizer's per-tensor learning rates, one small GD step moves the outputs
    by −(η/n) Θ_w (f − y): the NTK of the training dynamics (here μP, SGD)."""
    arch = MLP(width=32, depth=3, parametrization="mup", base_width=8, activation="tanh")
    net, layer_plan = build_model(arch, 5, 2, generator=torch.Generator().manual_seed(5))
    net = net.double()
    x = torch.randn(10, 5, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    y = torch.randn(10, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    lr = 1e-6
    opt = make_optimizer(net, layer_plan, LearningRule(optimizer="gd", lr=lr))
    weights = optimizer_weights(net, opt)
    assert weights["layers.0.weight"] == pytest.approx(4.0)  # μP input layer: width ratio
    theta = empirical_ntk(net, x, weights=weights)
    f0 = net(x).detach()
    loss = 0.5 * (net(x) - y).pow(2).sum() / 10
    opt.zero_grad()
    loss.backward()
    opt.step()
    predicted = -(lr / 10) * torch.einsum("ijab,jb->ia", theta, f0 - y)
    assert torch.allclose(net(x).detach() - f0, predicted, rtol=1e-4, atol=1e-14)


def test_kernel_comparisons_and_nngp_sample() -> None:
    k = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    assert kernel_alignment(k, 5 * k) == pytest.approx(1.0)
    assert kernel_distance(k, torch.eye(2)) == pytest.approx(1 - 5 / (15**0.5 * 2**0.5))
    assert relative_change(k, 2 * k) == pytest.approx(1.0)
    arch = MLP(width=16, depth=3, parametrization="ntp", init_scale=1.5)
    net, layer_plan = build_model(arch, 3, 1, generator=torch.Generator().manual_seed(8))
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(9))
    h = hidden_features(net, x)
    assert [t.shape for t in h] == [(4, 16), (4, 16)]
    assert torch.allclose(empirical_nngp(net, layer_plan, x), 1.5**2 * h[1] @ h[1].T / 16)
    assert plan(arch, 3, 1) == layer_plan


def test_movement_probes_on_a_training_run() -> None:
    system = System(
        architecture=MLP(width=32, depth=3, parametrization="ntp"),
        data=TeacherStudent(d_in=4, n_train=32, n_test=8),
        learning_rule=LearningRule(optimizer="gd", lr=0.5, steps=20),
    )
    names = ["outputs", "ntk_change", "feature_movement", "weight_movement"]
    from learnmech.probes import make_probes

    traj = train(system, make_probes(names), Schedule("linear", 3))
    assert traj["ntk_change.relative"].values[0] == 0.0
    assert traj["ntk_change.relative"].values[-1] > 0.0
    assert traj["feature_movement.2"].values[-1] > 0.0
    assert len(traj["weight_movement.0"].values) == 3
    assert len(traj["train_outputs"].values[0]) == 32
    with pytest.raises(InputError, match="outputs"):
        empirical_ntk(traj.model, torch.zeros(2, 4), outputs="diag")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="weights"):
        empirical_ntk(traj.model, torch.zeros(2, 4), weights={"nope": 1.0})
