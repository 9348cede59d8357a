"""Curvature instruments against dense float64 Hessians built independently with
``torch.func.hessian``, Monte-Carlo convergence of the estimators, and finite differences."""

from __future__ import annotations

import copy
import functools
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.func import functional_call

from learnmech.data import load
from learnmech.errors import InputError
from learnmech.linalg import (
    DenseOperator,
    HessianOperator,
    PreconditionedOperator,
    adam_preconditioner,
    hutch_pp,
    hutchinson,
    lanczos,
    spectral_density,
)
from learnmech.probes import make_probe
from learnmech.system import MLP, Digits, FashionMNIST, LearningRule, System
from learnmech.threads import one_torch_thread
from learnmech.train import Schedule, initial_state, objective, train


@pytest.fixture(autouse=True)
def _one_thread(_deterministic_threads: None) -> None:
    """Tiny tensors: one thread is faster (much faster on a loaded machine); it runs after
    the suite's own thread fixture, which resets the count for the next test."""
    torch.set_num_threads(1)


# ---- small problems ---------------------------------------------------------------------


def _mse(out: Tensor, y: Tensor) -> Tensor:
    return 0.5 * (out - y).pow(2).sum() / out.shape[0]


def _mlp(bias: bool, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(5, 6, bias=bias), nn.Tanh(), nn.Linear(6, 4, bias=bias), nn.Tanh(),
        nn.Linear(4, 3, bias=bias),
    ).double()


def _layernorm_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(5, 6), nn.LayerNorm(6), nn.GELU(), nn.Linear(6, 3)
    ).double()


