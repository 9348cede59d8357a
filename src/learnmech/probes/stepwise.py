"""Instruments for stepwise (saddle-to-saddle) learning.

* :func:`effective_rank` of a matrix ``M`` with singular values ``σ``: ``exp(H(p))`` with
  ``p = σ/Σσ`` and ``H`` the Shannon entropy (Roy & Vetterli 2007): ``1`` for a rank-one
  matrix, ``r`` for ``r`` equal singular values.
* :class:`UpdateRank`: effective rank of each layer's weight *update* between
  consecutive measurements, ``ΔW_l = W_l(t_k) − W_l(t_{k−1})``, and the share of its
  energy in the top direction, ``σ₁²/Σσ²``. Stepwise learning makes these updates low rank.
* :class:`ResponseModes`: strengths of *any* network's input-output map along the modes
  of the task, ``s_α = u_αᵀ Σ_fx v_α`` with ``Σ_fx = (1/n) Σ_i f(x_i) x_iᵀ`` on the training
  set. With whitened inputs (``Σ_xx = I``) ``Σ_fx`` is the least-squares linear map of the
  network's outputs, so for a linear network these are its mode strengths
  (:class:`learnmech.probes.ModeStrengths`); for a nonlinear one, its linear part.
* :func:`rise_time` and :class:`Staircase`: readings of recorded series, the time a mode
  reaches half its target, how flat the loss is between steps, how low-rank each step is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from learnmech.errors import InputError
from learnmech.probes.base import Batch, LossFn, dataset
from learnmech.probes.hidden import as_network
from learnmech.probes.registry import register_probe


def effective_rank(m: Tensor) -> float:
    """Entropy effective rank ``exp(−Σ p_i log p_i)``, ``p = σ/Σσ`` (0 for a zero matrix)."""
    s = torch.linalg.svdvals(m.detach().double())
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s[s > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


def rise_time(t: Sequence[float] | np.ndarray, s: Sequence[float] | np.ndarray,
              level: float) -> float:
    """First time the series ``s(t)`` reaches ``level``, interpolated linearly between the
    samples (``t[0]`` if it starts there, NaN if it never does). ``t``, ``s``: ``(T,)``."""
    t, s = np.asarray(t, dtype=float), np.asarray(s, dtype=float)
    above = np.nonzero(s >= level)[0]
    if above.size == 0:
        return float("nan")
    i = int(above[0])
    if i == 0:
        return float(t[0])
    frac = (level - s[i - 1]) / (s[i] - s[i - 1])
    return float(t[i - 1] + frac * (t[i] - t[i - 1]))


@dataclass
class Staircase:
    """A stepwise run's record: times, loss, mode strengths and update low-rankness, with
    the loss levels between steps.

    Shapes: ``t``, ``loss`` ``(T,)``; ``strengths`` ``(T, K)`` (mode ``k`` grows towards
    ``targets[k]``, ``(K,)``); ``levels`` ``(K + 1,)``, the loss with ``0, 1, …, K`` modes
    learned; ``top`` ``(T − 1,)``, the least top-direction energy share over layers of the
    update from measurement ``i`` to ``i + 1``.
    """

    t: np.ndarray
    loss: np.ndarray
    strengths: np.ndarray
    targets: np.ndarray
    levels: np.ndarray
    top: np.ndarray

    def step_times(self) -> np.ndarray:
        """``(K,)``: the time each mode reaches half its target (:func:`rise_time`)."""
        return np.array([rise_time(self.t, self.strengths[:, k], target / 2)
                         for k, target in enumerate(self.targets)])

    def plateau_error(self) -> float:
        """Worst distance of the loss from the level ``L_k`` midway between measured steps
        ``k`` and ``k+1``, in units of the step height ``L_{k−1} − L_k`` (NaN if a step
        was not reached or there is only one)."""
        times = self.step_times()
        if len(times) < 2 or not np.all(np.isfinite(times)):
            return float("nan")
        errors = []
        for k in range(1, len(times)):
            loss = float(np.interp(0.5 * (times[k - 1] + times[k]), self.t, self.loss))
            errors.append(abs(loss - self.levels[k]) / (self.levels[k - 1] - self.levels[k]))
        return float(np.max(errors))

    def step_rank(self) -> float:
        """Least top-direction energy share of the update over the measurement interval in
        which each mode reaches half its target (1 = a rank-one update; NaN if a step
        was not reached)."""
        times = self.step_times()
        if not np.all(np.isfinite(times)):
            return float("nan")
        index = np.clip(np.searchsorted(self.t, times) - 1, 0, len(self.top) - 1)
        return float(np.min(self.top[index]))


def top_energy(m: Tensor) -> float:
    """``σ₁² / Σσ²``: the share of ``‖M‖_F²`` in the top singular direction (NaN if ``M = 0``)."""
    s = torch.linalg.svdvals(m.detach().double())
    total = s.pow(2).sum()
    return float(s[0] ** 2 / total) if total > 0 else float("nan")


@register_probe("update_rank")
class UpdateRank:
    """Low-rankness of the weight updates between consecutive measurements.

    Observables (from the second measurement on) ``update_rank.<l>`` (effective rank of
    ``ΔW_l``) and ``update_top.<l>`` (``σ₁²/Σσ²`` of ``ΔW_l``) for every layer ``l``.
    """

    name = "update_rank"

    def __init__(self) -> None:
        self._previous: list[Tensor] | None = None

    def start(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> None:
        self._previous = None

    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> dict[str, float]:
        now = [w.double().clone() for w in as_network(model).effective_weights()]
        out: dict[str, float] = {}
        if self._previous is not None:
            for l, (w, w0) in enumerate(zip(now, self._previous, strict=True)):
                out[f"update_rank.{l}"] = effective_rank(w - w0)
                out[f"update_top.{l}"] = top_energy(w - w0)
        self._previous = now
        return out


@register_probe("response_modes")
class ResponseModes:
    """Strengths ``|u_αᵀ Σ_fx v_α|`` of the network's map along the task's modes.

    Modes as in :meth:`learnmech.data.Dataset.modes` (grouped singular triplets of
    ``Σ_yx``, descending); a group's strengths are the singular values of ``U_gᵀ Σ_fx V_g``.
    Regression tasks only.
    """

    name = "response_modes"

    @torch.no_grad()
    def __call__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batch: Batch,
        optimizer: torch.optim.Optimizer,
        step: int,
    ) -> Tensor:
        d = dataset(batch, self.name)
        if d.task != "regression":
            raise InputError("probe", self.name, "a regression data set")
        x = d.x_train.double()
        sigma_fx = as_network(model)(d.x_train).double().T @ x / x.shape[0]
        parts = [
            torch.linalg.svdvals(u.to(x.device).T @ sigma_fx @ v.to(x.device))
            for _, u, v in d.modes()
        ]
        return torch.cat(parts)
