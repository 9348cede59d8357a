"""Simple empirical laws: neural scaling laws and where their exponents come from.

* ``scaling-exponent-linear``: in linear and random-feature regression the exponents of
  the learning curves follow from the power laws of the data (Bordelon et al. 2020;
  Maloney et al. 2022).
* ``quanta-scaling``: power-law frequencies of discrete subtasks give power laws in
  parameters, steps and data with related exponents (Michaud et al. 2023).
* ``scaling-extrapolation``: a law fitted on the small runs of a real width × data sweep
  predicts the large ones (Hoffmann et al. 2022).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from learnmech.data.sparse_parity import MultitaskSparseParity, train_width_ensemble
from learnmech.fit import trajectory_frame
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
from learnmech.system import MLP, Digits, FashionMNIST, LearningRule, System
from learnmech.theory import quanta, scaling
from learnmech.train import Schedule

# ---- scaling-exponent-linear ------------------------------------------------------------

# (latent dimension M, seeds, smallest and largest n or N, number of sizes)
_LINEAR_BUDGET = {
    "quick": (2048, 20, 16, 128, 7),
    "standard": (4096, 40, 32, 256, 7),
    "full": (8192, 64, 64, 512, 9),
}
# (a, b): target power k^−a, eigenvalues k^−b; the first two on the source-limited branch
# α = a − 1 (a − 1 < 2b), the last on the capacity-limited branch α = 2b (a − 1 > 2b).
_LINEAR_TASKS = [(2.0, 2.0), (2.5, 2.0), (4.0, 1.25)]
# Pre-asymptotic corrections bias measured exponents by up to about 0.06 at these sizes
# (20–40 draws at M = 2048 and 4096, a ∈ {1.5, 2, 2.5}, b ∈ {1.5, 2, 2.5}; 0.04 at a = 4,
# b = 1.25). Steeper capacity-limited tasks are biased more (0.12 at a = 5, b = 1.5).
_EXPONENT_TOL = 0.10
# Largest log-deviation from a straight line at the quick budget: 0.12 (a = 4, b = 1.25).
_POWER_LAW_TOL = 0.15


def _linear_axes(a: float, b: float) -> tuple[str, ...]:
    """The learning curves the theory predicts for task ``(a, b)``: data scaling always,
    model scaling (random features) on the source-limited branch only."""
    return ("data", "model") if a - 1 < 2 * b else ("data",)


def _linear_exponents(exponent: Callable[[float, float], float]) -> Prediction:
    """``exponent(a, b)`` for every task and predicted axis, keyed ``"a=…, b=…: axis"``."""
    return Prediction({f"a={a:g}, b={b:g}: {axis}": exponent(a, b)
                       for a, b in _LINEAR_TASKS for axis in _linear_axes(a, b)})


@register
class ScalingExponentLinear(JudgedLaw):
    id = "scaling-exponent-linear"
    strand = "empirical"
    claim = (
        "In linear regression on data whose covariance eigenvalues fall as k^−b and whose "
        "target power per eigenmode falls as k^−a, the test error falls as a power law in "
        "the number of samples n (ridgeless) with exponent α = min(a − 1, 2b), and in the "
        "number of random features N (unlimited data) with α = a − 1 when a − 1 < 2b."
    )
    reference = "Bordelon, Canatar & Pehlevan 2020; Spigler et al. 2020; Maloney et al. 2022"
    regime = (
        "1 < a, b > 1, noiseless targets, Gaussian data and features, sizes well below the "
        "latent dimension M (n, N ≤ M/16) and above the first few modes; checked on both "
        "branches of min(a − 1, 2b). Errors are exact population expectations, averaged "
        "over independent draws of data, features and target signs."
    )
    control = (
        "The same learning curves judged against α = a − 1 for every curve: the source "
        "exponent alone, without the capacity limit 2b, which the capacity-limited task "
        "(a = 4, b = 1.25: a − 1 = 3 against 2b = 2.5) must reject."
    )
    control_theory = "source exponent a − 1 without the capacity limit"
    budgets = {
        "quick": "M = 2048, 20 draws, n and N from 16 to 128",
        "standard": "M = 4096, 40 draws, n and N from 32 to 256",
        "full": "M = 8192, 64 draws, n and N from 64 to 512",
    }

    def measure(self, budget: Budget, ctx: LawContext) -> Measurement:
        """Mean test error over draws, per task and axis (``"a=…, b=…: data"``), at
        ``sizes``."""
        m, seeds, lo, hi, points = _LINEAR_BUDGET[budget]
        sizes = np.unique(np.geomspace(lo, hi, points).round().astype(int))
        values: dict[str, Any] = {"sizes": sizes}
        with threadpool_limits(1, "blas"):  # small dense algebra: threads only contend
            for a, b in _LINEAR_TASKS:
                runs = [scaling.linear_learning_curves(m, a, b, sizes, s) for s in range(seeds)]
                for i, axis in enumerate(("data", "model")):
                    if axis in _linear_axes(a, b):
                        values[f"a={a:g}, b={b:g}: {axis}"] = np.mean([r[i] for r in runs],
                                                                      axis=0)
        return Measurement(values, notes=f"M = {m}, {seeds} draws, sizes {sizes.tolist()}")

    def predict(self, budget: Budget) -> Prediction:
        return _linear_exponents(scaling.linear_scaling_exponent)

    def control_prediction(self, budget: Budget) -> Prediction:
        return _linear_exponents(lambda a, b: a - 1.0)

    def judge(self, measurement: Measurement, prediction: Prediction) -> Evidence:
        sizes = measurement["sizes"]
        criteria: list[Criterion] = []
        figs = {axis: Figure(f"Test error vs {label}", label, "test error / Var(y)",
                             xscale="log", yscale="log")
                for axis, label in (("data", "samples n"), ("model", "random features N"))}
        compare = Figure("Measured vs predicted exponents", "predicted α", "measured α")
        notes = []
        for key, alpha in prediction.values.items():
            mean = measurement[key]
            measured, dev = scaling.power_law_exponent(sizes, mean)
            criteria += [
                Criterion(f"{key}: |α_measured − α_predicted| (α_pred = {alpha:.3g})",
                          abs(measured - alpha), _EXPONENT_TOL),
                Criterion(f"{key}: largest log-deviation from a power law", dev,
                          _POWER_LAW_TOL),
            ]
            anchor = np.exp(np.mean(np.log(mean)) + alpha * np.mean(np.log(sizes)))
            figs[key.rsplit(": ", 1)[1]].curves += [
                Curve(f"theory ∝ size^−{alpha:.3g} ({key})", sizes.tolist(),
                      (anchor * sizes.astype(float) ** -alpha).tolist(), "theory", key),
                Curve(f"measured ({key})", sizes.tolist(), mean.tolist(), "measured", key),
            ]
            compare.curves.append(Curve(key, [float(alpha)], [measured], "measured", key))
            notes.append(f"{key}: predicted {alpha:.3f}, measured {measured:.3f}")
        span = [min(prediction.values.values()) - 0.2, max(prediction.values.values()) + 0.2]
        compare.curves.append(Curve("measured = predicted", span, span, "theory", "identity"))
        return Evidence(criteria, [figs["data"], figs["model"], compare],
                        notes="; ".join(notes))


# ---- quanta-scaling ---------------------------------------------------------------------

_HUTTER_ALPHAS = (0.5, 1.0)
_HUTTER_TAU = 100  # sightings to learn a feature
_MSP_TASK = {"n_tasks": 50, "n_bits": 8, "k": 3, "alpha": 1.0}  # the steps run
_MSP_WIDTH_TASK = {"n_tasks": 50, "n_bits": 12, "k": 2, "alpha": 1.0}  # the width sweep
_STEPS_BATCH, _STEPS_LR, _STEPS_WIDTH = 128, 3e-3, 128
_WIDTH_LR = 1e-2
_LEARNED = 0.5  # a subtask counts as learned once its test loss is below 0.5 bit


@dataclass(frozen=True)
class _QuantaBudget:
    """The Hutter model's runs per α, features and sample range; the sparse-parity steps
    run (steps, seeds); the width sweep (steps, batch, widths)."""

    hutter_runs: int
    hutter_features: int
    hutter_samples: tuple[float, float]
    steps: int
    seeds: int
    width_steps: int
    width_batch: int
    widths: tuple[int, ...]

    def describe(self) -> str:
        return (f"Hutter model {self.hutter_runs} runs per α to {self.hutter_samples[1]:.0e} "
                f"samples; sparse parity {self.steps} online steps, {self.seeds} seed(s), "
                f"width {_STEPS_WIDTH}; widths {self.widths[0]}–{self.widths[-1]}, "
                f"{self.width_steps} steps, batch {self.width_batch}")


_QUANTA_BUDGETS: dict[Budget, _QuantaBudget] = {
    "quick": _QuantaBudget(8, 100_000, (1e3, 2e5), 1500, 1, 3000, 256, (4, 8, 16, 32)),
    "standard": _QuantaBudget(16, 100_000, (1e3, 3e5), 3000, 2, 3000, 512,
                              (4, 8, 16, 32, 64)),
    "full": _QuantaBudget(32, 300_000, (1e3, 1e6), 20000, 4, 20000, 512,
                          (4, 8, 16, 32, 64, 128, 256)),
}
# Relative errors of the measured exponents allowed. Hutter model: four independent
# batches of 8 runs at quick gave 0.335–0.337 (α = 0.5, theory 1/3) and 0.4915–0.5009
# (α = 1, theory 1/2), at most 1.7 % off. Steps: k = 3 runs gave 0.45–0.47 against 0.5
# (the truncation at 50 subtasks and the finite window), 6–10 % low. Parameters: k = 2
# runs gave 0.83–0.91 against 1 (Michaud et al. also report α_N ≠ α for some α).
_QUANTA_TOL = {"data": 0.03, "steps": 0.2, "parameters": 0.3}
_ORDER_MIN = 0.8  # fraction of subtask pairs learned in frequency order


def _learning_steps(steps: np.ndarray, per_task: np.ndarray) -> np.ndarray:
    """First checkpoint at which each subtask's loss is below ``_LEARNED`` (inf: never)."""
    below = per_task < _LEARNED
    return np.where(below.any(0), steps[np.argmax(below, axis=0)], np.inf)