def _problem(kind: str, seed: int = 0):
    """(model, loss_fn, x, y) for one case."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 5, generator=g, dtype=torch.float64)
    if kind == "layernorm":
        model = _layernorm_model(seed)
    else:
        model = _mlp(bias=kind != "nobias-mse", seed=seed)
    if kind == "ce":
        y = torch.randint(0, 3, (40,), generator=g)
        return model, F.cross_entropy, x, y
    y = torch.randn(40, 3, generator=g, dtype=torch.float64)
    return model, _mse, x, y


CASES = ["bias-mse", "nobias-mse", "ce", "layernorm"]


@functools.cache
def _reference(kind: str, seed: int = 0) -> Tensor:
    """The dense Hessian of case ``kind`` (cached: the LayerNorm one takes seconds)."""
    model, loss_fn, x, y = _problem(kind, seed)
    return _dense_hessian(model, loss_fn, x, y)


def _dense_hessian(model: nn.Module, loss_fn, x: Tensor, y: Tensor) -> Tensor:
    """Reference: ``torch.func.hessian`` of the loss of the flat parameter vector.

    For models with a LayerNorm the vmapped transforms of torch 2.13 (``hessian``,
    ``jacrev(jacrev)``) return a wrong, asymmetric matrix (errors ~0.05 against finite
    differences; see :func:`test_layernorm_reference_by_finite_differences`); there the
    reference is ``torch.autograd.functional.hessian``, row by row without vmap.
    """
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(flat: Tensor) -> Tensor:
        parts, i = {}, 0
        for n, s in zip(names, shapes, strict=True):
            k = math.prod(s)
            parts[n] = flat[i : i + k].view(s)
            i += k
        return loss_fn(functional_call(model, parts, (x,)), y)

    if any(isinstance(m, nn.LayerNorm) for m in model.modules()):
        return torch.autograd.functional.hessian(loss, flat0)
    return torch.func.hessian(loss)(flat0)


def test_layernorm_reference_by_finite_differences() -> None:
    """Central differences of the gradient (step 1e-5) confirm the LayerNorm reference."""
    model, loss_fn, x, y = _problem("layernorm")
    ref = _reference("layernorm")
    theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach()

    def gradient(t: Tensor) -> Tensor:
        shifted = _problem("layernorm")[0]
        torch.nn.utils.vector_to_parameters(t, shifted.parameters())
        loss = loss_fn(shifted(x), y)
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, shifted.parameters())])

    eye = torch.eye(theta.numel(), dtype=torch.float64)
    for i in (0, 33, 38, 45):  # first Linear, LayerNorm weight and bias, last Linear
        fd = (gradient(theta + 1e-5 * eye[i]) - gradient(theta - 1e-5 * eye[i])) / 2e-5
        torch.testing.assert_close(ref[:, i], fd, rtol=1e-6, atol=1e-7)


# ---- the operator -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CASES)
def test_operator_matches_dense_hessian(kind: str) -> None:
    model, loss_fn, x, y = _problem(kind)
    ref = _reference(kind)
    op = HessianOperator(model, loss_fn, (x, y), backend="autograd")
    assert op.dim == ref.shape[0]
    torch.testing.assert_close(op.dense(), ref, rtol=1e-10, atol=1e-12)
    assert op.matvecs == op.dim
    # the torch.func backend (slower per product: checked on a few vectors)
    func = HessianOperator(model, loss_fn, (x, y), backend="func")
    v = torch.randn(op.dim, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    if kind == "layernorm":  # torch 2.13's forward mode through layer_norm is wrong
        with pytest.raises(RuntimeError, match="not symmetric"):
            func @ v
    else:
        torch.testing.assert_close(func @ v, ref @ v, rtol=1e-10, atol=1e-12)


def test_loader_weights_batches_by_size() -> None:
    model, loss_fn, x, y = _problem("ce")
    ref = _reference("ce")
    loader = [(x[:7], y[:7]), (x[7:30], y[7:30]), (x[30:], y[30:])]  # unequal batches
    for backend in ("autograd", "func"):
        op = HessianOperator(model, loss_fn, loader, backend=backend)  # type: ignore[arg-type]
        v = torch.randn(op.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        torch.testing.assert_close(op.matvec(v), ref @ v, rtol=1e-10, atol=1e-12)
    value, grad = HessianOperator(model, loss_fn, loader).loss_and_gradient()
    full = loss_fn(model(x), y)
    assert value == pytest.approx(float(full.detach()), rel=1e-12)
    ref_grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(full, model.parameters())])
    torch.testing.assert_close(grad, ref_grad)


def test_parameter_subset_is_a_diagonal_block() -> None:
    model, loss_fn, x, y = _problem("bias-mse")
    ref = _reference("bias-mse")
    op = HessianOperator(model, loss_fn, (x, y), params=["2.weight"])
    start = sum(p.numel() for p in list(model.parameters())[:2])
    block = ref[start : start + op.dim, start : start + op.dim]
    torch.testing.assert_close(op.dense(), block, rtol=1e-10, atol=1e-12)
    with pytest.raises(InputError, match="params"):
        HessianOperator(model, loss_fn, (x, y), params=["nope"])


def test_operator_leaves_model_untouched() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))
    model.train()
    x, y = torch.randn(32, 5), torch.randint(0, 3, (32,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    op = HessianOperator(model, F.cross_entropy, (x, y))
    lanczos(op, 2, seed=0)
    op.curvature_gradient(torch.ones(op.dim) / math.sqrt(op.dim))
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():  # running stats of BatchNorm included
        assert torch.equal(v, before[k]), k
    assert next(model.parameters()).dtype == torch.float32


class _Cube(torch.autograd.Function):
    """``x³`` whose backward is not twice differentiable (forward mode supported)."""

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return x**3

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])

    @staticmethod
    @once_differentiable
    def backward(ctx, g):  # type: ignore[no-untyped-def]
        (x,) = ctx.saved_tensors
        return 3 * x**2 * g

    @staticmethod
    def jvp(ctx, t):  # type: ignore[no-untyped-def]
        (x,) = ctx.saved_tensors
        return 3 * x**2 * t


class _CubeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2).double()

    def forward(self, x: Tensor) -> Tensor:
        return _Cube.apply(self.lin(x))


def test_auto_backend_falls_back_to_torch_func_with_a_warning() -> None:
    torch.manual_seed(0)
    model = _CubeNet()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)

    class Smooth(nn.Module):  # the same function with ordinary ops, for the reference
        def __init__(self) -> None:
            super().__init__()
            self.lin = model.lin

        def forward(self, z: Tensor) -> Tensor:
            return self.lin(z) ** 3

    ref = _dense_hessian(Smooth(), _mse, x, y)
    op = HessianOperator(model, _mse, (x, y))
    with pytest.warns(RuntimeWarning, match="double backward failed"):
        dense = op.dense()
    assert op.backend == "func"
    torch.testing.assert_close(dense, ref)
    with pytest.raises(RuntimeError):
        HessianOperator(model, _mse, (x, y), backend="autograd").dense()


def test_curvature_gradient_matches_finite_differences_of_sharpness() -> None:
    model, loss_fn, x, y = _problem("bias-mse", seed=3)
    op = HessianOperator(model, loss_fn, (x, y))
    evals, evecs = torch.linalg.eigh(_dense_hessian(model, loss_fn, x, y))
    assert evals[-1] - evals[-2] > 1e-2  # a simple top eigenvalue
    grad_s = op.curvature_gradient(evecs[:, -1])
    theta = op.parameters_vector()
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        d = torch.randn(op.dim, generator=g, dtype=torch.float64)
        d /= d.norm()
        eps, s = 1e-5, []
        for sign in (1, -1):
            shifted = _problem("bias-mse", seed=3)[0]
            torch.nn.utils.vector_to_parameters(theta + sign * eps * d, shifted.parameters())
            s.append(torch.linalg.eigvalsh(_dense_hessian(shifted, loss_fn, x, y))[-1])
        fd = float((s[0] - s[1]) / (2 * eps))
        assert float(grad_s @ d) == pytest.approx(fd, rel=1e-5, abs=1e-8)


# ---- Lanczos -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CASES)
def test_lanczos_top_eigenpairs(kind: str) -> None:
    model, loss_fn, x, y = _problem(kind)
    h = _reference(kind)
    evals, evecs = torch.linalg.eigh(h)
    op = HessianOperator(model, loss_fn, (x, y))
    top = lanczos(op, k=3, tol=1e-8, seed=0)
    assert top.converged
    assert top.matvecs < op.dim  # it stopped early
    torch.testing.assert_close(top.values, evals.flip(0)[:3], rtol=1e-8, atol=1e-10)
    # eigenvectors up to sign, where the eigenvalue is separated
    for i in range(3):
        ref = evecs[:, -1 - i]
        assert abs(float(top.vectors[:, i] @ ref)) == pytest.approx(1.0, abs=1e-6)
    # the residuals it reports are the true ones
    true = (h @ top.vectors - top.vectors * top.values).norm(dim=0)
    torch.testing.assert_close(top.residuals, true, rtol=1e-3, atol=1e-12)


def test_lanczos_agrees_with_arpack() -> None:
    from scipy.sparse.linalg import eigsh

    model, loss_fn, x, y = _problem("ce", seed=2)
    h = _dense_hessian(model, loss_fn, x, y).numpy()
    arpack = np.sort(eigsh(h, k=4, which="LA", tol=1e-12)[0])[::-1]
    ours = lanczos(HessianOperator(model, loss_fn, (x, y)), k=4, tol=1e-10, seed=1).values
    np.testing.assert_allclose(ours.numpy(), arpack, rtol=1e-9)


def test_lanczos_warm_start_and_breakdown() -> None:
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(60, 60, generator=g, dtype=torch.float64))
    lam = torch.cat([torch.linspace(-3, 7, 59, dtype=torch.float64),
                     torch.tensor([10.0], dtype=torch.float64)])
    a = DenseOperator(q @ torch.diag(lam) @ q.T)
    cold = lanczos(a, 1, tol=1e-6, seed=0)
    nudge = 1e-4 * torch.randn(60, generator=g, dtype=torch.float64)
    warm = lanczos(a, 1, tol=1e-6, v0=cold.vectors[:, 0] + nudge)
    assert warm.matvecs <= cold.matvecs / 2
    assert float(warm.values[0]) == pytest.approx(10.0, rel=1e-9)
    # start exactly on an eigenvector that is not the top one: breakdown, then restart
    res = lanczos(a, 2, tol=1e-8, v0=q[:, 10])
    torch.testing.assert_close(res.values, lam.flip(0)[:2])
    # a matrix with a repeated top eigenvalue (multiplicity 3)
    lam2 = torch.cat([torch.full((3,), 5.0, dtype=torch.float64), torch.linspace(0, 4, 57)])
    res2 = lanczos(DenseOperator(q @ torch.diag(lam2) @ q.T), 3, tol=1e-8, seed=0)
    torch.testing.assert_close(res2.values, torch.full((3,), 5.0, dtype=torch.float64))


def test_gradient_start_is_the_gradient_direction_plus_half_a_gaussian_one() -> None:
    model, loss_fn, x, y = _problem("ce")
    op = HessianOperator(model, loss_fn, (x, y))
    grads = torch.autograd.grad(loss_fn(model(x), y), list(model.parameters()))
    g = torch.cat([t.reshape(-1) for t in grads])
    v0 = op.gradient_start(seed=3)
    r = v0 - g / g.norm()
    assert float(r.norm()) == pytest.approx(0.5, rel=1e-12)
    assert v0.shape == (op.dim,)
    assert not torch.allclose(v0, op.gradient_start(seed=4))  # the Gaussian half is seeded
    top = lanczos(op, 1, tol=1e-10, v0=v0)
    ref = torch.linalg.eigvalsh(_reference("ce"))[-1]
    assert float(top.values[0]) == pytest.approx(float(ref), rel=1e-9)
    # at a zero gradient (a zero linear model fitting zero targets) the start is Gaussian
    lin = nn.Linear(5, 3, bias=False).double()
    nn.init.zeros_(lin.weight)
    start = HessianOperator(lin, _mse, (x, torch.zeros(40, 3, dtype=torch.float64))
                            ).gradient_start(seed=0)
    gen = torch.Generator().manual_seed(0)
    gauss = torch.randn(15, generator=gen, dtype=torch.float64)
    assert float((start - gauss / gauss.norm()).norm()) < 1e-6


def test_float32_lanczos_agrees_with_the_float64_eigenvalue() -> None:
    """The float32 top eigenvalue of a trained 269k-parameter Fashion-MNIST MLP (the one
    of ``bench/hessian.py``), from the gradient start, against the float64 Lanczos of the
    same model: 9.5e-6 apart with the Rayleigh quotients summed in float64, 1.1e-4 when
    they were summed in float32 (an AMD EPYC; the residual test had passed at 1e-8)."""
    data = load(FashionMNIST(n_train=2000, n_test=10))
    x, y = data.x_train, data.y_train
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(),
                          nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    with one_torch_thread():
        op = HessianOperator(model, F.cross_entropy, (x, y))
        top = lanczos(op, 1, tol=1e-8, v0=op.gradient_start(0))
        exact = HessianOperator(copy.deepcopy(model).double(), F.cross_entropy,
                                (x.double(), y))
        ref = lanczos(exact, 1, tol=1e-12, max_iter=400)
    assert ref.converged
    assert float(top.values[0]) == pytest.approx(float(ref.values[0]), rel=3e-5)


def test_lanczos_bad_input() -> None:
    a = DenseOperator(torch.eye(4, dtype=torch.float64))
    with pytest.raises(InputError, match="k"):
        lanczos(a, 5)
    with pytest.raises(InputError, match="v0"):
        lanczos(a, 1, v0=torch.zeros(4))


# ---- trace and spectral density ---------------------------------------------------------------


@pytest.fixture(scope="module")
def nn_hessian() -> Tensor:
    """A 365-parameter cross-entropy MLP Hessian (dense, float64)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 20), nn.Tanh(), nn.Linear(20, 5), nn.Tanh(),
                          nn.Linear(5, 5)).double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (200,), generator=g)
    return _dense_hessian(model, F.cross_entropy, x, y)


