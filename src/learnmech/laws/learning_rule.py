"""Theories of hyperparameters: learning rate, batch size and optimizer (paper §3.4).

Three laws about the learning rule, all on small MLPs on the bundled digits, each judged
on a measured number against the theory's:

* ``gradient-flow-time``: at small learning rates only τ = η·steps matters, so a step
  at η is worth η/η' steps at η' (the clock stretch that superposes the curves);
* ``linear-scaling-rule``: the rate that keeps the curve at batch kB is kη for SGD and
  √k·η for Adam (measured by interpolating between rates around the rule's);
* ``critical-batch-size``: the knee B_crit of the tuned front S(B) = S_min(1 + B_crit/B)
  equals the gradient noise scale B_simple.

Runs that differ only in seed or learning rate train together as vectorized ensembles
(:mod:`learnmech.ensemble`) and are stored like any other run; the searches and curve
comparisons are public in :mod:`learnmech.tuning`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from learnmech.ensemble import run_ensembles
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
from learnmech.system import MLP, Digits, LearningRule, System
from learnmech.theory import batch_size as theory
from learnmech.train import Schedule, Trajectory
from learnmech.tuning import log_loss_offset, matched_multiplier, time_rescaling, tuned_front


def _digits_mlp(
    rule: LearningRule,
    *,
    width: int = 64,
    depth: int = 2,
    n_train: int = 1000,
    objective: str = "cross_entropy",
    seed: int = 0,
) -> System:
    return System(
        architecture=MLP(width=width, depth=depth),
        data=Digits(n_train=n_train, n_test=0),
        objective=objective,
        learning_rule=rule,
        seed=seed,
    )


def _runs(
    ctx: LawContext,
    systems: Sequence[System],
    probes: Sequence[str],
    schedule: Schedule,
    label: str,
) -> list[Trajectory]:
    """Train (or read back) ``systems`` through the context's store, as ensembles."""
    report = None
    if ctx.on_progress is not None:
        on_progress = ctx.on_progress

        def report(done: int, total: int) -> None:
            on_progress(label, done, total)

    return run_ensembles(
        systems, probes, schedule, store=ctx.store, fresh=ctx.fresh, progress=report
    )


# ---- gradient-flow time -------------------------------------------------------------------
@dataclass(frozen=True)
class _FlowBudget:
    """Full-batch GD at ``lrs`` (descending, factor 2) on an MLP of ``width`` with MSE on
    ``examples`` digits, each to gradient-flow time ``τ = η·steps = 40``."""

    lrs: tuple[float, ...]
    width: int
    examples: int

    def describe(self) -> str:
        return (f"η = {self.lrs[0]:g} … {self.lrs[-1]:g} ({self.lrs[0] / self.lrs[-1]:g}×) to "
                f"τ = {_HORIZON:g}, width {self.width} on {self.examples} digits")


_HORIZON = 40.0
_FLOW_BUDGETS: dict[Budget, _FlowBudget] = {
    "quick": _FlowBudget(tuple(0.1 / 2**i for i in range(4)), 64, 500),
    "standard": _FlowBudget(tuple(0.1 / 2**i for i in range(5)), 64, 500),
    "full": _FlowBudget(tuple(0.1 / 2**i for i in range(6)), 256, 1000),
}
# Relative error of the time per step allowed. Quick: the clock stretch c* − 1 is 0.0077,
# 0.0032, 0.0010 at η = 0.1, 0.05, 0.025 (about ∝ η, the first-order correction of backward
# error analysis); 2 % is 2.5× the largest.
_FLOW_TOL = 0.02


def _clock_ratios(b: _FlowBudget, exponent: float) -> Prediction:
    """Time per step of η relative to the smallest η, ``(η/η_min)^exponent``."""
    ref = b.lrs[-1]
    return Prediction({f"η={lr:g}": (lr / ref) ** exponent for lr in b.lrs[:-1]})


