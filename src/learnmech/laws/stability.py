"""Simple empirical laws of optimization: stability thresholds and the edge of stability
(Cohen et al. 2021, 2022, 2025; paper §3.3–3.4)."""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from learnmech.laws.base import (
    Budget,
    Criterion,
    Curve,
    Evidence,
    Figure,
    JudgedLaw,
    LawContext,
    Measurement,
    Prediction,
    register,
)
from learnmech.linalg import HessianOperator, lanczos
from learnmech.probes.iterates import Iterates
from learnmech.system import MLP, Digits, LearningRule, System, TeacherStudent
from learnmech.theory import stability
from learnmech.train import Schedule, Trajectory, objective, train

# ---- quadratic-stability -----------------------------------------------------------------


@dataclass(frozen=True)
class _QuadraticBudget:
    """The linear model on digits: training-set size, GD steps per run, and the learning
    rates in units of the threshold, ``c = ηS/2``, below and above it."""

    n_train: int
    steps: int
    below: tuple[float, ...] = (0.9, 0.98)
    above: tuple[float, ...] = (1.05, 1.1)

    def describe(self) -> str:
        return (f"linear model on {self.n_train} digits, {self.steps} GD steps at "
                f"η = c·2/S for c = {', '.join(f'{c:g}' for c in self.below + self.above)}")


_QUADRATIC_BUDGETS: dict[Budget, _QuadraticBudget] = {
    "quick": _QuadraticBudget(200, 300),
    "standard": _QuadraticBudget(1000, 300),
    "full": _QuadraticBudget(1000, 300),
}
_GROWTH_WINDOW = 20  # the loss growth is the geometric mean ratio over the last 20 steps
# Relative error of the measured growth vs (1 − ηS)² at quick: 6e-6 (c = 1.05) and 4e-4
# (c = 1.1, fewer steps before divergence leave more of the other directions' tail).
_GROWTH_TOL = 1e-3


def _linear_system(n_train: int, lr: float, steps: int) -> System:
    return System(
        architecture=MLP(depth=1, bias=True),
        data=Digits(n_train=n_train, n_test=0),
        learning_rule=LearningRule(optimizer="gd", lr=lr, steps=steps),
        dtype="float64",
    )


def _loss_growth(traj: Trajectory) -> float:
    """Geometric mean of the train loss ratio per step over the last recorded steps."""
    tail = traj["train_loss"].array()[-_GROWTH_WINDOW - 1:]
    return float(np.exp(np.mean(np.diff(np.log(tail))))) if tail.size > 1 else math.nan