def _hutchinson_sigma(a: Tensor, m: int) -> float:
    """Exact standard deviation of Hutchinson's estimate with ``m`` Rademacher probes:
    ``Var(zᵀAz) = 2(‖A‖_F² − Σ_i A_ii²)`` for symmetric ``A``."""
    return math.sqrt(2 * float(a.pow(2).sum() - a.diagonal().pow(2).sum()) / m)


def test_hutchinson_converges_and_its_error_bar_is_honest(nn_hessian: Tensor) -> None:
    exact = float(torch.trace(nn_hessian))
    sigma = _hutchinson_sigma(nn_hessian, 1000)
    est = hutchinson(DenseOperator(nn_hessian), 1000, seed=0)
    # budget: 1000 products; within 4 exact standard deviations (≈ 8 % of the trace here)
    assert abs(est.value - exact) <= 4 * sigma
    assert 4 * sigma / abs(exact) < 0.1
    # the reported error bar estimates the exact one
    assert est.stderr == pytest.approx(sigma, rel=0.2)


def test_hutch_pp_converges_faster(nn_hessian: Tensor) -> None:
    exact = float(torch.trace(nn_hessian))
    op = DenseOperator(nn_hessian)
    # budget 240 products (≈ 0.7 dim): over 10 seeds the RMS error of Hutch++ is under half
    # the exact σ of Hutchinson with the same budget (on this flat random-init spectrum the
    # gain appears beyond ~100 products), and each estimate is within 4 of its error bars
    errs = []
    for seed in range(10):
        est = hutch_pp(op, 240, seed=seed)
        assert abs(est.value - exact) <= 4 * est.stderr
        errs.append(est.value - exact)
    assert float(np.sqrt(np.mean(np.square(errs)))) < _hutchinson_sigma(nn_hessian, 240) / 2


