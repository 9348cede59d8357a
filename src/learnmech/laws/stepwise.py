"""Solvable settings carried over: stepwise (saddle-to-saddle) learning from small
initialization (Saxe et al. 2014; Simon et al. 2023; Atanasov et al. 2024)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from learnmech.laws._memo import RunMemo
from learnmech.laws.base import (
    Budget,
    Criterion,
    Curve,
    Evidence,
    Figure,
    Law,
    LawContext,
    register,
)
from learnmech.probes.hidden import linear_layers
from learnmech.probes.stepwise import top_energy
from learnmech.system import MLP, LearningRule, LinearTeacher, System
from learnmech.theory import dln
from learnmech.theory.stepwise import (
    ssl_initial_strengths,
    ssl_loss,
    ssl_mode_trajectory,
    ssl_time_to_learn,
)
from learnmech.train import Schedule, Trajectory, initial_state

_LAMBDAS = [2.0, 1.0, 0.5, 0.25]  # singular values of the teacher: factor-2 spacing
_SSL_SPECTRUM = [1.0, 0.5, 0.25, 0.125, 0.06, 0.03, 0.015, 0.008]  # input variances
_SMALL, _LARGE = {"mlp": 1e-3, "ssl": 1e-3}, {"mlp": 1.0, "ssl": 0.3}
_PLATEAU, _LOW_RANK, _T_ERR = 0.15, 0.8, {"mlp": 0.2, "ssl": 0.1}


def _seeds(budget: Budget) -> list[int]:
    return {"quick": [0], "standard": [0, 1, 2], "full": [0, 1, 2, 3, 4]}[budget]


@dataclass
class _Staircase:
    """What a stepwise run measured: times, loss, mode strengths and update ranks, with
    the plateau levels of the loss between steps and the predicted step times."""

    t: np.ndarray  # (T,)
    loss: np.ndarray  # (T,)
    strengths: np.ndarray  # (T, K): mode strength over time, target of mode k is targets[k]
    targets: np.ndarray  # (K,)
    levels: np.ndarray  # (K + 1,): loss with 0, 1, …, K modes learned
    top: np.ndarray  # (T − 1,) least top-direction energy share over layers, interval i→i+1
    predicted: np.ndarray | None  # (K,) predicted step times, None where theory does not apply

    def step_times(self) -> np.ndarray:
        """Measured time at which each mode reaches half its target (interpolated)."""
        out = []
        for k, target in enumerate(self.targets):
            s = self.strengths[:, k]
            above = np.nonzero(s >= target / 2)[0]
            if above.size == 0:
                out.append(np.nan)
            elif above[0] == 0:
                out.append(float(self.t[0]))
            else:
                i = int(above[0])
                frac = (target / 2 - s[i - 1]) / (s[i] - s[i - 1])
                out.append(float(self.t[i - 1] + frac * (self.t[i] - self.t[i - 1])))
        return np.asarray(out)

    def plateau_error(self) -> float:
        """Worst distance of the loss from the plateau level ``L_k`` midway between measured
        steps ``k`` and ``k+1``, in units of the step height ``L_{k−1} − L_k``."""
        times = self.step_times()
        worst = 0.0
        for k in range(1, len(times)):
            mid = 0.5 * (times[k - 1] + times[k])
            loss = float(np.interp(mid, self.t, self.loss))
            gap = self.levels[k - 1] - self.levels[k]
            worst = max(worst, abs(loss - self.levels[k]) / gap)
        return worst

    def step_rank(self) -> float:
        """Least top-direction energy share of the weight update over the measurement
        interval in which each mode reaches half height (1 = a rank-one update)."""
        times = self.step_times()
        index = np.clip(np.searchsorted(self.t, times) - 1, 0, len(self.top) - 1)
        return float(np.min(self.top[index]))


# ---- a small nonlinear network on a linear teacher ----------------------------------------
def _mlp_system(seed: int, scale: float) -> System:
    return System(
        architecture=MLP(width=32, depth=2, activation="tanh", bias=False, init_scale=scale),
        data=LinearTeacher(singular_values=_LAMBDAS, seed=seed),
        learning_rule=LearningRule(optimizer="gd", lr=0.02, steps=1250),
        seed=seed,
    )


def _mlp_initial_strengths(system: System) -> np.ndarray:
    """Effective initial mode strengths of the two-layer network (tanh ≈ identity near 0)."""
    model, _, data, _ = initial_state(system)
    w1, w2 = (layer.weight.detach() for layer in linear_layers(model))
    return np.concatenate([dln.effective_initial_strength(w1, w2, u, v)
                           for _, u, v in data.modes()])


def _mlp_staircase(traj: Trajectory) -> _Staircase:
    system = traj.system
    t = np.asarray(traj["response_modes"].steps, dtype=float) * system.learning_rule.lr
    lams = np.asarray(_LAMBDAS)
    levels = np.array([0.5 * np.sum(lams[k:] ** 2) for k in range(len(lams) + 1)])
    top = np.minimum(traj["update_top.0"].array(), traj["update_top.1"].array())
    s0 = _mlp_initial_strengths(system)
    predicted = None
    if np.all(s0 < lams / 2):
        predicted = np.array([dln.time_to_learn(lam, s, 2) for lam, s in zip(lams, s0,
                                                                               strict=True)])
    return _Staircase(t, traj["train_loss"].array(), traj["response_modes"].array(), lams,
                      levels, top, predicted)


def _mlp_theory_loss(stair: _Staircase, traj: Trajectory) -> np.ndarray:
    """``½ Σ_α (λ_α − s_α(t))²`` with each ``s_α`` on its deep-linear trajectory."""
    s0 = _mlp_initial_strengths(traj.system)
    s = np.stack([dln.mode_trajectory(lam, s, stair.t, 2) for lam, s in
                  zip(stair.targets, s0, strict=True)], axis=1)
    return 0.5 * np.sum((stair.targets - s) ** 2, axis=1)


# ---- a linear self-supervised model --------------------------------------------------------
_EMBED = 4


def _ssl_run(seed: int, scale: float, lr: float = 0.02, horizon: float = 30.0,
             every: int = 5) -> tuple[_Staircase, np.ndarray]:
    """GD on ``‖WΓWᵀ − I‖²`` (float64), ``W`` ``(4, 8)``, recorded every ``every`` steps.

    Two views of each of 4000 Gaussian inputs with variances :data:`_SSL_SPECTRUM` get
    independent isotropic noise (std 0.3); ``Γ`` is their symmetrized cross-correlation.
    The trainer has no two-view objective, so this loop trains the model directly.
    Returns the staircase and the theory's loss at the recorded times.
    """
    g = torch.Generator().manual_seed(seed)
    d, n = len(_SSL_SPECTRUM), 4000
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.tensor(_SSL_SPECTRUM).sqrt()
    xa = x + 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64)
    xb = x + 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64)
    cross = (xa.T @ xb + xb.T @ xa) / (2 * n)
    gamma, v = torch.linalg.eigh(cross)
    gamma, v = gamma.flip(0)[:_EMBED], v.flip(1)[:, :_EMBED]
    w = scale * torch.randn(_EMBED, d, generator=g, dtype=torch.float64)
    c0 = ssl_initial_strengths(w, v, gamma)
    eye = torch.eye(_EMBED, dtype=torch.float64)
    times, losses, strengths, tops = [], [], [], []
    previous = w.clone()
    for k in range(round(horizon / lr) + 1):
        c = w @ cross @ w.T
        if k % every == 0:
            times.append(k * lr)
            losses.append(float((c - eye).pow(2).sum()))
            # the eigenvalues of C, descending, are the strengths c_j of the modes
            strengths.append(torch.linalg.eigvalsh(c).flip(0).numpy())
            if k:
                tops.append(top_energy(w - previous))
            previous = w.clone()
        w = w - lr * 4 * (c - eye) @ w @ cross
    t = np.asarray(times)
    predicted = None
    if np.all(c0 < 0.5):
        predicted = np.array([ssl_time_to_learn(float(gj), cj)
                              for gj, cj in zip(gamma, c0, strict=True)])
    stair = _Staircase(t, np.asarray(losses), np.stack(strengths), np.ones(_EMBED),
                       np.arange(_EMBED, -1, -1, dtype=float), np.asarray(tops), predicted)
    theory = None
    if predicted is not None:
        theory = ssl_loss(np.stack([ssl_mode_trajectory(float(gj), cj, t)
                                    for gj, cj in zip(gamma, c0, strict=True)], axis=1))
    return stair, (theory if theory is not None else np.full_like(t, np.nan))


# ---- the law --------------------------------------------------------------------------------
def _criteria(family: str, stairs: list[_Staircase], time_tolerance: float | None
              ) -> list[Criterion]:
    """Plateau and low-rank criteria, and with a ``time_tolerance`` the comparison of the
    step times with the theory (left out where the theory does not apply: large init)."""
    crits = [
        Criterion(f"{family}: loss off its plateau level between steps (÷ step height)",
                  max(s.plateau_error() for s in stairs), _PLATEAU),
        Criterion(f"{family}: least top-direction energy share of the update in each step",
                  min(s.step_rank() for s in stairs), _LOW_RANK, ">="),
    ]
    if time_tolerance is not None:
        errors, disorder = [], 0
        for s in stairs:
            measured = s.step_times()
            assert s.predicted is not None
            errors.append(float(np.max(np.abs(measured - s.predicted) / s.predicted)))
            disorder += int(np.sum(np.diff(measured) <= 0))
        crits += [
            Criterion(f"{family}: worst relative error of step times vs linear theory",
                      max(errors), time_tolerance),
            Criterion(f"{family}: steps out of eigenvalue order", disorder, 0),
        ]
    return crits


@register
class StepwiseLearning(Law):
    id = "stepwise-learning"
    strand = "solvable"
    claim = (
        "From small initialization the loss descends in steps separated by plateaus, one "
        "eigenmode at a time with a low-rank weight update in each step, at the times and "
        "in the order (largest eigenvalue first) that the linear theory predicts: for a "
        "small tanh network on a linear teacher (deep-linear theory) and for a linear "
        "self-supervised model with a Barlow-Twins loss (Simon et al.'s theory)."
    )
    reference = "Saxe, McClelland & Ganguli 2014; Simon et al. 2023; Atanasov et al. 2024"
    regime = (
        "Full-batch GD with small steps (η·λ ≤ 0.04). Tanh network: width 32, no biases, "
        "init scale 1e-3, teacher singular values 2, 1, 0.5, 0.25 on whitened inputs; near "
        "zero tanh is linear, so the two-layer deep-linear theory predicts the step times "
        "(effective initial strengths from the initial weights, nothing fitted); tanh "
        "saturation makes the steps a few per cent late (10–15% with a singular value of 3), "
        "hence the 20% tolerance. Linear SSL: embedding dimension 4, 8 inputs with variances "
        "halving from 1, init scale 1e-3; each mode starts from the part of its "
        "initial embedding orthogonal to the modes learned before it (QR of W₀V), which "
        "predicts the step times within a few per cent (the naive ‖W₀v_j‖² misses the last "
        "step by a factor ~2). Plateau tolerance 15% of the step height; a step counts as "
        "low-rank when its update has ≥ 80% of its energy in one direction."
    )
    control = (
        "Large initialization (tanh network at init scale 1, SSL at 0.3): all modes are "
        "learned together, so the plateau and low-rank criteria must fail."
    )
    budgets: ClassVar[dict[str, str]] = {
        "quick": "one seed per model",
        "standard": "three seeds per model",
        "full": "five seeds per model",
    }

    def __init__(self) -> None:
        self._memo = RunMemo()

    def _mlp(self, ctx: LawContext, seed: int, scale: float) -> Trajectory:
        return self._memo.run(ctx, _mlp_system(seed, scale),
                              ["loss", "response_modes", "update_rank"],
                              Schedule("linear", 250), label=f"stepwise tanh init {scale}")

    def _evidence(self, budget: Budget, ctx: LawContext, large: bool) -> Evidence:
        which = _LARGE if large else _SMALL
        trajs = [self._mlp(ctx, seed, which["mlp"]) for seed in _seeds(budget)]
        mlp = [_mlp_staircase(t) for t in trajs]
        ssl = [_ssl_run(seed, which["ssl"]) for seed in _seeds(budget)]
        tag = f"init scale {which['mlp']:g} / {which['ssl']:g}"
        criteria = (_criteria("tanh network", mlp, None if large else _T_ERR["mlp"])
                    + _criteria("linear SSL", [s for s, _ in ssl],
                                None if large else _T_ERR["ssl"]))
        loss_fig = Figure(f"Staircase loss, tanh network ({tag})", "time t = η·step",
                          "training loss", yscale="log")
        loss_fig.curves.append(Curve("measured", mlp[0].t.tolist(), mlp[0].loss.tolist(),
                                     "measured", "loss"))
        ssl_fig = Figure(f"Staircase loss, linear SSL ({tag})", "time t = η·step",
                         "‖C − I‖²")
        ssl_fig.curves.append(Curve("measured", ssl[0][0].t.tolist(), ssl[0][0].loss.tolist(),
                                    "measured", "loss"))
        if not large:
            loss_fig.curves.append(Curve("deep-linear theory", mlp[0].t.tolist(),
                                         _mlp_theory_loss(mlp[0], trajs[0]).tolist(),
                                         "theory", "loss"))
            ssl_fig.curves.append(Curve("theory", ssl[0][0].t.tolist(), ssl[0][1].tolist(),
                                        "theory", "loss"))
        loss_fig.hlines = [(float(v), f"plateau {k}") for k, v in enumerate(mlp[0].levels[1:-1],
                                                                             start=1)]
        ssl_fig.hlines = [(float(v), f"plateau {k}") for k, v in
                          enumerate(ssl[0][0].levels[1:-1], start=1)]
        times = "; ".join(
            f"{name} seed {i}: measured {np.round(s.step_times(), 2).tolist()}"
            + (f", predicted {np.round(s.predicted, 2).tolist()}" if s.predicted is not None
               else "")
            for name, group in (("tanh", mlp), ("SSL", [s for s, _ in ssl]))
            for i, s in enumerate(group))
        return Evidence(criteria, [loss_fig, ssl_fig], [t.run_id for t in trajs],
                        notes=f"step times {times}; SSL runs trained directly (not stored)")

    def measure(self, budget: Budget, ctx: LawContext) -> Evidence:
        return self._evidence(budget, ctx, large=False)

    def measure_control(self, budget: Budget, ctx: LawContext) -> Evidence:
        return self._evidence(budget, ctx, large=True)