@register
class QuadraticStability(JudgedLaw):
    id = "quadratic-stability"
    strand = "empirical"
    claim = (
        "Gradient descent on a quadratic multiplies the error along each Hessian eigenvector "
        "by 1 − ηλ per step, so it diverges iff the sharpness S exceeds 2/η, the loss then "
        "growing by (1 − ηS)² per step."
    )
    reference = "Cohen et al. 2021 (§2); classical"
    regime = (
        "Any quadratic loss under full-batch GD in float64 (exact up to round-off). Checked "
        "on a real quadratic: a linear model with bias trained by the trainer with MSE on "
        "digits, whose sharpness S is measured by the Lanczos probe, at η = c·2/S on both "
        "sides of the threshold; the growth is read once the top direction dominates."
    )
    control = (
        "The same runs judged against the gradient-flow (small-step) approximation, the "
        "wrong regime at these step sizes: the loss along the top direction decays by "
        "e^{−2ηS} per step and GD never diverges."
    )
    control_theory = "gradient flow: loss factor e^(−2ηS) per step, no threshold"
    budgets: ClassVar[dict[str, str]] = {k: b.describe() for k, b in _QUADRATIC_BUDGETS.items()}

    def measure(self, budget: Budget, ctx: LawContext) -> Measurement:
        """Per ``c`` in ``ratios = below + above``: the run at ``η = c·2/S`` (``runs``) and
        whether it diverged (``diverged``, 0/1); per ``c`` in ``above``, its loss growth
        per step (``growth``)."""
        b = _QUADRATIC_BUDGETS[budget]
        probe = ctx.run(_linear_system(b.n_train, 0.01, 0), ["sharpness"],
                        Schedule("linear", 2), label="linear model: sharpness")
        s = float(probe["sharpness"].values[0])  # type: ignore[arg-type]
        ratios = b.below + b.above
        runs = [ctx.run(_linear_system(b.n_train, c * 2 / s, b.steps), ["loss"],
                        Schedule("linear", b.steps + 1), label=f"linear model η = {c:g}·2/S")
                for c in ratios]
        return Measurement(
            {"ratios": np.array(ratios), "runs": runs, "above": np.array(b.above),
             "diverged": np.array([float(t.status == "diverged") for t in runs]),
             "growth": np.array([_loss_growth(t) for t in runs[len(b.below):]])},
            run_ids=[probe.run_id] + [t.run_id for t in runs],
            notes=f"sharpness of the linear model S = {s:.4f}")

    def predict(self, budget: Budget) -> Prediction:
        """GD's threshold in units of ``2/S`` (1) and ``(1 − ηS)² = (1 − 2c)²`` per ``c``."""
        c = np.array(_QUADRATIC_BUDGETS[budget].above)
        return Prediction({"threshold": 1.0, "growth": (1 - 2 * c) ** 2})

    def control_prediction(self, budget: Budget) -> Prediction:
        c = np.array(_QUADRATIC_BUDGETS[budget].above)
        return Prediction({"threshold": math.inf, "growth": np.exp(-4 * c)})

    def judge(self, measurement: Measurement, prediction: Prediction) -> Evidence:
        ratios, diverged = measurement["ratios"], measurement["diverged"]
        wrong = int(np.sum((ratios > prediction["threshold"]) != (diverged > 0)))
        above, growth = measurement["above"], measurement["growth"]
        criteria = [Criterion("runs whose divergence contradicts the threshold "
                              f"(η·S/2 = {prediction['threshold']:.3g})", wrong, 0)]
        criteria += [Criterion(f"η = {c:g}·2/S: relative error of the loss growth per step "
                               f"vs {p:.4g}", abs(g - p) / p, _GROWTH_TOL)
                     for c, g, p in zip(above, growth, prediction["growth"], strict=True)]
        fig = Figure("Linear model on digits: train loss at η = c·2/S", "step", "train loss",
                     yscale="log")
        for c, traj in zip(ratios, measurement["runs"], strict=True):
            loss = traj["train_loss"]
            steps = np.asarray(loss.steps, dtype=float)
            fig.curves.append(Curve(f"measured, c = {c:g}", steps.tolist(),
                                    loss.array().tolist(), "measured", f"c = {c:g}"))
        for c, p, traj in zip(above, prediction["growth"], measurement["runs"][-len(above):],
                              strict=True):
            loss = traj["train_loss"].array()
            k = np.asarray(traj["train_loss"].steps, dtype=float)
            fig.curves.append(Curve(f"theory ∝ {p:.3g}^k, c = {c:g}", k.tolist(),
                                    (loss[-1] * p ** (k - k[-1])).tolist(), "theory",
                                    f"c = {c:g}"))
        notes = ", ".join(f"c = {c:g}: growth {g:.5g}" for c, g in zip(above, growth,
                                                                      strict=True))
        return Evidence(criteria, [fig], notes=notes)


# ---- edge of stability under GD -----------------------------------------------------------


@dataclass(frozen=True)
class _EdgeStats:
    """Summary of one sharpness trajectory against a threshold ``edge``."""

    initial: float  # S(0) / edge
    peak: float  # max S / edge
    onset: int  # first measured step with S ≥ 0.95 × its median over the window
    median: float  # median S/edge over the window
    low: float  # min S/edge over the window
    high: float  # max S/edge over the window
    loss_drop: float  # mean loss of the last 5 points / loss at onset


_WINDOW = 0.4  # the last 40 % of training is judged


