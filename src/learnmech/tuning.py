"""Learning-rate tuning per batch size: the tuned front of steps to a target loss.

McCandlish et al. (2018) measure, at each batch size ``B``, the fewest steps ``S(B)`` to
reach a target loss over a grid of learning rates; :func:`learnmech.theory.batch_size.
fit_pareto` then fits ``S(B) = S_min (1 + B_crit/B)`` to these points. This module does
the search, given a function that trains the grid at one batch size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from learnmech.errors import InputError


@dataclass(frozen=True)
class TunedPoint:
    """One batch size's best learning rate: ``steps`` to the target (seed mean; ``inf``
    when no rate reached it), the rate ``lr``, whether it is ``interior`` to the grid
    (not its first or last value) and the step ``budget`` the grid was trained for."""

    batch: int
    steps: float
    lr: float
    interior: bool
    budget: int


def tuned_front(
    steps_at: Callable[[int, int], np.ndarray],
    batches: Sequence[int],
    lrs: Sequence[float],
    start_steps: int = 1000,
    growth: float = 1.2,
    slack: int = 20,
    doublings: int = 4,
) -> list[TunedPoint]:
    """The fewest steps to a target at each batch size, the learning rate tuned on ``lrs``.

    ``steps_at(batch, budget)`` trains every rate of ``lrs`` (and every seed) for
    ``budget`` steps at ``batch`` and returns the steps at which each run reached the
    target, shape ``(len(lrs), seeds)`` (``inf``: not reached). Batches are visited from
    the smallest up. The smallest gets ``start_steps``; each larger one gets
    ``growth·S + slack`` of the previous best ``S`` (with the rate tuned, a larger batch
    needs no more steps). A grid in which no run reaches the target is retrained with
    twice the budget, at most ``doublings`` times. Per rate the steps are averaged over
    seeds (``inf`` if any seed missed), the best rate is their argmin.
    """
    if not batches or not lrs:
        raise InputError("batches, lrs", (list(batches), list(lrs)), "non-empty grids")
    front: list[TunedPoint] = []
    budget = start_steps
    for b in sorted(batches):
        for _ in range(doublings):
            grid = np.asarray(steps_at(b, budget), dtype=float)
            if grid.ndim != 2 or grid.shape[0] != len(lrs):
                raise InputError("steps_at", list(grid.shape), f"shape ({len(lrs)}, seeds)")
            steps = grid.mean(axis=1)
            if np.isfinite(steps).any():
                break
            budget *= 2
        j = int(np.argmin(steps))
        front.append(TunedPoint(b, float(steps[j]), float(lrs[j]), 0 < j < len(lrs) - 1,
                                budget))
        if math.isfinite(steps[j]):
            budget = math.ceil(growth * steps[j]) + slack
    return front


def log_loss_offset(x_ref: np.ndarray, y_ref: np.ndarray, x: np.ndarray, y: np.ndarray
                    ) -> float:
    """``mean log(y / y_ref(x))`` over the points of ``x`` after the first, ``y_ref``
    interpolated linearly in ``x`` (``x``, ``y``: shape ``(points,)``, ``x`` within
    ``x_ref``'s range): how far, in log loss, one training curve lies above another at
    equal progress (examples seen, or ``η·steps``). Negative: ``y`` is ahead."""
    ref = np.interp(np.asarray(x, dtype=float)[1:], x_ref, y_ref)
    return float(np.mean(np.log(np.asarray(y, dtype=float)[1:] / ref)))


def matched_multiplier(multipliers: Sequence[float], offsets: Sequence[float]) -> float:
    """The learning-rate multiplier ``c*`` at which a run's curve meets the reference.

    ``offsets[i]`` is :func:`log_loss_offset` of the run at ``multipliers[i]`` (shape
    ``(m,)``, m ≥ 2): a larger rate learns faster, so the offset falls with ``c``. A
    least-squares line ``offset = a + b·log c`` gives ``c* = exp(−a/b)`` (NaN when an
    offset is NaN or the line does not fall).
    """
    c = np.log(np.asarray(multipliers, dtype=float))
    d = np.asarray(offsets, dtype=float)
    if c.shape != d.shape or c.size < 2:
        raise InputError("multipliers", list(multipliers), "two or more, one per offset")
    if not np.all(np.isfinite(d)):
        return math.nan
    b, a = np.polyfit(c, d, 1)
    return float(np.exp(-a / b)) if b < 0 else math.nan


def time_rescaling(t_ref: np.ndarray, y_ref: np.ndarray, t: np.ndarray, y: np.ndarray,
                   bounds: tuple[float, float] = (0.8, 1.25)) -> float:
    """The factor ``c*`` by which a curve's clock must be stretched to lie on a reference.

    Curves ``(t, y)`` and ``(t_ref, y_ref)``, each ``(points,)`` with ``t`` increasing
    from 0, a loss falling with time. ``c*`` solves ``mean log(y_i / y_ref(c·t_i)) = 0``
    over the points after the first with ``t_i ≤ max t_ref / bounds[1]`` (so that
    ``c·t_i`` stays on the reference), ``y_ref`` interpolated linearly; searched in
    ``bounds`` (NaN when the root is not there or a value is NaN). ``c* = 1``: the two
    curves are the same function of ``t``.
    """
    from scipy.optimize import brentq

    t, y = np.asarray(t, dtype=float), np.asarray(y, dtype=float)
    keep = (t > 0) & (t <= np.max(t_ref) / bounds[1])
    if keep.sum() < 1 or not (np.all(np.isfinite(y[keep])) and np.all(np.isfinite(y_ref))):
        return math.nan
    ts, log_y = t[keep], np.log(y[keep])

    def offset(c: float) -> float:
        return float(np.mean(log_y - np.log(np.interp(c * ts, t_ref, y_ref))))

    lo, hi = offset(bounds[0]), offset(bounds[1])
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo * hi > 0:
        return math.nan
    return float(brentq(offset, *bounds, xtol=1e-10))
