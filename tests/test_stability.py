"""Stability theory against torch's own optimizers, closed forms and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.func import functional_call

from learnmech.errors import InputError
from learnmech.linalg import HessianOperator
from learnmech.system import LearningRule
from learnmech.theory import stability


@pytest.fixture(autouse=True)
def _one_thread(_deterministic_threads: None) -> None:
    """Tiny tensors: one thread is faster (much faster on a loaded machine); it runs after
    the suite's own thread fixture, which resets the count for the next test."""
    torch.set_num_threads(1)


def _torch_run(method: str, lr: float, lam: float, beta: float, steps: int) -> float:
    """|x| after ``steps`` of torch.optim.SGD on ½λx² from x = 1 (float64)."""
    x = nn.Parameter(torch.ones((), dtype=torch.float64))
    opt = torch.optim.SGD([x], lr=lr, momentum=beta if method != "gd" else 0.0,
                          nesterov=method == "nesterov")
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * lam * x**2).backward()
        opt.step()
    return float(x.detach().abs())


@pytest.mark.parametrize(("method", "beta"), [("gd", 0.0), ("momentum", 0.9),
                                              ("momentum", 0.5), ("nesterov", 0.9)])
def test_thresholds_match_torch_optimizers(method: str, beta: float) -> None:
    lr = 0.1
    edge = stability.threshold(method, lr, beta)  # type: ignore[arg-type]
    assert _torch_run(method, lr, 0.95 * edge, beta, 800) < 0.1
    assert _torch_run(method, lr, 1.05 * edge, beta, 800) > 10
    # the asymptotic factor per step is the spectral radius of the iteration
    lam = 1.2 * edge
    rate = _torch_run(method, lr, lam, beta, 300) ** (1 / 300)
    assert rate == pytest.approx(stability.growth_factor(lr * lam, method, beta), rel=1e-2)  # type: ignore[arg-type]


def test_gd_multiplies_each_eigen_coordinate_by_one_minus_lr_lambda() -> None:
    """torch.optim.SGD on ½xᵀAx (random basis, float64): every resolved step multiplies
    the coordinate along eigenvector i by 1 − ηλ_i, and it grows iff λ_i > 2/η."""
    lr, ratios = 0.1, (0.05, 0.3, 0.6, 0.9, 0.98, 1.02, 1.1, 1.3, 1.45)  # λ in units of 2/η
    g = torch.Generator().manual_seed(0)
    lam = torch.tensor(ratios, dtype=torch.float64) * 2 / lr
    q, _ = torch.linalg.qr(torch.randn(len(ratios), len(ratios), generator=g,
                                       dtype=torch.float64))
    a = q @ torch.diag(lam) @ q.T
    x = nn.Parameter(q @ torch.ones(len(ratios), dtype=torch.float64))
    opt = torch.optim.SGD([x], lr=lr)
    coords = [(q.T @ x.detach()).numpy()]
    for _ in range(60):
        opt.zero_grad()
        (0.5 * x @ a @ x).backward()
        opt.step()
        coords.append((q.T @ x.detach()).numpy())
    c = np.asarray(coords)
    # below 1e-6 of ‖x‖ the float64 round-off of the projection dominates
    resolved = np.abs(c[:-1]) >= 1e-6 * np.linalg.norm(c[:-1], axis=1, keepdims=True)
    factor = c[1:] / np.where(resolved, c[:-1], 1.0)
    expected = np.broadcast_to(1 - lr * lam.numpy(), factor.shape)
    assert np.allclose(factor[resolved], expected[resolved], rtol=1e-8)
    log_rate = [np.mean(np.log(np.abs(factor[resolved[:, i], i]))) for i in range(len(ratios))]
    grows = [bool(r > 0) for r in log_rate]
    assert grows == [r > 1 for r in ratios]
    assert grows == [stability.growth_factor(lr * float(v)) > 1 for v in lam]


def test_closed_forms() -> None:
    assert stability.threshold("gd", 0.5) == 4.0
    assert stability.threshold("momentum", 0.1, 0.9) == pytest.approx(38.0)
    assert stability.threshold("adam", 0.01, 0.9) == pytest.approx(3800.0)
    assert stability.threshold("nesterov", 1.0, 0.5) == pytest.approx(1.5)
    for a in (0.3, 1.5, 1.99, 2.5):
        assert stability.growth_factor(a) == pytest.approx(abs(1 - a))
    # Adam with a frozen preconditioner: spectral radius crosses 1 at the threshold
    for beta in (0.5, 0.9, 0.99):
        a_edge = stability.threshold("adam", 1.0, beta)
        assert stability.growth_factor(0.999 * a_edge, "adam", beta) < 1
        assert stability.growth_factor(1.001 * a_edge, "adam", beta) > 1
    rule = LearningRule(optimizer="momentum", lr=0.2, momentum=0.5, nesterov=True)
    assert stability.rule_threshold(rule) == pytest.approx(stability.threshold("nesterov",
                                                                               0.2, 0.5))
    with pytest.raises(InputError, match="beta"):
        stability.threshold("momentum", 0.1, 1.0)
    with pytest.raises(InputError, match="lr"):
        stability.threshold("gd", 0.0)