def _edge_stats(traj: Trajectory, edge: float, key: str = "sharpness",
                skip_first: bool = False) -> _EdgeStats:
    """Statistics of ``traj[key] / edge``, the window being the last :data:`_WINDOW` of
    the steps. The onset of the plateau is measured, not predicted: the first step where
    the sharpness reaches 0.95 × its median over the window (so the loss criterion does
    not depend on ``edge``). ``skip_first``: drop the first measurement (the
    preconditioned sharpness is NaN at step 0, before Adam has a preconditioner)."""
    first = 1 if skip_first else 0
    steps = np.asarray(traj[key].steps)[first:]
    s = traj[key].array()[first:] / edge
    loss = traj["train_loss"].array()[first:]
    last = steps >= (1 - _WINDOW) * steps[-1]
    median = float(np.nanmedian(s[last]))
    hit = int(np.argmax(s >= 0.95 * median))  # the window's own points reach it
    return _EdgeStats(float(s[0]), float(np.nanmax(s)), int(steps[hit]), median,
                      float(np.nanmin(s[last])), float(np.nanmax(s[last])),
                      float(np.mean(loss[-5:]) / loss[hit]))


@dataclass(frozen=True)
class _EdgeTolerances:
    """What "the sharpness hovers at the threshold" allows, in units of the threshold."""

    initial: float  # S(0) at most this (progressive sharpening from below)
    median: tuple[float, float]  # median over the window within these bounds
    band: tuple[float, float]  # every measurement of the window within these bounds
    loss_drop: float = 0.8  # end loss / loss at onset at most this (keeps decreasing)
    peak: float = 0.95  # max S at least this (the threshold is reached)


def _edge_criteria(label: str, st: _EdgeStats, tol: _EdgeTolerances) -> list[Criterion]:
    return [
        Criterion(f"{label}: initial sharpness / threshold (progressive sharpening from "
                  "below)", st.initial, tol.initial),
        Criterion(f"{label}: peak sharpness / threshold (reaches the threshold)", st.peak,
                  tol.peak, ">="),
        Criterion(f"{label}: median S/threshold, last 40 %, at least", st.median,
                  tol.median[0], ">="),
        Criterion(f"{label}: median S/threshold, last 40 %, at most", st.median,
                  tol.median[1]),
        Criterion(f"{label}: min S/threshold, last 40 %", st.low, tol.band[0], ">="),
        Criterion(f"{label}: max S/threshold, last 40 %", st.high, tol.band[1]),
        Criterion(f"{label}: mean loss at the end / loss at onset (keeps decreasing)",
                  st.loss_drop, tol.loss_drop),
    ]


def _sharpness_figure(title: str, runs: list[tuple[str, Trajectory, float]], key: str,
                      ylabel: str) -> Figure:
    fig = Figure(title, "step", ylabel)
    for label, traj, edge in runs:
        steps = [float(v) for v in traj[key].steps]
        fig.curves.append(Curve(f"threshold {label}", [steps[0], steps[-1]], [edge, edge],
                                "theory", label))
        fig.curves.append(Curve(f"measured {label}", steps, traj[key].array().tolist(),
                                "measured", label))
        fig.hlines.append((edge, f"threshold, {label}"))
    return fig


def _loss_figure(runs: list[tuple[str, Trajectory, float]]) -> Figure:
    fig = Figure("Train loss", "step", "train loss", yscale="log")
    for label, traj, _ in runs:
        fig.curves.append(Curve(label, [float(v) for v in traj["train_loss"].steps],
                                traj["train_loss"].array().tolist(), "measured", label))
    return fig


def _eos_system(budget: Budget, lr: float, optimizer: str = "gd", momentum: float = 0.9
                ) -> System:
    quick = budget == "quick"
    return System(
        architecture=MLP(width=32 if quick else 64, depth=3, activation="tanh",
                         init_scale=0.5),
        data=Digits(n_train=200 if quick else 1000, n_test=0),
        objective="mse",
        learning_rule=LearningRule.model_validate(
            {"optimizer": optimizer, "lr": lr, "steps": 400 if quick else 1000,
             "momentum": momentum}),
    )


