"""The Monitor and its theory twins on hand-written models in plain loops.

References: dense float64 Hessians from ``torch.func.hessian``; divergence thresholds found
by running each torch optimizer on a 1-D quadratic; per-example gradients of linear
regression in closed form; Jacobians from ``torch.func.jacrev``; progressive sharpening to
2/η (Cohen et al. 2021) and Adam's adaptive edge (Cohen et al. 2022) as measured facts.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.func import functional_call, hessian, jacrev

from learnmech import Monitor
from learnmech.errors import InputError
from learnmech.twins import NoiseScaleTwin, stability_twin


def half_mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 0.5 * (out - target).pow(2).sum(1).mean()


def digits_mlp(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A tanh MLP (64-32-32-10, weights ×0.5 at init) and 200 digits with one-hot targets."""
    torch.manual_seed(seed)
    x, y = load_digits(return_X_y=True)
    inputs = torch.tensor(x[:200] / 16.0, dtype=torch.float32)
    targets = nn.functional.one_hot(torch.tensor(y[:200]), 10).float()
    model = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                          nn.Linear(32, 10))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    return model, inputs, targets


def train(model: nn.Module, opt: torch.optim.Optimizer, mon: Monitor, x: torch.Tensor,
          y: torch.Tensor, steps: int) -> None:
    for _ in range(steps):
        opt.zero_grad()
        loss = half_mse(model(x), y)
        loss.backward()
        opt.step()
        mon.step((x, y), loss)


def sharpness_ratios(mon: Monitor) -> dict[int, float]:
    f = mon.frame()
    f = f[f.probe == "sharpness"]
    return dict(zip(f.step, f.ratio, strict=True))


def test_gd_sharpens_progressively_to_two_over_eta() -> None:
    model, x, y = digits_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    mon = Monitor(model, opt, half_mse, probes=["sharpness"], every=300)
    train(model, opt, mon, x, y, 1200)
    ratios = sharpness_ratios(mon)
    assert mon.latest("sharpness").theory == pytest.approx(2 / 0.3)
    assert ratios[1] < 0.5                                   # starts well below 2/η
    late = [r for s, r in ratios.items() if s >= 900]
    assert late and all(abs(r - 1) <= 0.1 for r in late)   # hovers at the edge
    assert "at edge" in mon.latest("sharpness").regime
    assert "sharpness at step 1200" in mon.summary()


def test_adam_preconditioned_sharpness_reaches_its_threshold() -> None:
    model, x, y = digits_mlp()
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    mon = Monitor(model, opt, half_mse, probes=["sharpness"], every=125)
    train(model, opt, mon, x, y, 750)
    ratios = sharpness_ratios(mon)
    assert mon.latest("sharpness").theory == pytest.approx((2 + 2 * 0.9) / (0.1 * 0.003))
    assert ratios[125] < 0.75
    late = [r for s, r in ratios.items() if s >= 500]
    assert late and all(abs(r - 1) <= 0.12 for r in late)


def divergence_threshold(make_optimizer) -> float:
    """The smallest curvature λ on a log grid over [0.1, 1000] at which the optimizer
    diverges on ½λx² (every λ run at once: the coordinates are independent)."""
    curvature = torch.logspace(-1, 3, 4000, dtype=torch.float64)
    x = torch.ones_like(curvature, requires_grad=True)
    opt = make_optimizer([x])
    for _ in range(3000):
        opt.zero_grad()
        (0.5 * curvature * x.pow(2)).sum().backward()
        opt.step()
    diverged = ~(x.detach().abs() < 1e3)
    assert diverged.any() and not diverged[0]
    return float(curvature[diverged][0])


