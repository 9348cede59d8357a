"""Batch size and learning rate: scaling rules and the critical batch size.

**Scaling rules** (the SDE view of SGD; Goyal et al. 2017, Li et al. 2019, Malladi et al.
2022). Multiplying the batch size by ``k``, SGD follows the same trajectory *in units of
examples seen* when the learning rate is multiplied by ``k`` (linear rule), as long as
the gradient noise dominates (``B ≪ B_noise``) and ``η`` is small. Adam follows the same
trajectory under the *square-root* rule ``η → √k η``, ``1 − β₁ → k(1 − β₁)``,
``1 − β₂ → k(1 − β₂)``, ``ε → ε/√k`` (Malladi et al. 2022, Definition 4.2).

**Critical batch size** (McCandlish et al. 2018). For a quadratic loss with Hessian ``H``,
gradient ``G`` and per-example gradient covariance ``Σ``, one SGD step with batch ``B`` and
its best learning rate lowers the loss by ``ΔL_max / (1 + B_noise/B)`` with
``B_noise = tr(HΣ)/(GᵀHG)`` (``= B_simple = tr Σ / |G|²`` when ``H ∝ I``). Summing over
a run, the steps and examples needed to reach a target loss obey

    S(B) = S_min (1 + B_crit/B),   E(B) = B·S(B) = E_min (1 + B/B_crit),
    (S/S_min − 1)(E/E_min − 1) = 1,   B_crit = E_min / S_min,

where ``B_crit`` is ``B_noise`` averaged over the steps of the large-batch run (each step
of that run contributes its ``B_noise``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, TypeVar

import numpy as np
from scipy.optimize import minimize_scalar

from learnmech.errors import InputError


class ScalableRule(Protocol):
    """The optimizer settings a scaling rule reads and rewrites (a
    :class:`learnmech.system.LearningRule` is one): plain numbers, validated on rebuild."""

    @property
    def optimizer(self) -> str: ...
    @property
    def lr(self) -> float: ...
    @property
    def steps(self) -> int: ...
    @property
    def batch_size(self) -> int | None: ...
    @property
    def betas(self) -> tuple[float, float]: ...
    @property
    def eps(self) -> float: ...
    def model_dump(self) -> dict[str, Any]: ...
    @classmethod
    def model_validate(cls, obj: Any) -> Self: ...


R = TypeVar("R", bound=ScalableRule)


def scaled_rule(rule: R, k: float, kind: str) -> R:
    """``rule`` with its batch size multiplied by ``k`` under a scaling rule.

    ``kind="linear"``: ``η → kη``. ``kind="sqrt"``: Malladi et al.'s square-root rule,
    ``η → √k η`` and, for Adam, ``1 − β → k(1 − β)``, ``ε → ε/√k``. Steps are divided by
    ``k`` (rounded), so both runs see the same number of examples. The result is
    ``rule``'s own type, rebuilt (and so validated) from its fields with those changes.
    """
    if rule.batch_size is None:
        raise InputError("learning_rule.batch_size", None, "a batch size to scale")
    if kind not in ("linear", "sqrt"):
        raise InputError("kind", kind, "'linear' or 'sqrt'")
    changes: dict[str, object] = {
        "batch_size": round(rule.batch_size * k),
        "steps": round(rule.steps / k),
        "lr": rule.lr * (k if kind == "linear" else k**0.5),
    }
    if kind == "sqrt" and rule.optimizer == "adam":
        b1, b2 = rule.betas
        betas = (1 - k * (1 - b1), 1 - k * (1 - b2))
        if min(betas) < 0:
            raise InputError("k", k, f"at most {1 / (1 - min(b1, b2)):.3g} for betas {rule.betas}")
        changes |= {"betas": betas, "eps": rule.eps / k**0.5}
    return type(rule).model_validate(rule.model_dump() | changes)


def steps_to_target(batch: Sequence[float] | np.ndarray, s_min: float, b_crit: float) -> np.ndarray:
    """``S(B) = S_min (1 + B_crit/B)``."""
    return s_min * (1 + b_crit / np.asarray(batch, dtype=float))


@dataclass(frozen=True)
class ParetoFit:
    """``S(B) = s_min (1 + b_crit/B)`` fitted to measured ``(B, S)``; ``rms_log`` is the
    root-mean-square residual of ``log S``."""

    s_min: float
    b_crit: float
    rms_log: float

    @property
    def e_min(self) -> float:
        """``E_min = S_min · B_crit``: the fewest examples (the small-batch limit)."""
        return self.s_min * self.b_crit


def fit_pareto(
    batch: Sequence[float] | np.ndarray, steps: Sequence[float] | np.ndarray
) -> ParetoFit:
    """Least-squares fit of ``log S = log S_min + log(1 + B_crit/B)``.

    For a given ``B_crit`` the best ``log S_min`` is the mean residual, so the fit is a
    one-dimensional search over ``log B_crit`` (bounded to ``[min B / 10⁴, max B · 10⁴]``).
    """
    b = np.asarray(batch, dtype=float)
    s = np.asarray(steps, dtype=float)
    if b.shape != s.shape or b.size < 3 or not (np.all(b > 0) and np.all(s > 0)):
        raise InputError(
            "pareto",
            list(zip(b.tolist(), s.tolist(), strict=False)),
            "at least three (batch, steps) pairs, all positive",
        )
    log_s = np.log(s)

    def residual(log_b_crit: float) -> np.ndarray:
        shape = np.log1p(np.exp(log_b_crit) / b)
        return log_s - shape - np.mean(log_s - shape)

    lo, hi = np.log(b.min()) - 4 * np.log(10), np.log(b.max()) + 4 * np.log(10)
    grid = np.linspace(lo, hi, 400)
    start = grid[int(np.argmin([np.sum(residual(g) ** 2) for g in grid]))]
    step = grid[1] - grid[0]
    best = minimize_scalar(
        lambda g: float(np.sum(residual(g) ** 2)),
        bounds=(max(lo, start - step), min(hi, start + step)),
        method="bounded",
    )
    log_b_crit = float(best.x)
    shape = np.log1p(np.exp(log_b_crit) / b)
    s_min = float(np.exp(np.mean(log_s - shape)))
    rms = float(np.sqrt(np.mean(residual(log_b_crit) ** 2)))
    return ParetoFit(s_min, float(np.exp(log_b_crit)), rms)


def first_crossing(
    steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray, target: float
) -> float:
    """First step at which ``values`` falls to ``target``, interpolating ``log values``
    linearly between measurements; ``inf`` if it never does."""
    v = np.asarray(values, dtype=float)
    t = np.asarray(steps, dtype=float)
    below = np.nonzero(np.isfinite(v) & (v <= target))[0]
    if below.size == 0:
        return float("inf")
    i = int(below[0])
    if i == 0 or not np.isfinite(v[i - 1]) or v[i - 1] <= 0:
        return float(t[i])
    a, b = np.log(v[i - 1]), np.log(v[i])
    frac = (a - np.log(target)) / (a - b) if a != b else 1.0
    return float(t[i - 1] + frac * (t[i] - t[i - 1]))


def hyperbola_rms(
    batch: Sequence[float] | np.ndarray, steps: Sequence[float] | np.ndarray, b_crit: float
) -> tuple[float, float]:
    """``(S_min, rms)`` of measured ``(B, S)`` about ``S_min (1 + B_crit/B)`` with
    ``B_crit`` given: ``log S_min`` is the mean of ``log S − log(1 + B_crit/B)`` and
    ``rms`` the root-mean-square of what is left. ``B_crit = inf`` is perfect scaling,
    ``S ∝ 1/B`` (``S_min`` is then 0 and the amplitude ``S·B`` is not returned)."""
    b = np.asarray(batch, dtype=float)
    log_s = np.log(np.asarray(steps, dtype=float))
    shape = -np.log(b) if math.isinf(b_crit) else np.log1p(b_crit / b)
    offset = float(np.mean(log_s - shape))
    rms = float(np.sqrt(np.mean((log_s - shape - offset) ** 2)))
    return (0.0 if math.isinf(b_crit) else math.exp(offset)), rms