class _EdgeOfStability(JudgedLaw):
    """An edge-of-stability law: runs of one optimizer at several η, whose sharpness
    (``key``) is judged against one threshold per run, ``Prediction["threshold"]``."""

    optimizer: ClassVar[str]
    key: ClassVar[str] = "sharpness"
    skip_first: ClassVar[bool] = False  # the first measurement of ``key`` is undefined
    probes: ClassVar[tuple[str, ...]] = ("loss", "sharpness")
    tolerances: ClassVar[_EdgeTolerances]
    title: ClassVar[str]

    def lrs(self, budget: Budget) -> tuple[float, ...]:
        raise NotImplementedError

    def threshold(self, lr: float) -> float:
        raise NotImplementedError

    def rival_threshold(self, lr: float) -> float:
        raise NotImplementedError

    def measure(self, budget: Budget, ctx: LawContext) -> Measurement:
        runs = [ctx.run(_eos_system(budget, lr, self.optimizer), list(self.probes),
                        Schedule("linear", 41), label=f"{self.optimizer} η={lr}")
                for lr in self.lrs(budget)]
        return Measurement({"lrs": self.lrs(budget), "runs": runs},
                           run_ids=[t.run_id for t in runs])

    def predict(self, budget: Budget) -> Prediction:
        return Prediction({"threshold": np.array([self.threshold(lr)
                                                  for lr in self.lrs(budget)])})

    def control_prediction(self, budget: Budget) -> Prediction:
        return Prediction({"threshold": np.array([self.rival_threshold(lr)
                                                  for lr in self.lrs(budget)])})

    def judge(self, measurement: Measurement, prediction: Prediction) -> Evidence:
        criteria, runs, notes = [], [], []
        for lr, traj, edge in zip(measurement["lrs"], measurement["runs"],
                                  prediction["threshold"], strict=True):
            st = _edge_stats(traj, float(edge), self.key, self.skip_first)
            criteria += _edge_criteria(f"η={lr}", st, self.tolerances)
            runs.append((f"η={lr}", traj, float(edge)))
            notes.append(f"η={lr}: onset step {st.onset}, median S/threshold {st.median:.3f}, "
                         f"window range [{st.low:.2f}, {st.high:.2f}]")
        figs = [_sharpness_figure(self.title, runs, self.key, self.key.replace("_", " ")),
                _loss_figure(runs)]
        if self.key != "sharpness":
            figs.append(_sharpness_figure(
                "Raw sharpness λ_max(H), with GD's 2/η for reference",
                [(f"η={lr}", t, stability.threshold("gd", lr))
                 for lr, t in zip(measurement["lrs"], measurement["runs"], strict=True)],
                "sharpness", "sharpness"))
        return Evidence(criteria, figs, notes="; ".join(notes))


@register
class EdgeOfStabilityGD(_EdgeOfStability):
    id = "eos-gd"
    strand = "empirical"
    claim = (
        "Under full-batch GD the sharpness λ_max(∇²L) rises (progressive sharpening) until "
        "it reaches 2/η, then hovers at 2/η while the loss keeps decreasing over the long run."
    )
    reference = "Cohen, Kaur, Li, Kolter & Talwalkar 2021"
    regime = (
        "Full-batch GD, MSE on one-hot targets, tanh MLP (depth 3, init scale 0.5, so the "
        "initial sharpness lies well below 2/η) on digits; η large enough that 2/η is "
        "reached within the budget. Sharpness is measured at the GD iterates, which oscillate "
        "around the central flow (whose sharpness is 2/η), so it sits a few per cent above "
        "2/η; the first crossing overshoots and catapults."
    )
    control = (
        "The same runs judged against 1/η, the edge of monotone descent (where the per-step "
        "factor 1 − ηλ turns negative and the iterates start to oscillate), as the claim "
        "that GD's sharpness stops rising where oscillation begins."
    )
    control_theory = "edge of monotone descent 1/η"
    budgets: ClassVar[dict[str, str]] = {
        "quick": "200 digits, width 32, η = 0.5, 0.65, 0.8, 400 steps",
        "standard": "1000 digits, width 64, η = 0.3, 0.4, 0.5, 1000 steps",
        "full": "as standard",
    }
    optimizer = "gd"
    title = "Sharpness under GD with the thresholds 2/η"
    # Seeds 0–3 at the quick η: window medians 1.054–1.116 × 2/η (mean 1.074, sd 0.018),
    # window extremes 1.005 and 1.165, initial sharpness 0.38–0.70 × 2/η; the loss falls
    # to 0.58–0.68 of its value over the window alone.
    tolerances = _EdgeTolerances(initial=0.8, median=(1.0, 1.15), band=(0.95, 1.25))

    def lrs(self, budget: Budget) -> tuple[float, ...]:
        return (0.5, 0.65, 0.8) if budget == "quick" else (0.3, 0.4, 0.5)

    def threshold(self, lr: float) -> float:
        return stability.threshold("gd", lr)

    def rival_threshold(self, lr: float) -> float:
        return stability.threshold("gd", lr) / 2