@register
class GradientFlowTime(JudgedLaw):
    id = "gradient-flow-time"
    strand = "hyperparameters"
    claim = (
        "For full-batch gradient descent at small learning rates, the loss depends on η and "
        "the number of steps only through τ = η·steps: one step at η advances the training "
        "curve of a smaller rate η' by η/η' of its steps."
    )
    reference = "site E17; Barrett & Dherin 2021 (backward error analysis)"
    regime = (
        "Full batch, ηλ_max well below 2 (no edge-of-stability oscillation), learning rates "
        "spanning 8× (quick), 16× or 32×, each compared with the smallest, which stands in "
        "for gradient flow. MLP 64-10, MSE (with ½) on 500 digits, τ up to 40, 41 points "
        "per curve. The time per step is measured by stretching a curve's clock τ by the "
        "factor c* that puts it on the smallest η's curve (mean log-loss offset 0 over its "
        "points with τ ≤ 32); the claim predicts c* = 1. The departures measured are first "
        "order in η (under 1 % at η = 0.1), so the tolerance of 2 % holds only where ηλ_max "
        "is small; at η ≥ 0.3 GD leaves gradient flow (catapult, edge of stability)."
    )
    control = (
        "The same curves judged against the step count as the clock: one step at any η "
        "advances the curve as one step at η_min (time per step independent of η)."
    )
    control_theory = "steps, not η·steps, as the time"
    budgets: ClassVar[dict[str, str]] = {k: b.describe() for k, b in _FLOW_BUDGETS.items()}

    def measure(self, budget: Budget, ctx: LawContext) -> Measurement:
        """``clock``: per ``"η=…"`` (all but the smallest) the measured time per step
        relative to the smallest η, ``(η/η_min)·c*`` with ``c*`` the stretch of its clock
        τ = η·steps that puts its curve on the smallest η's (:func:`time_rescaling`);
        ``curves``: ``(τ, loss)`` per η."""
        b = _FLOW_BUDGETS[budget]
        return ctx.cached((self.id, b), lambda: self._measure(b, ctx))

    @staticmethod
    def _measure(b: _FlowBudget, ctx: LawContext) -> Measurement:
        curves, run_ids = {}, []
        for lr in b.lrs:
            rule = LearningRule(optimizer="gd", lr=lr, steps=round(_HORIZON / lr))
            system = _digits_mlp(rule, width=b.width, n_train=b.examples, objective="mse")
            (traj,) = _runs(ctx, [system], ["loss"], Schedule("linear", 41), f"GD η={lr:g}")
            run_ids.append(traj.run_id)
            series = traj["train_loss"]
            loss = series.array() if traj.status == "completed" else np.full(1, math.nan)
            curves[lr] = (np.asarray(series.steps, dtype=float)[: loss.size] * lr, loss)
        t_ref, y_ref = curves[b.lrs[-1]]
        clock = {f"η={lr:g}": lr / b.lrs[-1] * time_rescaling(t_ref, y_ref, *curves[lr])
                 for lr in b.lrs[:-1]}
        notes = "clock stretch c*: " + ", ".join(
            f"η={lr:g} {clock[f'η={lr:g}'] * b.lrs[-1] / lr:.4f}" for lr in b.lrs[:-1])
        return Measurement({"clock": clock, "curves": curves}, run_ids, notes)

    def predict(self, budget: Budget) -> Prediction:
        """τ = η·steps: a step at η is η/η_min steps at η_min."""
        return _clock_ratios(_FLOW_BUDGETS[budget], 1.0)

    def control_prediction(self, budget: Budget) -> Prediction:
        return _clock_ratios(_FLOW_BUDGETS[budget], 0.0)

    def judge(self, measurement: Measurement, prediction: Prediction) -> Evidence:
        clock = measurement["clock"]
        criteria = [
            Criterion(f"{key}: |measured time per step / predicted − 1| (measured "
                      f"{clock[key]:.4g}, predicted {pred:.4g}, in steps of the smallest η)",
                      abs(clock[key] / pred - 1.0), _FLOW_TOL)
            for key, pred in prediction.values.items()
        ]
        fig = Figure("Loss against τ = η·step, full-batch GD", "gradient-flow time τ = η·step",
                     "training loss", yscale="log")
        for lr, (t, loss) in measurement["curves"].items():
            fig.curves.append(Curve(f"η={lr:g}", t.tolist(), loss.tolist(), "measured",
                                    f"η={lr:g}"))
        keys = list(prediction.values)
        etas = [float(k.split("=")[1]) for k in keys]
        per_step = Figure("Time per step relative to the smallest η", "learning rate η",
                          "steps of η_min per step", xscale="log", yscale="log")
        per_step.curves += [
            Curve("predicted", etas, [prediction[k] for k in keys], "theory", "clock"),
            Curve("measured", etas, [clock[k] for k in keys], "measured", "clock"),
        ]
        return Evidence(criteria, [fig, per_step])


