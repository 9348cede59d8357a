"""Eigenlearning: the generalization of kernel ridge regression from the kernel's
eigensystem (Simon, Dickens, Karkada & DeWeese 2023; Bordelon et al. 2020; Jacot et al.
2020).

A kernel ``K(x, x') = Σ_i λ_i φ_i(x) φ_i(x')`` with eigenfunctions orthonormal under the
data distribution, a target ``f(x) = Σ_i v_i φ_i(x)`` (``v_i`` may be vectors, one entry
per output), ``n`` i.i.d. samples with label noise of variance ``ε²`` per output, and KRR
with ridge ``δ``: ``f̂(x) = K(x, X)(K(X, X) + δ I)⁻¹ y``. The effective regularization ``κ``
solves ::

    Σ_i λ_i / (λ_i + κ) + δ / κ = n

and then

* learnability of mode ``i``:  ``L_i = λ_i / (λ_i + κ)`` (conservation: ``Σ_i L_i = n − δ/κ``),
* overfitting coefficient:     ``E₀ = n / (n − Σ_i L_i²)``,
* test MSE:                     ``E₀ (Σ_i (1 − L_i)² ‖v_i‖² + O ε²)``,
* train MSE:                    ``(δ / (n κ))² · test MSE``,

where an MSE is the mean over points of the squared error summed over the ``O`` outputs
(no ½). The test MSE measures ``f̂`` against the noiseless target plus fresh noise, i.e.
it includes the ``O ε²`` floor.

Eigensystems: :func:`eigensystem` estimates one from a kernel matrix on a large sample
(the sample then stands for the distribution), and :func:`sphere_eigenvalues` computes
the exact spectrum of a dot-product kernel on the hypersphere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import eval_gegenbauer, gammaln, roots_jacobi

from learnmech.errors import InputError


@dataclass(frozen=True)
class Prediction:
    """Eigenlearning's predictions at one ``(n, ridge)``.

    ``learnabilities`` has one entry per eigenvalue; ``target_learnability`` is
    ``Σ L_i ‖v_i‖² / Σ ‖v_i‖²``.
    """

    n: int
    ridge: float
    kappa: float
    learnabilities: np.ndarray
    overfitting: float
    test_mse: float
    train_mse: float
    target_learnability: float


def effective_regularization(eigenvalues: np.ndarray, n: int, ridge: float = 0.0) -> float:
    """``κ > 0`` solving ``Σ_i λ_i/(λ_i + κ) + δ/κ = n``.

    At zero ridge a solution needs more than ``n`` positive eigenvalues (otherwise the
    kernel can interpolate any ``n`` points exactly and ``κ → 0``: raises ``InputError``).
    """
    lam = np.asarray(eigenvalues, dtype=float)
    lam = lam[lam > 0]
    if n < 1:
        raise InputError("n", n, "a positive number of samples")
    if ridge < 0:
        raise InputError("ridge", ridge, "a ridge ≥ 0")
    if ridge == 0 and lam.size <= n:
        raise InputError(
            "n", n, f"fewer samples than positive eigenvalues ({lam.size}) at zero ridge"
        )

    def excess(log_kappa: float) -> float:
        kappa = math.exp(log_kappa)
        return float(np.sum(lam / (lam + kappa)) + ridge / kappa - n)

    lo, hi = math.log(lam.min() * 1e-30 + 1e-300), math.log(lam.sum() + ridge + 1.0)
    while excess(lo) < 0:  # pragma: no cover - only for extreme spectra
        lo -= 20
    return math.exp(brentq(excess, lo, hi, xtol=1e-14, rtol=1e-13, maxiter=500))


def predict(
    eigenvalues: np.ndarray,
    coefficients: np.ndarray,
    n: int,
    ridge: float = 0.0,
    noise: float = 0.0,
) -> Prediction:
    """Eigenlearning's predictions (see the module docstring).

    Args:
        eigenvalues: ``λ_i`` (any order), shape ``(M,)``.
        coefficients: ``v_i``, shape ``(M,)`` or ``(M, O)``.
        n: number of training samples.
        ridge: ``δ ≥ 0``.
        noise: standard deviation ``ε`` of the label noise per output.
    """
    lam = np.asarray(eigenvalues, dtype=float)
    v = np.asarray(coefficients, dtype=float).reshape(lam.shape[0], -1)
    power = (v**2).sum(1)
    kappa = effective_regularization(lam, n, ridge)
    learn = np.where(lam > 0, lam / (lam + kappa), 0.0)
    e0 = n / (n - np.sum(learn**2))
    test = e0 * (np.sum((1 - learn) ** 2 * power) + v.shape[1] * noise**2)
    train = (ridge / (n * kappa)) ** 2 * test
    total = power.sum()
    return Prediction(
        n=n, ridge=ridge, kappa=kappa, learnabilities=learn, overfitting=float(e0),
        test_mse=float(test), train_mse=float(train),
        target_learnability=float(np.sum(learn * power) / total) if total > 0 else float("nan"),
    )


def learning_curve(
    eigenvalues: np.ndarray,
    coefficients: np.ndarray,
    ns: list[int],
    ridge: float = 0.0,
    noise: float = 0.0,
) -> list[Prediction]:
    """:func:`predict` at each ``n`` in ``ns``."""
    return [predict(eigenvalues, coefficients, n, ridge, noise) for n in ns]


def eigensystem(kernel: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and target coefficients from a kernel matrix on ``M`` sample points.

    The sample stands for the distribution (uniform over its points): eigenvalues are
    those of ``K/M``, eigenfunctions ``φ_i = √M u_i`` (orthonormal under the uniform
    measure) and ``v_i = ⟨φ_i, y⟩ = u_iᵀ y / √M``. ``kernel`` is ``(M, M)``, ``targets``
    ``(M,)`` or ``(M, O)``. Returns ``λ`` (descending, ``(M,)``) and ``v`` (``(M, O)``).
    """
    m = kernel.shape[0]
    evals, evecs = torch.linalg.eigh(kernel.double() / m)
    evals, evecs = evals.flip(0), evecs.flip(1)
    y = targets.double().reshape(m, -1)
    coeffs = evecs.T @ y / math.sqrt(m)
    return evals.clamp_min(0.0).cpu().numpy(), coeffs.cpu().numpy()