@register
class EdgeOfStabilityMomentum(_EdgeOfStability):
    id = "eos-momentum"
    strand = "empirical"
    claim = (
        "Under full-batch heavy-ball GD with momentum β the sharpness rises until it reaches "
        "(2 + 2β)/η and then hovers there, not at GD's 2/η."
    )
    reference = "Cohen, Kaur, Li, Kolter & Talwalkar 2021 (appendix, momentum)"
    regime = (
        "Heavy ball as in PyTorch's SGD(momentum=0.9) (b ← βb + g, θ ← θ − ηb), full batch, "
        "MSE, the tanh MLP of eos-gd on digits, η below the first catapult's divergence "
        "(η = 1.0 diverges at n = 200, 0.5 at n = 1000). With momentum the network nearly "
        "interpolates, and the sharpness approaches (2 + 2β)/η from below in a saw-tooth."
    )
    control = (
        "The same runs judged against GD's threshold 2/η (a wrong theory for momentum): the "
        "sharpness sits near 1.9 × 2/η, far outside the band."
    )
    control_theory = "GD's threshold 2/η"
    budgets: ClassVar[dict[str, str]] = {
        "quick": "200 digits, width 32, β = 0.9, η = 0.6, 0.8, 400 steps",
        "standard": "1000 digits, width 64, β = 0.9, η = 0.3, 0.4, 1000 steps",
        "full": "as standard",
    }
    optimizer = "momentum"
    title = "Sharpness under heavy-ball momentum β = 0.9, thresholds (2 + 2β)/η"
    _BETA = 0.9
    # Seeds 0–3 at the quick η: window medians 0.919–1.000 × (2 + 2β)/η (mean 0.954, sd
    # 0.027; the saw-tooth approaches from below), window extremes 0.888 and 1.017,
    # initial sharpness 0.24–0.37 × (2 + 2β)/η.
    tolerances = _EdgeTolerances(initial=0.7, median=(0.88, 1.03), band=(0.85, 1.05))

    def lrs(self, budget: Budget) -> tuple[float, ...]:
        return (0.6, 0.8) if budget == "quick" else (0.3, 0.4)

    def threshold(self, lr: float) -> float:
        return stability.threshold("momentum", lr, self._BETA)

    def rival_threshold(self, lr: float) -> float:
        return stability.threshold("gd", lr)


@register
class EdgeOfStabilityAdam(_EdgeOfStability):
    id = "eos-adam"
    strand = "empirical"
    claim = (
        "Under full-batch Adam the preconditioned sharpness λ_max(P⁻¹H) rises until it "
        "reaches (2 + 2β₁)/((1 − β₁)η) (38/η at β₁ = 0.9) and hovers there."
    )
    reference = (
        "Cohen, Ghorbani, Krishnan, Agarwal, Medapati, Badura, Suo, Cardoze, Nado, Dahl & "
        "Gilmer 2022 (adaptive edge of stability)"
    )
    regime = (
        "Full-batch Adam (PyTorch's AdamW, no weight decay), β = (0.9, 0.999), ε = 1e-8, "
        "MSE, the tanh MLP of eos-gd on digits; P = (1 − β₁ᵗ)(√v̂ + ε) is Adam's current "
        "preconditioner (bias corrections included), so the threshold is exact on a "
        "quadratic with P frozen. The preconditioned sharpness is undefined at step 0 (no "
        "preconditioner yet): the progressive-sharpening check starts at the first "
        "measurement after it."
    )
    control = (
        "The same preconditioned sharpness judged against the threshold with the wrong β₁: "
        "β₁ = 0 (Adam without momentum, i.e. RMSprop), 2/η, as the claim that the "
        "preconditioner alone sets the edge."
    )
    control_theory = "the adaptive threshold at β₁ = 0 (RMSprop), 2/η"
    budgets: ClassVar[dict[str, str]] = {
        "quick": "200 digits, width 32, η = 0.01, 0.015, 400 steps",
        "standard": "1000 digits, width 64, η = 0.005, 0.01, 1000 steps",
        "full": "as standard",
    }
    optimizer = "adam"
    key = "preconditioned_sharpness"
    skip_first = True
    probes = ("loss", "sharpness", "preconditioned_sharpness")
    title = "Preconditioned sharpness under Adam, thresholds 38/η"
    _BETA1 = 0.9
    # Seeds 0–3 at the quick η: window medians 0.977–1.008 × 38/η (mean 0.995, sd 0.010),
    # window extremes 0.932 and 1.045, first preconditioned sharpness 0.26–0.57 × 38/η.
    tolerances = _EdgeTolerances(initial=0.7, median=(0.96, 1.04), band=(0.9, 1.1))

    def lrs(self, budget: Budget) -> tuple[float, ...]:
        return (0.01, 0.015) if budget == "quick" else (0.005, 0.01)

    def threshold(self, lr: float) -> float:
        return stability.threshold("adam", lr, self._BETA1)

    def rival_threshold(self, lr: float) -> float:
        return stability.threshold("adam", lr, 0.0)


