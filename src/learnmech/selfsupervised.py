"""A linear self-supervised model trained by gradient descent (Simon et al. 2023).

Two views ``x_a = x + ξ_a``, ``x_b = x + ξ_b`` of each of ``n`` Gaussian inputs ``x`` with
variances ``spectrum`` (independent isotropic noise ``ξ`` of std ``noise``) define the
symmetrized cross-correlation ``Γ = (X_aᵀX_b + X_bᵀX_a)/(2n)`` ``(d, d)``. Embeddings
``f(x) = W x``, ``W`` ``(e, d)``, are trained by full-batch GD on ``L = ‖WΓWᵀ − I‖_F²``:
``W ← W − η · 4 (C − I) W Γ`` with ``C = WΓWᵀ`` ``(e, e)``, in float64. The eigenvalues of
``C`` are the strengths ``c_j`` of the modes whose theory :mod:`learnmech.theory.stepwise`
gives. The trainer has no two-view objective, so this loop trains the model directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from learnmech.errors import InputError
from learnmech.probes.stepwise import Staircase, top_energy


@dataclass(frozen=True)
class TwoViewProblem:
    """The model's data and start: ``cross`` is ``Γ`` ``(d, d)``; ``gamma`` ``(e,)`` and
    ``v`` ``(d, e)`` its top ``e`` eigenpairs, descending; ``w0`` the initial ``W`` ``(e, d)``."""

    cross: Tensor
    gamma: Tensor
    v: Tensor
    w0: Tensor


def two_view_problem(spectrum: Sequence[float], embed: int, scale: float, seed: int,
                     n: int = 4000, noise: float = 0.3) -> TwoViewProblem:
    """Draw the two views and ``W₀ = scale · G`` (``G`` standard Gaussian), seeded by ``seed``."""
    if not 0 < embed <= len(spectrum):
        raise InputError("embed", embed, f"an embedding dimension from 1 to {len(spectrum)}")
    g = torch.Generator().manual_seed(seed)
    d = len(spectrum)
    x = (torch.randn(n, d, generator=g, dtype=torch.float64)
         * torch.tensor(spectrum, dtype=torch.float64).sqrt())
    xa = x + noise * torch.randn(n, d, generator=g, dtype=torch.float64)
    xb = x + noise * torch.randn(n, d, generator=g, dtype=torch.float64)
    cross = (xa.T @ xb + xb.T @ xa) / (2 * n)
    gamma, v = torch.linalg.eigh(cross)
    w0 = scale * torch.randn(embed, d, generator=g, dtype=torch.float64)
    return TwoViewProblem(cross, gamma.flip(0)[:embed], v.flip(1)[:, :embed], w0)


def train_linear_ssl(problem: TwoViewProblem, lr: float, horizon: float, every: int = 5
                     ) -> Staircase:
    """GD from ``problem.w0`` to time ``horizon`` (``round(horizon/lr)`` steps), recorded
    every ``every`` steps: the loss ``‖C − I‖²``, the eigenvalues of ``C`` (descending, the
    mode strengths, target 1), and the top-direction energy share of each update of ``W``
    between records. The levels are ``e, e − 1, …, 0`` (the loss with ``k`` modes learned)."""
    if lr <= 0 or horizon <= 0 or every < 1:
        raise InputError("lr, horizon, every", (lr, horizon, every),
                         "a positive step, a positive horizon and every ≥ 1")
    cross, w = problem.cross, problem.w0.clone()
    embed = w.shape[0]
    eye = torch.eye(embed, dtype=torch.float64)
    times, losses, strengths, tops = [], [], [], []
    previous = w.clone()
    for k in range(round(horizon / lr) + 1):
        c = w @ cross @ w.T
        if k % every == 0:
            times.append(k * lr)
            losses.append(float((c - eye).pow(2).sum()))
            strengths.append(torch.linalg.eigvalsh(c).flip(0).numpy())
            if k:
                tops.append(top_energy(w - previous))
            previous = w.clone()
        w = w - lr * 4 * (c - eye) @ w @ cross
    return Staircase(np.asarray(times), np.asarray(losses), np.stack(strengths),
                     np.ones(embed), np.arange(embed, -1, -1, dtype=float), np.asarray(tops))