@pytest.mark.parametrize("kwargs", [
    {"lr": 0.1},
    {"lr": 0.1, "momentum": 0.9},
    {"lr": 0.05, "momentum": 0.5, "nesterov": True},
    {"lr": 0.1, "momentum": 0.8, "dampening": 0.5},
])
def test_sgd_thresholds_match_where_the_optimizer_diverges(kwargs: dict) -> None:
    model = nn.Linear(1, 1)
    twin = stability_twin(torch.optim.SGD(model.parameters(), **kwargs), model)
    measured = divergence_threshold(lambda p: torch.optim.SGD(p, **kwargs))
    assert twin.threshold == pytest.approx(measured, rel=0.01)


def test_sharpness_is_the_top_eigenvalue_of_the_dense_hessian() -> None:
    """Also with per-group learning rates: the top eigenvalue of P^-1/2 H P^-1/2."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x, y = torch.randn(20, 3, dtype=torch.float64), torch.randn(20, 2, dtype=torch.float64)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]

    def flat_loss(theta: torch.Tensor) -> torch.Tensor:
        parts = [c.view(s) for c, s in zip(theta.split(sizes), shapes, strict=True)]
        return half_mse(functional_call(model, dict(zip(names, parts, strict=True)), (x,)), y)

    h = hessian(flat_loss)(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    groups = [{"params": model[0].parameters(), "lr": 0.1},
              {"params": model[2].parameters(), "lr": 0.4}]
    opt = torch.optim.SGD(groups, lr=0.1)
    lr_vec = torch.cat([torch.full((s,), lr, dtype=torch.float64)
                        for s, lr in zip(sizes, [0.1, 0.1, 0.4, 0.4], strict=True)])
    scale = (lr_vec / 0.1).sqrt()
    expected = torch.linalg.eigvalsh(scale[:, None] * h * scale[None, :])[-1]
    mon = Monitor(model, opt, half_mse, probes=["sharpness"], every=1)
    reading = mon.step((x, y))[0]
    assert reading.value == pytest.approx(float(expected), rel=1e-6)
    assert reading.theory == pytest.approx(2 / 0.1)


def test_noise_scale_matches_per_example_gradients_in_closed_form() -> None:
    """Linear regression: g_i = (wᵀx_i + b − y_i)(x_i, 1), B_simple = tr Σ / |G|² with the
    unbiased per-example covariance (micro-batches of one example)."""
    torch.manual_seed(2)
    n = 32
    model = nn.Linear(5, 1).double()
    x = torch.randn(n, 5, dtype=torch.float64)
    y = x @ torch.randn(5, 1, dtype=torch.float64) + 0.3 * torch.randn(n, 1, dtype=torch.float64)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    mon = Monitor(model, opt, half_mse, probes=[NoiseScaleTwin(micro_batches=n)], every=1)
    reading = mon.step((x, y))[0]
    w, b = model.weight.detach().numpy().ravel(), float(model.bias.detach())
    xs, ys = x.numpy(), y.numpy().ravel()
    resid = xs @ w + b - ys
    g = np.concatenate([resid[:, None] * xs, resid[:, None]], axis=1)      # (n, 6)
    mean = g.mean(0)
    trace = ((g - mean) ** 2).sum() / (n - 1)
    signal = mean @ mean - trace / n
    assert reading.value == pytest.approx(trace / signal, rel=1e-8)
    assert reading.theory == n
    assert reading.regime.startswith("linear scaling" if n < trace / signal
                                     else "diminishing returns")


def test_kernel_movement_matches_jacobians() -> None:
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1)).double()
    x, y = torch.randn(10, 4, dtype=torch.float64), torch.randn(10, 1, dtype=torch.float64)
    opt = torch.optim.SGD(model.parameters(), lr=0.2)

    def kernel() -> torch.Tensor:
        params = {k: v.detach() for k, v in model.named_parameters()}
        jac = jacrev(lambda p: functional_call(model, p, (x[:8],)).squeeze(1))(params)
        j = torch.cat([v.reshape(8, -1) for v in jac.values()], dim=1)
        return j @ j.T

    mon = Monitor(model, opt, half_mse, probes=["kernel_movement"], every=20)
    k0 = None
    for step in range(1, 41):
        opt.zero_grad()
        loss = half_mse(model(x), y)
        loss.backward()
        opt.step()
        if step == 1:
            k0 = kernel()
        rows = mon.step((x, y), loss)
    assert k0 is not None and rows[0].step == 40
    expected = float((kernel() - k0).norm() / k0.norm())
    assert mon.readings[0].value == 0.0
    assert rows[0].value == pytest.approx(expected, rel=1e-8)
    assert rows[0].value > 0


def test_update_rms_is_the_last_update_relative_to_the_weights() -> None:
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(16, 6), torch.randn(16, 3)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    mon = Monitor(model, opt, half_mse, probes=["update_rms"], every=5)
    for _ in range(5):
        before = [model[0].weight.detach().clone(), model[2].weight.detach().clone()]
        opt.zero_grad()
        half_mse(model(x), y).backward()
        opt.step()
        rows = mon.step((x, y))
    by = {(r.probe, r.layer): r for r in rows}
    w0, w2 = model[0].weight.detach(), model[2].weight.detach()
    assert by["update_rms", "0"].value == pytest.approx(float((w0 - before[0]).norm()
                                                              / w0.norm()), rel=1e-5)
    hidden = torch.relu(x @ w0.T + model[0].bias.detach())
    change = hidden @ (w2 - before[1]).T
    assert by["output_change", "2"].value == pytest.approx(
        float(change.pow(2).mean().sqrt() / (hidden @ w2.T).pow(2).mean().sqrt()), rel=1e-4)
    median = float(np.median([by["update_rms", "0"].value, by["update_rms", "2"].value]))
    assert by["update_rms", "2"].theory == pytest.approx(median)


def test_readings_leave_the_model_as_they_found_it() -> None:
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Tanh(),
                          nn.Linear(8, 2))
    model.train()
    model[1].eval()                                     # a mode set per module is kept
    x, y = torch.randn(12, 4), torch.randn(12, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    mon = Monitor(model, opt, half_mse, every=1)
    opt.zero_grad()
    half_mse(model(x), y).backward()
    opt.step()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    rows = mon.step((x, y))
    assert {r.probe for r in rows} == {"sharpness", "update_rms", "output_change",
                                      "noise_scale", "kernel_movement"}
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters(), strict=True))
    assert model.training and not model[1].training and model[2].training


def test_bad_arguments_name_the_field() -> None:
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(InputError, match="probes"):
        Monitor(model, opt, half_mse, probes=["sharpnes"])
    with pytest.raises(InputError, match="every"):
        Monitor(model, opt, half_mse, every=0)
    with pytest.raises(InputError, match="loss_fn"):
        Monitor(model, opt)
    with pytest.raises(InputError, match="optimizer"):
        Monitor(model, "sgd", half_mse)  # type: ignore[arg-type]


def test_parametrization_is_read_from_the_optimizer_groups() -> None:
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 2))
    x, y = torch.randn(8, 4), torch.randn(8, 2)

    def regime(opt: torch.optim.Optimizer) -> str:
        return Monitor(model, opt, half_mse, probes=["update_rms"]).step((x, y))[0].regime

    assert "SP (one learning rate)" in regime(torch.optim.Adam(model.parameters(), lr=1e-3))
    mup = [{"params": model[0].parameters(), "lr": 1e-2},
           {"params": [*model[2].parameters(), *model[4].parameters()], "lr": 1e-2 / 16}]
    assert "μP-like" in regime(torch.optim.Adam(mup, lr=1e-2))
    odd = [{"params": model[0].parameters(), "lr": 1e-3},
           {"params": model[2].parameters(), "lr": 1e-2},
           {"params": model[4].parameters(), "lr": 1e-4}]
    assert "per-layer learning rates" in regime(torch.optim.Adam(odd, lr=1e-3))