def _quanta_keys(exponent: Callable[[float], float], param_exponent: Callable[[float], float]
                 ) -> Prediction:
    """Exponents keyed ``"<experiment>: <axis> exponent"``: data (Hutter, per α), steps
    and parameters (sparse parity, α = 1)."""
    alpha = _MSP_TASK["alpha"]
    out = {f"Hutter α={a:g}: data exponent": exponent(a) for a in _HUTTER_ALPHAS}
    out["sparse parity: steps exponent"] = exponent(alpha)
    out["sparse parity: parameters exponent"] = param_exponent(alpha)
    return Prediction(out)


@register
class QuantaScaling(JudgedLaw):
    id = "quanta-scaling"
    strand = "empirical"
    claim = (
        "When subtasks (quanta) are used with power-law frequencies p_k ∝ k^−(α+1), loss "
        "falls as N^−α in parameters and as S^−α/(α+1) in steps and D^−α/(α+1) in data, "
        "and subtasks are learned roughly in order of frequency."
    )
    reference = "Michaud, Liu, Girit & Tegmark 2023; Hutter 2021"
    regime = (
        "Data: the Hutter model (a feature is learned after τ = 100 sightings), 10⁵ "
        "features, 10³–3·10⁵ samples, so the learned set stays far from the last feature. "
        "Steps: multitask sparse parity with 50 subtasks (α = 1) of 3-bit parities on 8 "
        "task bits, a width-128 one-hidden-layer ReLU network trained online with Adam; the "
        "step exponent is fitted from the step at which the most frequent subtask is learned "
        "to the end of the run (3–8 subtasks learned; the truncation at 50 subtasks changes "
        "the tail by under 10%). Parameters: narrow networks trained for 3000 steps on 2-bit "
        "parities on 12 bits, whose subtasks are learned fast enough that the networks stop "
        "at their capacity (the number learned roughly doubles with width, n ∝ N); with "
        "3-bit parities or 1500 steps the sweep stays time-limited and gives exponents near "
        "0.4–0.7, not a test of the claim."
    )
    control = (
        "A competing theory judged on the same measurements: the number of learned quanta "
        "grows linearly with every resource (steps, data, parameters), so every exponent "
        "is α, instead of α/(α+1) in steps and data."
    )
    control_theory = "exponent α on every axis (quanta learned ∝ resource)"
    budgets: ClassVar[dict[str, str]] = {k: b.describe() for k, b in _QUANTA_BUDGETS.items()}

    def measure(self, budget: Budget, ctx: LawContext) -> Measurement:
        b = _QUANTA_BUDGETS[budget]
        return ctx.cached((self.id, b), lambda: self._measure(b))

    @staticmethod
    def _measure(b: _QuantaBudget) -> Measurement:
        """``exponents``: measured exponent per key of :func:`_quanta_keys`; the curves
        behind them; ``order``: the least frequency-order agreement over seeds."""
        samples = np.unique(np.geomspace(*b.hutter_samples, 12).round().astype(int))
        exponents, hutter = {}, {}
        for a in _HUTTER_ALPHAS:
            mean = np.mean([quanta.hutter_curve(a, b.hutter_features, samples, _HUTTER_TAU,
                                                seed)[0] for seed in range(b.hutter_runs)],
                           axis=0)
            hutter[a] = mean
            exponents[f"Hutter α={a:g}: data exponent"] = scaling.power_law_exponent(
                samples, mean)[0]
        task = MultitaskSparseParity(**_MSP_TASK, seed=0)  # type: ignore[arg-type]
        p = task.frequencies.numpy()
        curves, firsts, orders, per_task0 = [], [], [], np.empty(0)
        steps = np.empty(0)
        for seed in range(b.seeds):
            steps, losses = train_width_ensemble(task, [_STEPS_WIDTH], b.steps, _STEPS_BATCH,
                                                 _STEPS_LR, seed)
            per_task = losses[:, 0, :]
            learned_at = _learning_steps(steps, per_task)
            curves.append(per_task @ p)
            firsts.append(learned_at[0])
            orders.append(quanta.order_agreement(learned_at))
            if seed == 0:
                per_task0 = per_task
        mean_loss = np.mean(curves, axis=0)
        start = max(firsts)
        window = steps >= start
        exponents["sparse parity: steps exponent"] = (
            scaling.power_law_exponent(steps[window], mean_loss[window])[0]
            if window.sum() >= 3 else math.nan)
        wide = MultitaskSparseParity(**_MSP_WIDTH_TASK, seed=0)  # type: ignore[arg-type]
        _, losses = train_width_ensemble(wide, b.widths, b.width_steps, b.width_batch,
                                         _WIDTH_LR, 100)
        width_loss = losses[-1] @ wide.frequencies.numpy()
        params = np.array([(wide.d_in + 1) * w + (w + 1) * 2 for w in b.widths], dtype=float)
        exponents["sparse parity: parameters exponent"] = scaling.power_law_exponent(
            params, width_loss)[0]
        learned = int(np.isfinite(_learning_steps(steps, per_task0)).sum())
        return Measurement(
            {"exponents": exponents, "order": float(np.min(orders)), "samples": samples,
             "hutter": hutter, "steps": steps, "mean_loss": mean_loss,
             "window": (float(start), float(steps[-1])), "per_task": per_task0,
             "frequencies": p, "params": params, "width_loss": width_loss},
            notes=f"{learned} of {_MSP_TASK['n_tasks']} subtasks learned by step "
                  f"{int(steps[-1])} (seed 0); step window {start:.0f}–{steps[-1]:.0f}")

    def predict(self, budget: Budget) -> Prediction:
        return _quanta_keys(quanta.data_exponent, lambda a: a)

    def control_prediction(self, budget: Budget) -> Prediction:
        return _quanta_keys(lambda a: a, lambda a: a)

    def judge(self, measurement: Measurement, prediction: Prediction) -> Evidence:
        criteria = []
        for key, predicted in prediction.values.items():
            measured = measurement["exponents"][key]
            axis = key.split(": ")[1].split(" ")[0]
            criteria.append(Criterion(
                f"{key}: |measured − predicted| / predicted (measured {measured:.3f}, "
                f"predicted {predicted:.3g})", abs(measured - predicted) / predicted,
                _QUANTA_TOL[axis]))
        criteria.append(Criterion("sparse parity: fraction of subtask pairs learned in "
                                  "frequency order", measurement["order"], _ORDER_MIN, ">="))
        return Evidence(criteria, _quanta_figures(measurement, prediction))