def sphere_eigenvalues(
    kernel: Callable[[np.ndarray], np.ndarray], dim: int, degrees: int, points: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Exact spectrum of a dot-product kernel ``K(x, x') = k(xᵀx')`` on the unit sphere
    ``S^{dim−1}`` with its uniform measure (Funk–Hecke).

    The eigenfunctions are the spherical harmonics of degree ``ℓ``; all ``N(dim, ℓ)`` of
    them share the eigenvalue ::

        λ_ℓ = Γ(d/2) / (√π Γ((d−1)/2)) ∫_{−1}^{1} k(t) P_ℓ(t) (1 − t²)^{(d−3)/2} dt

    with ``P_ℓ`` the Gegenbauer polynomial of index ``(d−2)/2`` normalised to
    ``P_ℓ(1) = 1``. ``kernel`` maps an array of ``t`` to ``k(t)``. Returns ``λ_ℓ`` and
    multiplicities ``N(dim, ℓ)`` for ``ℓ = 0 … degrees − 1`` (Gauss–Jacobi quadrature with
    ``points`` nodes).
    """
    if dim < 2:
        raise InputError("dim", dim, "an input dimension ≥ 2")
    alpha = (dim - 3) / 2
    t, w = roots_jacobi(points, alpha, alpha)
    kt = np.asarray(kernel(t), dtype=float)
    log_norm = gammaln(dim / 2) - 0.5 * math.log(math.pi) - gammaln((dim - 1) / 2)
    lams, mults = [], []
    for ell in range(degrees):
        if dim == 2:
            p = np.cos(ell * np.arccos(t))
        else:
            g = (dim - 2) / 2
            p = eval_gegenbauer(ell, g, t) / eval_gegenbauer(ell, g, 1.0)
        lams.append(math.exp(log_norm) * float(np.sum(w * kt * p)))
        mults.append(_multiplicity(dim, ell))
    return np.array(lams), np.array(mults)


def _multiplicity(dim: int, ell: int) -> int:
    """Number of linearly independent spherical harmonics of degree ``ℓ`` on ``S^{d−1}``."""
    if dim == 2:
        return 1 if ell == 0 else 2
    return math.comb(ell + dim - 1, dim - 1) - math.comb(ell + dim - 3, dim - 1)