# ---- linear scaling rule -------------------------------------------------------------------
@dataclass(frozen=True)
class _RuleBudget:
    """SGD (B = 4, η = 0.02) scaled by ``sgd_ks`` and Adam (B = 1, η = 3·10⁻⁴, β =
    ``betas``) by ``adam_ks`` on ``examples`` digits for 4 epochs, each scaled run also
    at its rule's rate times each of ``multipliers``; curves are means over ``seeds``."""

    seeds: int
    examples: int
    sgd_ks: tuple[int, ...]
    adam_ks: tuple[int, ...]
    betas: tuple[float, float]
    multipliers: tuple[float, ...] = (0.8, 1.0, 1.25)

    def describe(self) -> str:
        return (f"SGD k ≤ {self.sgd_ks[-1]}, Adam k ≤ {self.adam_ks[-1]}, rates × "
                f"{', '.join(f'{c:g}' for c in self.multipliers)}, {self.examples} digits, "
                f"{self.seeds} seeds")


_RULE_BUDGETS: dict[Budget, _RuleBudget] = {
    "quick": _RuleBudget(3, 200, (2, 4, 8), (2, 4), (0.99, 0.999)),
    "standard": _RuleBudget(5, 400, (2, 4, 8, 16), (2, 4), (0.99, 0.999)),
    "full": _RuleBudget(8, 1000, (2, 4, 8, 16), (2, 4, 8), (0.995, 0.9995)),
}
_RULE_EPOCHS = 4
# Relative error of the matched rate allowed. Quick, three seeds: SGD 0.010, 0.012, 0.013 at
# k = 2, 4, 8 (per-seed spread under 0.8 %), Adam 0.018 at k = 2 (spread 1.6 %).
_RULE_TOL = {"SGD": 0.05, "Adam": 0.05}
# The square-root rule is an SDE approximation, first order in k(1 − β₁): judged where
# k(1 − β₁) ≤ 0.02; at k = 4 (0.04) the matched rate is 7.5 % above √k·η (quick), measured
# and reported but outside the regime.
_ADAM_VALID = 0.02


