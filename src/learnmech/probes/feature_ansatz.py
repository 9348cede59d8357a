"""The neural feature ansatz (Radhakrishnan et al. 2024): ``W₁ᵀW₁ ∝ AGOP``.

For a network ``f: ℝ^d → ℝ^k`` and inputs ``x_1 … x_n``, the *average gradient outer
product* is ``AGOP = (1/n) Σ_i J(x_i)ᵀ J(x_i)`` with ``J(x) = ∂f/∂x`` ``(k, d)``: a ``(d, d)``
PSD matrix that weighs input directions by how much the function varies along them.
The *neural feature matrix* of the first layer is ``W₁ᵀW₁`` ``(d, d)`` (effective weights
``m₁W₁``). The ansatz says that after training the two are proportional; its test is
the Pearson correlation of their entries (:func:`matrix_correlation`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import jacrev, vmap

from learnmech.errors import InputError
from learnmech.probes.base import Batch, LossFn, training_pair
from learnmech.probes.hidden import as_network
from learnmech.probes.registry import register_probe


def input_jacobians(fn: Callable[[Tensor], Tensor], x: Tensor, chunk: int = 256) -> Tensor:
    """``J(x_i) = ∂f(x_i)/∂x_i`` for every row of ``x`` ``(n, d)``: shape ``(n, k, d)``.

    ``fn`` maps a batch ``(b, d)`` to ``(b, k)`` and treats rows independently.
    """
    if x.ndim != 2:
        raise InputError("x", tuple(x.shape), "a (n, d) matrix of inputs")

    def single(xi: Tensor) -> Tensor:
        return fn(xi[None])[0]

    jac = vmap(jacrev(single))
    with torch.no_grad():  # torch.func still differentiates w.r.t. x; no graph to the weights
        return torch.cat([jac(x[i : i + chunk].detach()) for i in range(0, x.shape[0], chunk)])


def agop(fn: Callable[[Tensor], Tensor], x: Tensor, chunk: int = 256) -> Tensor:
    """Average gradient outer product ``(1/n) Σ_i J(x_i)ᵀJ(x_i)``, ``(d, d)``, float64."""
    j = input_jacobians(fn, x, chunk).double()
    return torch.einsum("nkd,nke->de", j, j) / x.shape[0]


def matrix_correlation(a: Tensor, b: Tensor) -> float:
    """Pearson correlation of the entries of two matrices of equal shape."""
    if a.shape != b.shape:
        raise InputError("matrices", (tuple(a.shape), tuple(b.shape)),
                         "two matrices of equal shape")
    u = a.detach().double().flatten()
    v = b.detach().double().flatten()
    u, v = u - u.mean(), v - v.mean()
    return float(u @ v / (torch.linalg.norm(u) * torch.linalg.norm(v)))


def psd_sqrt(m: Tensor) -> Tensor:
    """Square root of a symmetric PSD matrix (negative round-off eigenvalues set to 0)."""
    evals, evecs = torch.linalg.eigh(m.double())
    return (evecs * evals.clamp_min(0).sqrt()) @ evecs.T


def psd_power(m: Tensor, alpha: float) -> Tensor:
    """``M^α`` of a symmetric PSD matrix ``(d, d)`` through its eigendecomposition (float64;
    negative round-off eigenvalues set to 0)."""
    evals, evecs = torch.linalg.eigh(m.double())
    return (evecs * evals.clamp_min(0).pow(alpha)) @ evecs.T


def power_fit_residual(nfm: Tensor, g: Tensor, alpha: float) -> float:
    """``min_c ‖N − c G^α‖_F / ‖N‖_F`` for ``N = W₁ᵀW₁`` and ``G = AGOP`` ``(d, d)``; the best
    ``c = ⟨N, G^α⟩ / ‖G^α‖²``."""
    p, n = psd_power(g, alpha), nfm.double()
    c = (n * p).sum() / (p * p).sum()
    return float(torch.linalg.norm(n - c * p) / torch.linalg.norm(n))


def fit_feature_exponent(nfm: Tensor, g: Tensor, bounds: tuple[float, float] = (0.05, 3.0)
                         ) -> tuple[float, float]:
    """The power ``α`` with ``W₁ᵀW₁ ≈ c·AGOP^α`` that minimizes :func:`power_fit_residual`
    over ``bounds`` (bounded Brent search, to 1e-6), and that residual.

    Frobenius norms weigh the top eigen-directions, so ``α`` is set by how the ratios of
    the large eigenvalues of ``W₁ᵀW₁`` follow those of the AGOP.
    """
    from scipy.optimize import minimize_scalar

    result = minimize_scalar(lambda a: power_fit_residual(nfm, g, a), bounds=bounds,
                             method="bounded", options={"xatol": 1e-6})
    return float(result.x), float(result.fun)


def feature_matrices(model: nn.Module, x: Tensor, max_inputs: int = 512) -> tuple[Tensor, Tensor]:
    """``(W₁ᵀW₁, AGOP)`` of a learnmech network over (up to ``max_inputs``) inputs ``x``
    ``(N, d)``; both ``(d, d)``."""
    net = as_network(model)
    w1 = net.effective_weights()[0].double()
    return w1.T @ w1, agop(net, x[:max_inputs])


@register_probe("feature_ansatz")
class FeatureAnsatz:
    """Correlation of ``W₁ᵀW₁`` with the AGOP (over up to 512 training inputs).

    Observables ``nfa.correlation`` (with the AGOP) and ``nfa.correlation_sqrt`` (with
    ``AGOP^{1/2}``, the form some follow-ups use).
    """

    name = "feature_ansatz"

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> dict[str, float]:
        nfm, g = feature_matrices(model, training_pair(batch)[0])
        return {
            "nfa.correlation": matrix_correlation(nfm, g),
            "nfa.correlation_sqrt": matrix_correlation(nfm, psd_sqrt(g)),
        }


@register_probe("feature_ansatz_matrices")
class FeatureAnsatzMatrices:
    """The matrices themselves, flattened row-major: ``nfa.nfm`` (``W₁ᵀW₁``) and
    ``nfa.agop``, each ``d²`` numbers (mind the size for large inputs)."""

    name = "feature_ansatz_matrices"

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> dict[str, Tensor]:
        nfm, g = feature_matrices(model, training_pair(batch)[0])
        return {"nfa.nfm": nfm.flatten(), "nfa.agop": g.flatten()}