def _fitted_line(x: np.ndarray, y: np.ndarray, exponent: float) -> list[float]:
    """``∝ x^−exponent`` through the geometric mean of the points ``(x, y)``."""
    anchor = np.exp(np.mean(np.log(y)) + exponent * np.mean(np.log(x)))
    return (anchor * x.astype(float) ** -exponent).tolist()


def _quanta_figures(m: Measurement, prediction: Prediction) -> list[Figure]:
    steps, mean_loss, (lo, hi) = m["steps"], m["mean_loss"], m["window"]
    beta = prediction["sparse parity: steps exponent"]
    fig = Figure(f"Multitask sparse parity ({_MSP_TASK['n_tasks']} subtasks, p_i ∝ "
                 f"i^−{_MSP_TASK['alpha'] + 1:g}): loss per subtask and mean loss", "step S",
                 "test loss (bits)", xscale="log", yscale="log")
    for i in range(min(8, m["per_task"].shape[1])):
        fig.curves.append(Curve(f"subtask {i + 1} (p = {m['frequencies'][i]:.3f})",
                                steps.tolist(), np.maximum(m["per_task"][:, i], 1e-3).tolist(),
                                "measured", f"subtask {i + 1}"))
    fig.curves.append(Curve("mean loss", steps.tolist(), mean_loss.tolist(), "measured",
                            "mean"))
    sel = (steps >= lo) & (steps <= hi)
    if sel.sum() >= 2:
        fig.curves.append(Curve(f"theory ∝ S^−{beta:.3g}", steps[sel].tolist(),
                                _fitted_line(steps[sel], mean_loss[sel], beta), "theory",
                                "mean"))
    alpha = prediction["sparse parity: parameters exponent"]
    width = Figure("Multitask sparse parity (2-bit parities): mean loss vs parameters",
                   "parameters N", "mean test loss (bits)", xscale="log", yscale="log")
    width.curves += [
        Curve(f"theory ∝ N^−{alpha:.3g}", m["params"].tolist(),
              _fitted_line(m["params"], m["width_loss"], alpha), "theory", "params"),
        Curve("measured", m["params"].tolist(), m["width_loss"].tolist(), "measured",
              "params"),
    ]
    hutter = Figure("Hutter model: loss vs samples (τ sightings to learn a feature)",
                    "samples D", "unlearned probability mass", xscale="log", yscale="log")
    d = m["samples"]
    for a, loss in m["hutter"].items():
        b = prediction[f"Hutter α={a:g}: data exponent"]
        hutter.curves += [
            Curve(f"theory ∝ D^−{b:.3g} (α = {a:g})", d.tolist(), _fitted_line(d, loss, b),
                  "theory", f"α={a:g}"),
            Curve(f"simulated (α = {a:g})", d.tolist(), loss.tolist(), "measured",
                  f"α={a:g}"),
        ]
    return [fig, width, hutter]