# ---- central flow -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _CentralFlowBudget:
    """Seeds of the teacher–student task and the horizon (GD steps at the edge)."""

    seeds: tuple[int, ...]
    horizon: int

    def describe(self) -> str:
        seeds = ", ".join(str(s) for s in self.seeds)
        plural = "s" if len(self.seeds) > 1 else ""
        return f"seed{plural} {seeds}, {self.horizon} GD steps at the edge"


_CENTRAL_FLOW_BUDGETS: dict[Budget, _CentralFlowBudget] = {
    "quick": _CentralFlowBudget((0,), 120),
    "standard": _CentralFlowBudget((0, 1), 320),
    "full": _CentralFlowBudget((0, 1, 2, 3), 320),
}
_FLOWS = ("central flow", "gradient flow")


@dataclass
class _EdgeRun:
    """GD at the edge of stability from step ``t0`` and both flows from its time average.

    Over the ``T = horizon + 1`` steps ``t0 + k``: ``w (T, P)`` GD's iterates, ``loss (T,)``
    their loss, ``wbar (T, P)`` and ``lbar (T,)`` the time averages of the ``2m`` iterates
    around ``t0 + k + ½``; ``flows`` the central flow and gradient flow integrated from
    ``wbar[0]`` (recorded at every GD step); ``lam2`` the second Hessian eigenvalue at the
    end of the central flow, in units of ``2/η``.
    """

    t0: int
    w: torch.Tensor
    loss: np.ndarray
    wbar: torch.Tensor
    lbar: np.ndarray
    flows: dict[str, stability.FlowPath]
    lam2: float

    @property
    def half(self) -> slice:
        """The judged window: the second half of the horizon."""
        return slice((self.loss.size - 1) // 2, self.loss.size)


# Seed 0 at quick: distance ratio 0.004, loss error 0.3 %, σ² error 0.3 % (the old law's
# record); the tolerances allow about ten times that for other seeds and horizons, and stay
# below the 10 % change the ladder must reject.
_DISTANCE_TOL, _AVG_LOSS_TOL, _SIGMA2_TOL = 0.05, 0.02, 0.05
_LAM2_MAX = 0.9  # the regime: one unstable direction (λ₂ well below 2/η)


@register
class CentralFlow(JudgedLaw):
    id = "central-flow"
    strand = "hyperparameters"
    claim = (
        "At the edge of stability with one unstable direction, GD's time-averaged trajectory "
        "follows the central flow dw/dt = −η[∇L + ½σ²∇S] (σ² = 2⟨−∇L, ∇S⟩/‖∇S‖² holding "
        "S = 2/η): the flow stays close to GD's time average where gradient flow drifts "
        "away, its σ² equals the variance of GD's oscillation along the top eigenvector, and "
        "L + σ²/η equals GD's time-averaged loss."
    )
    reference = "Cohen, Damian, Talwalkar, Kolter & Lee 2025 (central flows); Damian et al. 2022"
    regime = (
        "Full-batch GD (η = 1) at the edge of stability with a single unstable direction "
        "(λ₂ ≤ 0.9·2/η, checked as a criterion): a scalar-output tanh MLP (depth 3, width "
        "32) on a teacher–student task (200 Gaussian inputs, d = 16), float64. Both flows "
        "start at GD's time average (8 iterates) at step 80, after the first entry into the "
        "edge, and are integrated with Euler steps of ½ GD step (¼-step integration agreed "
        "to 3e-4 relative). The flows depend on that measured start, so they are integrated "
        "with the measurement; the prediction is the theory's factor on their σ² and "
        "L + σ²/η (1). Outside the regime: on 500 inputs λ₂ reaches 0.98·2/η and the "
        "one-direction flow loses its constraint; on 10-output digits three eigenvalues "
        "sit at 2/η and GD's variance is shared among them."
    )
    control = (
        "Gradient flow (σ² = 0) from the same start, judged by the same criteria: it drifts "
        "from GD by about the path length, and predicts neither the loss nor the oscillation."
    )
    control_theory = "gradient flow dw/dt = −η∇L (σ² = 0)"
    budgets: ClassVar[dict[str, str]] = {k: b.describe()
                                         for k, b in _CENTRAL_FLOW_BUDGETS.items()}
    _LR, _START, _HALF, _DT, _TOL = 1.0, 80, 4, 0.5, 1e-5

    def _system(self, seed: int, steps: int) -> System:
        return System(
            architecture=MLP(width=32, depth=3, activation="tanh", init_scale=0.5),
            data=TeacherStudent(d_in=16, d_out=1, teacher_width=8, n_train=200, n_test=0),
            learning_rule=LearningRule(optimizer="gd", lr=self._LR, steps=steps),
            seed=seed, dtype="float64",
        )

    def _edge_run(self, system: System, horizon: int) -> _EdgeRun:
        """Train GD keeping every iterate, average it, integrate both flows from there."""
        m, t0 = self._HALF, self._START
        iterates = Iterates()
        traj = train(system, [iterates], Schedule("linear", system.learning_rule.steps + 1))
        assert traj.model is not None and traj.data is not None
        w = torch.stack(iterates.params)
        loss = traj["iterates"].array()
        wbar = torch.stack([w[t0 + k - m + 1 : t0 + k + m + 1].mean(0)
                            for k in range(horizon + 1)])
        lbar = np.array([loss[t0 + k - m + 1 : t0 + k + m + 1].mean()
                         for k in range(horizon + 1)])
        start = copy.deepcopy(traj.model)
        torch.nn.utils.vector_to_parameters(wbar[0], start.parameters())
        data = (traj.data.x_train, traj.data.y_train)
        loss_fn = objective(system, traj.data)
        flows = {name: stability.central_flow(start, loss_fn, data, self._LR, horizon,
                                              dt=self._DT, tol=self._TOL,
                                              stabilize=name == "central flow")
                 for name in _FLOWS}
        end = copy.deepcopy(start)
        torch.nn.utils.vector_to_parameters(flows["central flow"].params[-1],
                                            end.parameters())
        pair = lanczos(HessianOperator(end, loss_fn, data), 2, tol=self._TOL, seed=0).values
        return _EdgeRun(t0, w[t0 : t0 + horizon + 1], loss[t0 : t0 + horizon + 1], wbar,
                        lbar, flows, float(pair[1]) * self._LR / 2)

    def measure(self, budget: Budget, ctx: LawContext) -> Measurement:
        """``runs``: seed → :class:`_EdgeRun` (GD kept in memory through ``ctx.cached``)."""
        b = _CENTRAL_FLOW_BUDGETS[budget]
        runs: dict[int, _EdgeRun] = {}
        for seed in b.seeds:
            system = self._system(seed, self._START + b.horizon + self._HALF + 1)
            key = (self.id, system.run_id, b.horizon, self._START, self._HALF, self._DT,
                   self._TOL)
            runs[seed] = ctx.cached(key, functools.partial(self._edge_run, system, b.horizon))
        return Measurement({"runs": runs})

    def predict(self, budget: Budget) -> Prediction:
        return self._factors("central flow")

    def control_prediction(self, budget: Budget) -> Prediction:
        return self._factors("gradient flow")

    @staticmethod
    def _factors(flow: str) -> Prediction:
        """The theory's factor (1) on the named flow's σ² and on its L + σ²/η."""
        return Prediction({f"{flow}: σ²": 1.0, f"{flow}: L + σ²/η": 1.0})

    def judge(self, measurement: Measurement, prediction: Prediction) -> Evidence:
        flow = next(iter(prediction.values)).split(": ")[0]
        k_sigma, k_loss = prediction[f"{flow}: σ²"], prediction[f"{flow}: L + σ²/η"]
        criteria: list[Criterion] = []
        notes: list[str] = []
        figures: list[Figure] = []
        for seed, run in measurement["runs"].items():
            path, half = run.flows[flow], run.half
            wf = torch.stack(path.params)
            x = ((run.w - wf) * torch.stack(path.top_vector)).sum(1).numpy()
            var_x = float(np.var(x[half]))
            sigma2 = k_sigma * float(np.mean(np.asarray(path.sigma2)[half]))
            avg_loss = k_loss * path.avg_loss
            travelled = (run.wbar - run.wbar[0]).norm(dim=1)[half]
            distance = float(((run.wbar - wf).norm(dim=1)[half] / travelled).max())
            label = f"seed {seed}, {flow}"
            criteria += [
                Criterion(f"{label}: max ‖w̄_GD − w_flow‖ / ‖w̄_GD − w̄_GD(0)‖, second half",
                          distance, _DISTANCE_TOL),
                Criterion(f"{label}: mean |{k_loss:.3g}·(L + σ²/η) − L̄_GD| / L̄_GD, second "
                          "half", float(np.mean(np.abs(avg_loss[half] - run.lbar[half])
                                                / run.lbar[half])), _AVG_LOSS_TOL),
                Criterion(f"{label}: |{k_sigma:.3g}·mean σ² − Var_GD(⟨w − w_flow, u⟩)| / Var, "
                          "second half", abs(sigma2 - var_x) / var_x, _SIGMA2_TOL),
                Criterion(f"seed {seed}: λ₂/(2/η) at the end of the central flow (one "
                          "unstable direction)", run.lam2, _LAM2_MAX),
            ]
            notes.append(f"seed {seed}: σ² = {sigma2:.4g} predicted, {var_x:.4g} measured; "
                         f"distance ratio {distance:.3g}; λ₂ = {run.lam2:.3f}·2/η")
            if not figures:
                figures = self._figures(run, flow, avg_loss, x)
        return Evidence(criteria, figures, notes="; ".join(notes))

    def _figures(self, run: _EdgeRun, flow: str, avg_loss: np.ndarray, x: np.ndarray
                 ) -> list[Figure]:
        t = np.arange(run.t0, run.t0 + run.loss.size, dtype=float) + 0.5
        ts, path = t.tolist(), run.flows[flow]
        loss_fig = Figure(f"Loss: GD, its time average and the {flow}", "step", "train loss",
                          yscale="log")
        loss_fig.curves += [
            Curve("GD (every step)", (t - 0.5).tolist(), run.loss.tolist(), "measured", "GD"),
            Curve("GD, time average", ts, run.lbar.tolist(), "measured", "GD average"),
            Curve(f"{flow}: L + σ²/η", ts, avg_loss.tolist(), "theory", "GD average"),
        ]
        dist = Figure(f"Distance of the {flow} from GD's time average", "step",
                      "‖w̄_GD − w_flow‖")
        dist.curves.append(Curve(flow, ts, (run.wbar - torch.stack(path.params)).norm(dim=1)
                                 .tolist(), "measured", flow))
        sharp = Figure(f"Sharpness along the {flow}", "step", "S = λ_max(∇²L)")
        sharp.curves.append(Curve(flow, ts, path.sharpness, "theory", flow))
        sharp.hlines.append((2 / self._LR, "2/η"))
        sigma = Figure(f"σ² of the {flow} vs GD's square oscillation along u", "step", "σ²")
        sigma.curves += [
            Curve(f"{flow}: σ²", ts, path.sigma2, "theory", "σ²"),
            Curve("GD ⟨w − w_flow, u⟩²", (t - 0.5).tolist(), (x**2).tolist(), "measured",
                  "σ²"),
        ]
        return [loss_fig, dist, sharp, sigma]