def test_trace_on_the_network_operator() -> None:
    model, loss_fn, x, y = _problem("ce")
    h = _reference("ce")
    exact = float(torch.trace(h))
    op = HessianOperator(model, loss_fn, (x, y))
    # Hutchinson on the network operator: within 4 exact σ with 200 products
    est = hutchinson(op, 200, seed=0)
    assert abs(est.value - exact) <= 4 * _hutchinson_sigma(h, 200)
    assert op.matvecs == 200
    # Hutch++ with a sketch as wide as the space is exact
    assert hutch_pp(op, 3 * op.dim, seed=0).value == pytest.approx(exact, rel=1e-9)


def test_spectral_density(nn_hessian: Tensor) -> None:
    dim = nn_hessian.shape[0]
    evals = torch.linalg.eigvalsh(nn_hessian)
    op = DenseOperator(nn_hessian)
    slq = spectral_density(op, probes=30, steps=40, seed=0)
    assert slq.nodes.shape == (30, 40)
    assert op.matvecs == 30 * 40
    torch.testing.assert_close(slq.weights.sum(1), torch.ones(30, dtype=torch.float64))
    # moments estimate (1/dim) tr A^p: zᵀA^pz/dim with Rademacher z, so within 4 exact
    # standard deviations of that Monte-Carlo mean over 30 probes
    for p in (1, 2, 3):
        power = torch.linalg.matrix_power(nn_hessian, p)
        exact = float(torch.trace(power)) / dim
        sigma = _hutchinson_sigma(power, 30) / dim
        assert abs(slq.moment(p) - exact) <= 4 * sigma, p
    # the extreme nodes converge to the extreme eigenvalues
    assert float(slq.nodes.max()) == pytest.approx(float(evals[-1]), rel=1e-6)
    # the broadened density integrates to one
    grid = torch.linspace(float(evals[0]) - 1, float(evals[-1]) + 1, 4001)
    rho = slq.density(grid, sigma=0.05)
    assert float(torch.trapezoid(rho, grid)) == pytest.approx(1.0, abs=1e-3)