# ---- scaling-extrapolation --------------------------------------------------------------

@dataclass(frozen=True)
class _Sweep:
    """A width × training-set-size sweep of one-hidden-layer ReLU MLPs trained with Adam
    (learning rate ``lr``, decoupled weight decay ``weight_decay``) for
    ``max(min_steps, epochs·n/batch)`` steps."""

    data: str
    widths: tuple[int, ...]
    sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    epochs: int
    batch: int
    min_steps: int
    points: int  # probe points (log-spaced): the resolution of early stopping
    lr: float
    weight_decay: float

    def describe(self) -> str:
        decay = f", weight decay {self.weight_decay:g}" if self.weight_decay else ""
        return (f"{self.data}, widths {self.widths[0]}–{self.widths[-1]} × sizes "
                f"{self.sizes[0]}–{self.sizes[-1]}, {len(self.seeds)} seeds, lr {self.lr:g}"
                f"{decay}, {self.epochs} epochs (≥ {self.min_steps} steps)")


_SWEEP = {
    "quick": _Sweep("digits", (8, 16, 32, 64), (300, 500, 800, 1300), (0, 1), 20, 64, 300, 30,
                    2e-3, 0.0),
    "standard": _Sweep("fashion_mnist", (8, 16, 32, 64), (2000, 4000, 8000, 16000, 32000),
                       (0, 1), 15, 128, 500, 30, 1e-3, 0.1),
    "full": _Sweep("fashion_mnist", (8, 16, 32, 64, 128, 256),
                   (2000, 4000, 8000, 16000, 32000), (0, 1, 2, 3), 15, 128, 500, 30,
                   1e-3, 0.1),
}
_EXTRAPOLATION_LAW = "chinchilla"
_RIVAL_LAW = "pure_power_law"  # L = A·N^−α: Kaplan et al.'s data-unlimited law, no floor E
# Mean |relative error| of the forecast on the held-out runs. Calibration with the
# validation-selected loss: 0.060 at quick (seeds 0–1), 0.086 with seeds 0–5; 0.019, 0.007
# and 0.019 on the standard sweep (seed pairs {0, 1}, {2, 3}, {4, 5}). The seed-mean
# held-out losses scatter by ±5–17 % about any smooth law at quick (the 6-seed residuals),
# so 10 % is the tightest tolerance the quick sweep supports; it is the tolerance of the
# original calibration.
_EXTRAPOLATION_TOL = 0.10
_SKILL_TOL = 0.5  # the law must at least halve the error of the no-further-gain forecast