def _rule_bases(b: _RuleBudget) -> dict[str, LearningRule]:
    return {
        "SGD": LearningRule(optimizer="sgd", lr=0.02, batch_size=4,
                            steps=_RULE_EPOCHS * b.examples // 4),
        "Adam": LearningRule(optimizer="adam", lr=3e-4, batch_size=1, betas=b.betas,
                             steps=_RULE_EPOCHS * b.examples),
    }


def _rule_keys(b: _RuleBudget) -> list[tuple[str, int]]:
    """The (optimizer, k) judged: every SGD k, the Adam k within the rule's regime."""
    adam = [k for k in b.adam_ks if k * (1 - b.betas[0]) <= _ADAM_VALID + 1e-12]
    return [("SGD", k) for k in b.sgd_ks] + [("Adam", k) for k in adam]


def _rate_ratios(b: _RuleBudget, exponent: dict[str, float]) -> Prediction:
    """η_k / η_1 = k^exponent per optimizer, keyed ``"<optimizer> k=<k>"``."""
    return Prediction({f"{opt} k={k}": float(k) ** exponent[opt] for opt, k in _rule_keys(b)})


@register
class LinearScalingRule(JudgedLaw):
    id = "linear-scaling-rule"
    strand = "hyperparameters"
    claim = (
        "Below the critical batch size, the learning rate at which SGD with batch kB follows "
        "the training-loss curve (against examples seen) of batch B is kη (the linear "
        "scaling rule), and for Adam, with 1−β → k(1−β) and ε → ε/√k, it is √k·η (the "
        "square-root rule)."
    )
    reference = "Goyal et al. 2017; Li, Malladi & Arora 2021; Malladi et al. 2022"
    regime = (
        "Gradient noise dominates: k·B far below the critical batch size (B_crit ≈ 200 for "
        "this task, see critical-batch-size) and small η. SGD: B = 4, η = 0.02, k ≤ 8 (16 at "
        "standard); Adam: B = 1, η = 3·10⁻⁴, β = (0.99, 0.999), judged where k(1 − β₁) ≤ "
        "0.02 (k = 2; k = 4 is measured and reported: 7.5 % above √k·η at quick, the rule's "
        "first-order error). MLP 64-10 on 200 digits (quick), cross-entropy, 4 epochs. Each "
        "scaled run is also trained at its rule's rate × 0.8 and × 1.25; the matched rate "
        "is where the mean log-loss offset from the k = 1 curve at equal examples seen "
        "(seed-mean curves, 21 points) crosses 0, on a line in log η through the three."
    )
    control = (
        "The same matched rates judged against the rules swapped: the square-root rule "
        "η ∝ √k for SGD (Krizhevsky 2014) and the linear rule η ∝ k for Adam."
    )
    control_theory = "square-root rule for SGD, linear rule for Adam"
    budgets: ClassVar[dict[str, str]] = {k: b.describe() for k, b in _RULE_BUDGETS.items()}

    def measure(self, budget: Budget, ctx: LawContext) -> Measurement:
        """``ratio``: per key ``"<optimizer> k=<k>"`` the measured η_k/η_1, the rule's rate
        times the matched multiplier of the seed-mean curves; ``seed ratios``: the same per
        seed, ``(seeds,)``; ``curves``: examples seen and seed-mean loss per run."""
        b = _RULE_BUDGETS[budget]
        return ctx.cached((self.id, b), lambda: self._measure(b, ctx))

    @staticmethod
    def _measure(b: _RuleBudget, ctx: LawContext) -> Measurement:
        run_ids: list[str] = []

        def curves(rule: LearningRule, label: str) -> tuple[np.ndarray, np.ndarray]:
            """Examples seen ``(points,)`` and losses ``(seeds, points)``."""
            systems = [_digits_mlp(rule, n_train=b.examples, seed=s) for s in range(b.seeds)]
            trajs = _runs(ctx, systems, ["loss"], Schedule("linear", 21), label)
            run_ids.extend(t.run_id for t in trajs)
            assert rule.batch_size is not None
            x = np.asarray(trajs[0]["train_loss"].steps, dtype=float) * rule.batch_size
            y = np.array([t["train_loss"].array() if t.status == "completed"
                          else np.full(x.shape, math.nan) for t in trajs])
            return x, y

        ratio, seed_ratio, drawn = {}, {}, {}
        for opt, base in _rule_bases(b).items():
            x_ref, y_ref = curves(base, f"{opt} k=1")
            drawn[f"{opt} k=1"] = (x_ref, y_ref.mean(0))
            kind = "linear" if opt == "SGD" else "sqrt"
            for k in (b.sgd_ks if opt == "SGD" else b.adam_ks):
                rule = theory.scaled_rule(base, k, kind)
                mean_off, seed_off = [], []
                for c in b.multipliers:
                    x, y = curves(rule.model_copy(update={"lr": rule.lr * c}),
                                  f"{opt} k={k} ×{c:g}")
                    mean_off.append(log_loss_offset(x_ref, y_ref.mean(0), x, y.mean(0)))
                    seed_off.append([log_loss_offset(x_ref, y_ref[s], x, y[s])
                                     for s in range(b.seeds)])
                    if c == 1.0:
                        drawn[f"{opt} k={k}"] = (x, y.mean(0))
                key = f"{opt} k={k}"
                ratio[key] = rule.lr / base.lr * matched_multiplier(b.multipliers, mean_off)
                seed_ratio[key] = np.array([
                    rule.lr / base.lr * matched_multiplier(b.multipliers, offs)
                    for offs in np.array(seed_off).T])
        notes = "matched η_k/η_1: " + ", ".join(f"{k} {v:.4g}" for k, v in ratio.items())
        return Measurement({"ratio": ratio, "seed ratios": seed_ratio, "curves": drawn},
                           run_ids, notes)

    def predict(self, budget: Budget) -> Prediction:
        """η_k/η_1 = k for SGD, √k for Adam (:func:`learnmech.theory.batch_size.scaled_rule`)."""
        return _rate_ratios(_RULE_BUDGETS[budget], {"SGD": 1.0, "Adam": 0.5})

    def control_prediction(self, budget: Budget) -> Prediction:
        return _rate_ratios(_RULE_BUDGETS[budget], {"SGD": 0.5, "Adam": 1.0})

    def judge(self, measurement: Measurement, prediction: Prediction) -> Evidence:
        ratio = measurement["ratio"]
        criteria = [
            Criterion(f"{key}: |measured η_k/η_1 / predicted − 1| (measured {ratio[key]:.4g}, "
                      f"predicted {pred:.4g})", abs(ratio[key] / pred - 1.0),
                      _RULE_TOL[key.split(" ")[0]])
            for key, pred in prediction.values.items()
        ]
        rates = Figure("Learning rate that matches the k = 1 curve", "batch multiplier k",
                       "η_k / η_1", xscale="log", yscale="log")
        for opt in ("SGD", "Adam"):
            keys = [key for key in prediction.values if key.startswith(opt)]
            ks = [float(key.split("=")[1]) for key in keys]
            rates.curves += [
                Curve(f"{opt} predicted", [1.0, *ks], [1.0, *(prediction[k] for k in keys)],
                      "theory", opt),
                Curve(f"{opt} measured", ks, [ratio[k] for k in keys], "measured", opt),
            ]
        loss = Figure("Training loss against examples seen, rule-scaled runs",
                      "examples seen", "training loss", yscale="log")
        for key, (x, y) in measurement["curves"].items():
            loss.curves.append(Curve(key, x.tolist(), y.tolist(), "measured", key))
        return Evidence(criteria, [rates, loss])


# ---- critical batch size -------------------------------------------------------------------
@dataclass(frozen=True)
class _BatchBudget:
    """SGD at batch sizes ``batches`` with the rate tuned on ``lrs`` (MLP of ``width`` on
    1000 digits), steps to the target averaged over ``seeds``."""

    batches: tuple[int, ...]
    lrs: tuple[float, ...]
    width: int
    seeds: tuple[int, ...]

    def describe(self) -> str:
        return (f"B = {self.batches[0]} … {self.batches[-1]} ({len(self.batches)} sizes), "
                f"{len(self.lrs)} learning rates (factor "
                f"{self.lrs[1] / self.lrs[0]:.3g}), width {self.width}, "
                f"{len(self.seeds)} seed{'s' if len(self.seeds) > 1 else ''}")


_BATCH_BUDGETS: dict[Budget, _BatchBudget] = {
    "quick": _BatchBudget((4, 16, 64, 256), tuple(2.0**e for e in range(-5, 3)), 32,
                          (0, 1, 2, 3)),
    "standard": _BatchBudget((4, 8, 16, 32, 64, 128, 256), tuple(2.0**e for e in range(-5, 4)),
                             32, tuple(range(16))),
    "full": _BatchBudget((2, 4, 8, 16, 32, 64, 128, 256),
                         tuple(2.0 ** (e / 2) for e in range(-12, 7)), 32, tuple(range(48))),
}
_TARGET = 0.1  # training cross-entropy to reach
_RATIO = "B_crit / B_simple"
# Seed spread of the fitted B_crit / B_simple at quick, seeds pooled four at a time: 0.990,
# 1.138, 0.946 (seeds 0–3, 4–7, 8–11; sd 0.10; single seeds 0.59–1.13); 2.5 sd. A fourth
# group, seeds 12–15, measured later, gives 0.664, outside it (sd of the four 0.20): at
# quick the verdict depends on the seed draw. At standard (16 seeds) 1.005, 0.889, 0.861
# (seeds 0–15, 16–31, 32–47; sd 0.08): the same tolerance.
_RATIO_TOL = 0.25
# RMS of log S about the predicted hyperbola at quick: 0.040, 0.045, 0.057 (the same three
# groups); the factor-2 rate grid alone moves a tuned S by up to 6 % (log 0.06).
_HYPERBOLA_RMS = 0.10


@register
class CriticalBatchSize(JudgedLaw):
    id = "critical-batch-size"
    strand = "hyperparameters"
    claim = (
        "With the learning rate tuned at each batch size, the steps needed to reach a target "
        "loss follow S(B) = S_min(1 + B_crit/B), and B_crit equals the gradient noise scale "
        "B_simple = tr Σ/|G|² measured along the large-batch run."
    )
    reference = "McCandlish, Kaplan, Amodei et al. 2018"
    regime = (
        "SGD without momentum, learning rate tuned on a grid of factor-2 steps at each batch "
        "size (its optimum must be interior to the grid), target training loss 0.1 (cross-"
        "entropy) for an MLP of width 32 on 1000 digits, batch sizes up to 256, steps to the "
        "target averaged over four seeds (quick) or sixteen (standard). The prediction is "
        "B_simple (exact, over the whole training set) averaged over 11 steps of the tuned "
        "largest-batch runs up to the target, one run per seed: each step of that run "
        "contributes its B_noise to S(B) − S_min, and the derivation assumes H ∝ I, where "
        "B_noise = B_simple. The fitted B_crit / B_simple scatters between disjoint groups "
        "of four seeds (0.99, 1.14, 0.95, 0.66: sd 0.20, and the last group misses the 25 % "
        "tolerance, so the quick verdict depends on the seed draw) and by 8 % between groups "
        "of sixteen (whose mean, 0.92, suggests B_crit slightly below B_simple), so the check "
        "resolves B_crit to about 25 % at standard, not 10 %. The agreement depends on the "
        "batch range and the width: adding full-batch steps (B = 1000) flattens the front "
        "beyond B ≈ 256 (the step size is then limited by curvature, not noise) and gave "
        "B_crit / B_simple = 0.37 and 0.70; B up to 512 with one seed at width 64 missed by "
        "0.40, and width 64 with four seeds gave 0.85–1.73: all outside this regime."
    )
    control = (
        "The same front judged against perfect scaling (no critical batch size, the linear "
        "scaling rule at every batch): S ∝ 1/B, B_crit = ∞."
    )
    control_theory = "perfect scaling S ∝ 1/B (no critical batch size)"
    budgets: ClassVar[dict[str, str]] = {k: b.describe() for k, b in _BATCH_BUDGETS.items()}

    def measure(self, budget: Budget, ctx: LawContext) -> Measurement:
        """``batch``, ``steps`` (tuned, seed mean), ``lr``, ``interior``: the front, each
        ``(batches,)``; ``b_simple``: B_simple averaged over 11 steps of the tuned
        largest-batch run (stopped at the target); ``fit``: the hyperbola fitted."""
        b = _BATCH_BUDGETS[budget]
        return ctx.cached((self.id, b), lambda: self._measure(b, ctx))

    @staticmethod
    def _measure(b: _BatchBudget, ctx: LawContext) -> Measurement:
        run_ids: list[str] = []

        def system(batch: int, lr: float, steps: int, seed: int) -> System:
            rule = LearningRule(optimizer="sgd", lr=lr, batch_size=batch, steps=steps)
            return _digits_mlp(rule, width=b.width, seed=seed)

        def steps_at(batch: int, steps: int) -> np.ndarray:
            systems = [system(batch, lr, steps, s) for lr in b.lrs for s in b.seeds]
            trajs = _runs(ctx, systems, ["loss"], Schedule("linear", 61), f"B={batch}")
            run_ids.extend(t.run_id for t in trajs)
            return np.array([
                theory.first_crossing(t["train_loss"].steps, t["train_loss"].array(), _TARGET)
                if t.status == "completed" else math.inf for t in trajs
            ]).reshape(len(b.lrs), len(b.seeds))

        front = tuned_front(steps_at, b.batches, b.lrs)
        batch = np.array([p.batch for p in front], dtype=float)
        steps = np.array([p.steps for p in front])
        last = front[-1]
        b_simple = math.nan
        if math.isfinite(last.steps):
            trajs = _runs(ctx, [system(last.batch, last.lr, math.ceil(last.steps), s)
                                for s in b.seeds],
                          ["loss", "noise_scale"], Schedule("linear", 11), "noise scale")
            run_ids.extend(t.run_id for t in trajs)
            b_simple = float(np.mean([t["noise_scale"].array() for t in trajs]))
        ok = np.isfinite(steps)
        fit = (theory.fit_pareto(batch[ok], steps[ok]) if ok.sum() >= 3
               else theory.ParetoFit(math.nan, math.nan, math.nan))
        return Measurement(
            {"batch": batch, "steps": steps, "lr": np.array([p.lr for p in front]),
             "interior": np.array([p.interior for p in front]), "b_simple": b_simple,
             "fit": fit},
            run_ids,
            notes=(f"front (B, S, η*): "
                   f"{', '.join(f'({p.batch}, {p.steps:.1f}, {p.lr:g})' for p in front)}; "
                   f"fitted S_min = {fit.s_min:.3g}, B_crit = {fit.b_crit:.3g}; "
                   f"B_simple = {b_simple:.3g}"))

    def predict(self, budget: Budget) -> Prediction:
        """McCandlish et al.: B_crit = B_noise, which is B_simple when H ∝ I."""
        return Prediction({_RATIO: 1.0})

    def control_prediction(self, budget: Budget) -> Prediction:
        return Prediction({_RATIO: math.inf})

    def judge(self, measurement: Measurement, prediction: Prediction) -> Evidence:
        m = measurement
        batch, steps, fit = m["batch"], m["steps"], m["fit"]
        predicted = prediction[_RATIO] * m["b_simple"]
        ok = np.isfinite(steps)
        if ok.sum() >= 3 and math.isfinite(m["b_simple"]):
            s_min, rms = theory.hyperbola_rms(batch[ok], steps[ok], predicted)
        else:
            s_min, rms = math.nan, math.nan
        miss = abs(fit.b_crit / predicted - 1.0)
        criteria = [
            Criterion(f"|B_crit fitted / B_crit predicted − 1| (fitted {fit.b_crit:.4g}, "
                      f"predicted {predicted:.4g})", miss, _RATIO_TOL),
            Criterion("RMS residual of log S about S_min(1 + B_crit predicted/B)", rms,
                      _HYPERBOLA_RMS),
            # the measurement's validity: a rate at the grid's edge may not be the best one
            Criterion("batch sizes whose best η is at the grid's edge",
                      float(np.sum(~m["interior"])), 0),
        ]
        pareto = Figure("Batch-size Pareto front (η tuned per batch)",
                        "examples to target E = B·S", "steps to target S", xscale="log",
                        yscale="log")
        by_batch = Figure("Steps to target against batch size", "batch size B",
                          "steps to target S", xscale="log", yscale="log")
        pareto.curves.append(Curve("measured", (batch * steps)[ok].tolist(),
                                   steps[ok].tolist(), "measured", "front"))
        by_batch.curves.append(Curve("measured", batch[ok].tolist(), steps[ok].tolist(),
                                     "measured", "front"))
        dense = np.geomspace(batch.min() / 2, batch.max() * 2, 60)
        if math.isfinite(s_min) and math.isfinite(predicted):
            curve = theory.steps_to_target(dense, s_min, predicted)
            label = f"S_min(1 + B_crit/B), B_crit = {predicted:.0f}"
            pareto.curves.append(Curve(label, (dense * curve).tolist(), curve.tolist(),
                                       "theory", "prediction"))
            by_batch.curves.append(Curve(label, dense.tolist(), curve.tolist(), "theory",
                                         "prediction"))
        return Evidence(criteria, [pareto, by_batch])