def test_adam_threshold_on_a_hand_written_frozen_adam() -> None:
    """EMA momentum with a frozen diagonal preconditioner P, written out by hand."""
    lr, beta, p = 0.01, 0.9, 3.0
    edge = stability.threshold("adam", lr, beta)  # for λ/P
    for factor, converges in ((0.99, True), (1.01, False)):
        lam = factor * edge * p
        x, m = 1.0, 0.0
        for _ in range(4000):
            m = beta * m + (1 - beta) * lam * x
            x = x - lr * m / p
        assert (abs(x) < 1e-3) == converges


# ---- central flow --------------------------------------------------------------------------


def _data(n: int = 24, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return x, torch.sin(x.sum(1, keepdim=True))


def _mse(out: Tensor, y: Tensor) -> Tensor:
    return 0.5 * (out - y).pow(2).sum() / out.shape[0]


def test_gradient_flow_on_a_quadratic_matches_the_matrix_exponential() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 1).double()
    x, y = _data()
    lr, steps = 0.05, 40.0
    path = stability.central_flow(model, _mse, (x, y), lr, steps, dt=0.1, stabilize=False)
    op = HessianOperator(model, _mse, (x, y))
    h, (_, g0) = op.dense(), op.loss_and_gradient()
    w0 = op.parameters_vector()
    # w(t) = w* + e^{−ηHt}(w0 − w*), with H(w0 − w*) = ∇L(w0)
    shift = torch.linalg.solve(h, g0)
    exact = w0 - shift + torch.linalg.matrix_exp(-lr * steps * h) @ shift
    # Euler with sub-steps ηdtS ≤ ½ is first order: relative error O(η dt λ_max)
    assert float((path.params[-1] - exact).norm() / (exact - w0).norm()) < 2e-3
    assert all(s2 == 0 for s2 in path.sigma2)
    assert model.weight.grad is None


def test_central_flow_holds_sharpness_and_sigma2_matches_its_formula() -> None:
    """Start exactly at S = 2/η on a small MLP where gradient flow sharpens: σ² at the
    start equals 2⟨−∇L, ∇S⟩/‖∇S‖², with ∇S from central differences of the top
    eigenvalue of dense Hessians; afterwards the flow keeps S at 2/η."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 1)).double()
    x, y = _data(seed=0)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach()

    def loss_at(flat: Tensor) -> Tensor:
        parts, i = {}, 0
        for n, s in zip(names, shapes, strict=True):
            parts[n] = flat[i : i + math.prod(s)].view(s)
            i += math.prod(s)
        return _mse(functional_call(model, parts, (x,)), y)

    def sharp(flat: Tensor) -> Tensor:
        return torch.linalg.eigvalsh(torch.func.hessian(loss_at)(flat))[-1]

    s0 = float(sharp(theta))
    lr = 2.0 / s0
    grad = torch.func.grad(loss_at)(theta)
    eye = torch.eye(theta.numel(), dtype=torch.float64)
    grad_s = torch.stack([(sharp(theta + 1e-5 * e) - sharp(theta - 1e-5 * e)) / 2e-5
                          for e in eye])
    expected = 2 * float(-grad @ grad_s) / float(grad_s @ grad_s)
    assert expected > 0  # gradient flow would raise S here: the flow must hold it
    path = stability.central_flow(model, _mse, (x, y), lr, 10.0, dt=0.25, tol=1e-10)
    assert path.sigma2[0] == pytest.approx(expected, rel=1e-4)
    # S stays at 2/η while σ² > 0 and never exceeds it (complementarity)
    edge = np.asarray(path.sharpness) * lr / 2
    held = np.asarray(path.sigma2) > 0
    assert held[:3].all()
    assert np.abs(edge[held] - 1).max() < 1e-3
    assert edge.max() < 1 + 1e-3
    np.testing.assert_allclose(path.avg_loss, np.asarray(path.loss) + np.asarray(path.sigma2)
                               / lr)
    gf = stability.central_flow(model, _mse, (x, y), lr, 2.0, dt=0.25, stabilize=False)
    assert gf.sharpness[-1] * lr / 2 > 1 + 1e-3  # without the constraint, S rises


def test_central_flow_is_gradient_flow_where_sharpness_would_fall() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 1)).double()
    x, y = _data(seed=1)  # here ⟨−∇L, ∇S⟩ < 0 at the start
    s0 = float(torch.linalg.eigvalsh(HessianOperator(model, _mse, (x, y)).dense())[-1])
    cf = stability.central_flow(model, _mse, (x, y), 2 / s0, 3.0, dt=0.25)
    gf = stability.central_flow(model, _mse, (x, y), 2 / s0, 3.0, dt=0.25, stabilize=False)
    assert cf.sigma2 == [0.0] * len(cf.sigma2)
    torch.testing.assert_close(cf.params[-1], gf.params[-1])


def test_central_flow_bad_input() -> None:
    model = nn.Linear(3, 1).double()
    with pytest.raises(InputError, match="dt"):
        stability.central_flow(model, _mse, _data(), 0.1, 10, dt=1.0)