def _sweep_system(sweep: _Sweep, width: int, n: int, seed: int) -> System:
    data: Digits | FashionMNIST = (Digits(n_train=n, n_test=1797 - n, seed=seed)
                                   if sweep.data == "digits"
                                   else FashionMNIST(n_train=n, n_test=10000, seed=seed))
    steps = max(sweep.min_steps, round(sweep.epochs * n / sweep.batch))
    return System(
        architecture=MLP(width=width, depth=2), data=data, objective="cross_entropy",
        learning_rule=LearningRule(optimizer="adam", lr=sweep.lr, batch_size=sweep.batch,
                                   steps=steps, weight_decay=sweep.weight_decay),
        seed=seed,
    )


def _forecasts(frame: pd.DataFrame) -> dict[str, Any]:
    """Both laws fitted to the smaller two thirds of ``frame`` (by N·D), their forecasts
    of the held-out runs, and the no-further-gain forecast's error."""
    train, held = scaling.split_by_size(frame, ("N", "D"))
    ext = scaling.extrapolate(frame, _EXTRAPOLATION_LAW, starts=8)
    rival = scaling.fit(train.assign(x=train["N"]), _RIVAL_LAW, starts=8)
    actual = held["loss"].to_numpy()
    flat = float(np.mean(np.abs(train["loss"].min() - actual) / actual))
    return {
        "train": train, "heldout": held, "actual": actual, "flat_error": flat,
        "forecast": {_EXTRAPOLATION_LAW: ext.predicted,
                     _RIVAL_LAW: rival.predict(x=held["N"].to_numpy())},
        "fits": {_EXTRAPOLATION_LAW: ext.fit, _RIVAL_LAW: rival},
        "band": scaling.bootstrap(train, ext.fit, n_boot=100, seed=0),
    }