def test_spectral_density_exact_on_few_distinct_eigenvalues() -> None:
    g = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(50, 50, generator=g, dtype=torch.float64))
    lam = torch.tensor([1.0] * 20 + [2.0] * 25 + [7.0] * 5, dtype=torch.float64)
    slq = spectral_density(DenseOperator(q @ torch.diag(lam) @ q.T), probes=200, steps=10,
                           seed=0)
    live = slq.weights > 1e-12
    nodes = slq.nodes[live]
    assert torch.isclose(nodes[:, None], torch.tensor([1.0, 2.0, 7.0], dtype=torch.float64),
                         atol=1e-8).any(1).all()
    share = [float(slq.weights[(slq.nodes - v).abs() < 1e-6].sum() / 200) for v in (1, 2, 7)]
    np.testing.assert_allclose(share, [0.4, 0.5, 0.1], atol=0.03)


# ---- Adam's preconditioner ----------------------------------------------------------------


def test_adam_preconditioner_is_the_step_adam_takes() -> None:
    model, loss_fn, x, y = _problem("ce", seed=4)
    lr, b1, b2, eps = 0.01, 0.9, 0.99, 1e-6
    groups = [{"params": [model[0].weight], "lr": lr * 0.5},
              {"params": [p for n, p in model.named_parameters() if n != "0.weight"]}]
    opt = torch.optim.Adam(groups, lr=lr, betas=(b1, b2), eps=eps)
    assert adam_preconditioner(opt, model) is None
    m = torch.zeros(sum(p.numel() for p in model.parameters()), dtype=torch.float64)
    for _ in range(4):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        g = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        m = b1 * m + (1 - b1) * g  # the EMA of gradients, by hand
        before = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        opt.step()
        after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        p = adam_preconditioner(opt, model)
        assert p is not None
        torch.testing.assert_close(after - before, -lr * m / p, rtol=1e-9, atol=1e-12)
    opt.zero_grad(set_to_none=True)


