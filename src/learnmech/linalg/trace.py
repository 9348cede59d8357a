"""Stochastic estimates of ``tr A`` and of the spectral density of a symmetric operator."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from learnmech.errors import InputError
from learnmech.linalg.lanczos import Basis, orthogonalize, tridiagonal
from learnmech.linalg.operators import SymmetricOperator, as_generator, random_vector


@dataclass
class TraceEstimate:
    """``value`` ± ``stderr`` (one standard error of the random part), from ``matvecs``."""

    value: float
    stderr: float
    matvecs: int

def hutchinson(op: SymmetricOperator, matvecs: int, *, seed: int | torch.Generator = 0,
               progress: Callable[[int, int], None] | None = None) -> TraceEstimate:
    """Hutchinson's estimate ``tr A ≈ (1/m) Σ_i z_iᵀ A z_i`` with Rademacher ``z_i``.

    Unbiased; its variance is ``2(‖A‖_F² − Σ_i A_ii²)/m``. ``stderr`` is the sample
    standard deviation of ``z_iᵀAz_i`` over ``√m`` (needs ``m ≥ 2``).
    ``progress(done, matvecs)`` is called after each product.
    """
    if matvecs < 2:
        raise InputError("matvecs", matvecs, "at least 2")
    gen = as_generator(seed)
    samples = []
    for i in range(matvecs):
        z = random_vector(op, gen, "rademacher")
        samples.append(float(z @ op.matvec(z)))
        if progress is not None:
            progress(i + 1, matvecs)
    x = np.asarray(samples)
    return TraceEstimate(float(x.mean()), float(x.std(ddof=1) / math.sqrt(matvecs)), matvecs)


def hutch_pp(op: SymmetricOperator, matvecs: int, *, seed: int | torch.Generator = 0,
             progress: Callable[[int, int], None] | None = None) -> TraceEstimate:
    """Hutch++ (Meyer, Musco, Musco & Woodruff 2021): ``tr A`` with ``m`` products.

    With ``s = m // 3``: ``Q`` = orthonormal basis of ``A S`` for a Rademacher sketch
    ``S`` (``s`` products); the top part ``tr(QᵀAQ)`` is exact (``s`` products); the rest
    ``tr((I−QQᵀ)A(I−QQᵀ))`` is Hutchinson's estimate with the remaining ``m − 2s``
    projected Rademacher probes. Error ``O(1/m)`` instead of Hutchinson's ``O(1/√m)`` when
    the spectrum decays. ``stderr`` is that of the Hutchinson part (needs ``m ≥ 6``).
    ``progress(done, total)`` is called after the sketch, the top part and each probe.
    """
    if matvecs < 6:
        raise InputError("matvecs", matvecs, "at least 6")
    gen = as_generator(seed)
    s = min(matvecs // 3, op.dim)
    sketch = torch.stack([op.matvec(random_vector(op, gen, "rademacher")) for _ in range(s)], 1)
    q, _ = torch.linalg.qr(sketch)
    rest = matvecs - 2 * s
    total = 2 * s + rest
    if progress is not None:
        progress(s, total)
    top = sum(float(q[:, i] @ op.matvec(q[:, i])) for i in range(q.shape[1]))
    if progress is not None:
        progress(2 * s, total)
    samples = []
    for i in range(rest):
        z = random_vector(op, gen, "rademacher")
        z = z - q @ (q.T @ z)
        samples.append(float(z @ op.matvec(z)))
        if progress is not None:
            progress(2 * s + i + 1, total)
    x = np.asarray(samples) if samples else np.zeros(1)
    stderr = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0
    return TraceEstimate(top + float(x.mean()), stderr, total)


# ---- spectral density ----------------------------------------------------------------


@dataclass
class SpectralDensity:
    """Stochastic Lanczos quadrature: ``nodes`` and ``weights``, both ``(probes, m)``.

    For each probe ``z`` (Rademacher, normalized) the Gauss quadrature with ``m`` nodes
    satisfies ``Σ_j w_j f(θ_j) = zᵀ f(A) z / zᵀz`` exactly for polynomials ``f`` of degree
    ``< 2m``; averaged over probes it estimates ``(1/dim) tr f(A)``, i.e. integrals
    against the spectral density ``ρ(t) = (1/dim) Σ_i δ(t − λ_i)``.
    """

    nodes: Tensor
    weights: Tensor

    def moment(self, p: int) -> float:
        """The estimate of ``(1/dim) tr A^p``."""
        return float((self.weights * self.nodes**p).sum(1).mean())

    def density(self, grid: Tensor, sigma: float) -> Tensor:
        """``ρ`` broadened by a Gaussian of width ``sigma``, on ``grid`` (float64)."""
        t = grid.double()[:, None, None]
        kernel = torch.exp(-0.5 * ((t - self.nodes[None]) / sigma) ** 2)
        kernel = kernel / (sigma * math.sqrt(2 * math.pi))
        return (kernel * self.weights[None]).sum(2).mean(1)


def spectral_density(
    op: SymmetricOperator,
    *,
    probes: int = 4,
    steps: int = 60,
    seed: int | torch.Generator = 0,
    progress: Callable[[int, int], None] | None = None,
) -> SpectralDensity:
    """SLQ (Lin, Saad & Yang 2016; Ghorbani, Krishnan & Xiao 2019): ``probes`` Lanczos
    runs of ``steps`` products each, with full reorthogonalization; the nodes of a run
    are the eigenvalues ``θ_j`` of its ``T`` and the weights the squared first
    components ``s_{1j}²`` of its eigenvectors. ``progress(done, probes)`` is called after
    each run."""
    if probes < 1 or steps < 1:
        raise InputError("probes/steps", (probes, steps), "positive integers")
    gen = as_generator(seed)
    steps = min(steps, op.dim)
    nodes, weights = [], []
    for probe in range(probes):
        q = random_vector(op, gen, "rademacher")
        q = q / q.norm()
        basis = Basis(op, steps)
        alpha: list[float] = []
        beta: list[float] = []
        for _ in range(steps):
            basis.append(q[:, None])
            w = op.matvec(q)
            alpha.append(float(q @ w))
            w = orthogonalize(w, basis.rows)
            beta.append(float(w.norm()))
            if beta[-1] <= 1e-10 * max(abs(a) for a in alpha):
                break  # invariant subspace: the quadrature is exact for this probe
            q = w / beta[-1]
        theta, s = torch.linalg.eigh(tridiagonal(alpha, beta))
        pad = steps - len(alpha)  # short runs get zero-weight nodes
        nodes.append(torch.cat([theta, theta.new_zeros(pad)]))
        weights.append(torch.cat([s[0] ** 2, theta.new_zeros(pad)]))
        if progress is not None:
            progress(probe + 1, probes)
    return SpectralDensity(torch.stack(nodes), torch.stack(weights))