@register
class ScalingExtrapolation(JudgedLaw):
    id = "scaling-extrapolation"
    strand = "empirical"
    claim = (
        "A Chinchilla-form law L(N, D) = E + A/N^α + B/D^β fitted to the smaller two thirds "
        "of a sweep over width and training-set size (ordered by N·D) predicts the test "
        "loss of the held-out larger third."
    )
    reference = "Hoffmann et al. 2022; Besiroglu et al. 2024; Kaplan et al. 2020"
    regime = (
        "One-hidden-layer ReLU MLPs trained with Adam for a fixed number of epochs and at "
        "least 300–500 steps, so that small-data runs reach their early-stopping point. The "
        "loss of a run is early-stopped by validation: the test split is halved, the step "
        "is the one of least loss on the first half (30 log-spaced probe steps) and the "
        "loss reported is that on the second half, averaged over seeds. quick: digits (1797 "
        "images: sizes 300–1300, the test split is the rest), lr 2·10⁻³, 20 epochs (the "
        "validation loss is least at the last probe step in 93 of 96 calibration runs). "
        "standard: Fashion-MNIST, widths 8–64 × sizes 2000–32000, lr 10⁻³ with decoupled "
        "weight decay 0.1, 15 epochs. The fit on small runs cannot pin down the irreducible "
        "loss E well and sets it near 0 on the digits sweep. A small error alone is not "
        "skill: it must also be at most half the error of the forecast 'no further gain' "
        "(every held-out run at the best fitted run's loss). The forecast is judged by its "
        "mean relative error over five (quick) held-out runs whose seed-mean losses scatter "
        "by 5–17 % about a smooth law, so the check resolves the forecast to about 20 %, not "
        "10 %. The form adds the width and data terms, so it holds where the early-stopped "
        "gain from width does not depend on the data size: on Fashion-MNIST from 2000 "
        "images on. At 1000 images wider nets gain most (the loss gap between widths 8 and "
        "64 is 0.123 there, 0.072–0.097 from 4000 to 32000), and sweeps that start there fit "
        "E = 0 and forecast the held-out wide nets up to 8 % too low (skill 0.35–0.73 over "
        "three seed pairs, against 0.09–0.24 from 2000; BENCHMARKS.md, 'Law resolving "
        "power'). Single seeds give skill 0.31–0.60: two seeds are the fewest the skill "
        "check supports."
    )
    control = (
        "A competing extrapolation of the same small runs: the pure power law in parameters "
        "L = A·N^−α (Kaplan et al.'s data-unlimited form, without the irreducible term E "
        "and without the data term), fitted to the same two thirds and judged on the same "
        "held-out runs by the same criteria."
    )
    control_theory = "pure power law L = A·N^−α (no irreducible loss, no data term)"
    budgets: ClassVar[dict[str, str]] = {k: b.describe() for k, b in _SWEEP.items()}

    def measure(self, budget: Budget, ctx: LawContext) -> Measurement:
        """``frame``: one row per (N, D), the seed-mean validation-stopped held-out loss;
        the fits of both laws on its smaller two thirds and their ``forecast`` of the
        held-out rows (``actual``), shape ``(held-out runs,)``."""
        sweep = _SWEEP[budget]
        trajectories = [
            ctx.run(_sweep_system(sweep, width, n, seed), ["validation_loss"],
                    Schedule("log", sweep.points), label=f"width={width} n={n} seed={seed}")
            for width in sweep.widths for n in sweep.sizes for seed in sweep.seeds]
        frame = trajectory_frame(trajectories, "holdout_loss", select="validation_loss")
        frame = frame.groupby(["N", "D"], as_index=False).agg(loss=("loss", "mean"))
        values = ctx.cached((self.id, sweep, "fits"), lambda: _forecasts(frame))
        return Measurement(values | {"frame": frame, "data": sweep.data},
                           [t.run_id for t in trajectories])

    def predict(self, budget: Budget) -> Prediction:
        """The forecast of the fitted Chinchilla law, as a factor on it (1: the law)."""
        return Prediction({_EXTRAPOLATION_LAW: 1.0})

    def control_prediction(self, budget: Budget) -> Prediction:
        return Prediction({_RIVAL_LAW: 1.0})

    def judge(self, measurement: Measurement, prediction: Prediction) -> Evidence:
        m = measurement
        ((law, factor),) = prediction.values.items()
        forecast = factor * m["forecast"][law]
        actual = m["actual"]
        rel = (forecast - actual) / actual
        error = float(np.mean(np.abs(rel)))
        flat = m["flat_error"]
        criteria = [
            Criterion(f"{law}: mean |relative error| of the forecast loss on the held-out "
                      "largest third", error, _EXTRAPOLATION_TOL),
            Criterion(f"{law}: skill, that error / the error of forecasting the best fitted "
                      f"run's loss (no further gain; its error {flat:.3f})", error / flat,
                      _SKILL_TOL),
        ]
        params = ", ".join(f"{k} = {v:.3g}" for k, v in m["fits"][law].params.items())
        notes = (f"{len(m['train'])} runs fitted, {len(actual)} held out; {law} fitted "
                 f"{params}; held-out relative errors {np.round(rel, 3).tolist()}")
        return Evidence(criteria, [_extrapolation_figure(m, law, factor)], notes=notes)