def test_preconditioned_operator_has_the_spectrum_of_p_inverse_h() -> None:
    model, loss_fn, x, y = _problem("bias-mse")
    h = _reference("bias-mse")
    g = torch.Generator().manual_seed(0)
    p = torch.rand(h.shape[0], generator=g, dtype=torch.float64) + 0.1
    ref = torch.linalg.eigvals(torch.diag(1 / p) @ h).real.sort(descending=True).values
    op = PreconditionedOperator(HessianOperator(model, loss_fn, (x, y)), p)
    top = lanczos(op, 2, tol=1e-10, seed=0)
    torch.testing.assert_close(top.values, ref[:2], rtol=1e-8, atol=1e-10)
    with pytest.raises(InputError):
        PreconditionedOperator(op, -p)


# ---- probes in the trainer -----------------------------------------------------------------


def _small_system(optimizer: str = "gd", lr: float = 0.05) -> System:
    return System(
        architecture=MLP(width=4, depth=2, activation="tanh"),
        data=Digits(n_train=100, n_test=0),
        learning_rule=LearningRule(optimizer=optimizer, lr=lr, steps=20),
        dtype="float64",
    )


def test_sharpness_probe_in_the_trainer() -> None:
    system = _small_system()
    traj = train(system, [make_probe("sharpness")], Schedule("linear", 5))
    assert traj.model is not None and traj.data is not None
    model, data = traj.model, traj.data
    loss_fn = objective(system, data)
    ref = torch.linalg.eigvalsh(_dense_hessian(model, loss_fn, data.x_train, data.y_train))[-1]
    assert traj["sharpness"].values[-1] == pytest.approx(float(ref), rel=1e-6)
    assert len(traj["sharpness"].values) == 5
    # at step 0, the probe measured the initial network
    init, *_ = initial_state(system)
    ref0 = torch.linalg.eigvalsh(_dense_hessian(init, loss_fn, data.x_train, data.y_train))[-1]
    assert traj["sharpness"].values[0] == pytest.approx(float(ref0), rel=1e-6)
    assert all(p.grad is None for p in model.parameters())


def test_preconditioned_sharpness_probe() -> None:
    system = _small_system("adam", 0.003)
    traj = train(system, [make_probe("preconditioned_sharpness")], Schedule("linear", 3))
    values = traj["preconditioned_sharpness"].values
    assert math.isnan(values[0])  # no preconditioner before the first update
    assert all(math.isfinite(v) and v > 0 for v in values[1:])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="optimizer"):
        train(_small_system(), [make_probe("preconditioned_sharpness")], Schedule("linear", 2))


def test_bad_data_input() -> None:
    model, loss_fn, x, _ = _problem("ce")
    with pytest.raises(InputError, match="data"):
        HessianOperator(model, loss_fn, 3)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="backend"):
            HessianOperator(model, loss_fn, (x, x), backend="jax")  # type: ignore[arg-type]


def test_readme_example_runs() -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"```python\n(import torch\n.*?learnmech\.linalg.*?)```", readme,
                      re.S)
    assert block is not None
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    assert namespace["top"].converged and namespace["top"].values.shape == (3,)