def _extrapolation_figure(m: Measurement, law: str, factor: float) -> Figure:
    frame, train, held = m["frame"], m["train"], m["heldout"]
    fit = m["fits"][law]
    fig = Figure(f"{m['data']}: {law} law fitted on the smaller two thirds", "parameters N",
                 "validation-stopped test loss", xscale="log", yscale="log")
    ns = np.geomspace(frame["N"].min() / 1.3, frame["N"].max() * 1.3, 60)
    for d in sorted(frame["D"].unique()):
        group = f"D = {int(d)}"
        cols = {"N": ns, "D": np.full_like(ns, d)} if law == _EXTRAPOLATION_LAW else {"x": ns}
        fig.curves.append(Curve(f"fit, D = {int(d)}", ns.tolist(),
                                (factor * fit.predict(cols)).tolist(), "theory", group))
        if law == _EXTRAPOLATION_LAW:
            lo, hi = m["band"].band(0.95, cols)
            fig.curves += [
                Curve(f"95% band low, D = {int(d)}", ns.tolist(), (factor * lo).tolist(),
                      "theory", group),
                Curve(f"95% band high, D = {int(d)}", ns.tolist(), (factor * hi).tolist(),
                      "theory", group),
            ]
        for part, label in ((train, "fitted"), (held, "held out")):
            rows = part[part["D"] == d]
            if len(rows):
                fig.curves.append(Curve(f"{label}, D = {int(d)}", rows["N"].tolist(),
                                        rows["loss"].tolist(), "measured", group))
    return fig
