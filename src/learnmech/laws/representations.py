"""Universality: representations of independently trained networks align
(Kornblith et al. 2019; Huh et al. 2024)."""

from __future__ import annotations

from itertools import combinations
from typing import ClassVar

import numpy as np
import torch
from scipy.stats import spearmanr

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
from learnmech.probes.similarity import alignment, unflatten_gram
from learnmech.system import MLP, Digits, LearningRule, System
from learnmech.train import Schedule, Trajectory

METRICS = ("linear_cka", "debiased_cka", "mutual_knn")
_NAMES = {"linear_cka": "linear CKA", "debiased_cka": "debiased CKA", "mutual_knn": "mutual 10-NN"}
_PROBES = ["accuracy", "feature_gram"]
_SCHEDULE = Schedule("log", 7)


def _plan(budget: Budget) -> tuple[list[int], list[int], int]:
    """Widths, seeds and training-set size of a budget."""
    return {
        "quick": ([8, 16, 32, 64], [0, 1], 1000),
        "standard": ([8, 16, 32, 64, 128, 256], [0, 1, 2], 1000),
        "full": ([8, 16, 32, 64, 128, 256, 512, 1024, 2048], [0, 1, 2, 3, 4], 1000),
    }[budget]


def _system(width: int, seed: int, n_train: int) -> System:
    return System(
        architecture=MLP(width=width, depth=3),
        data=Digits(n_train=n_train, n_test=300),
        objective="cross_entropy",
        learning_rule=LearningRule(optimizer="adam", lr=1e-3, steps=300),
        seed=seed,
    )


def _table(runs: dict[int, list[Trajectory]], permuted: bool) -> list[dict[str, float]]:
    """One row per (width, checkpoint): mean test accuracy of the seeds and the mean of
    each metric over seed pairs. ``permuted`` compares the first network of each pair with
    the second on randomly re-ordered inputs (a fixed seeded permutation)."""
    rows = []
    for width, trajs in runs.items():
        steps = trajs[0]["feature_gram"].steps
        for i, step in enumerate(steps):
            values: dict[str, list[float]] = {m: [] for m in METRICS}
            for a, b in combinations(trajs, 2):
                k, l = (unflatten_gram(t["feature_gram"].values[i]) for t in (a, b))
                if permuted:
                    perm = torch.randperm(l.shape[0], generator=torch.Generator().manual_seed(0))
                    l = l[perm][:, perm]
                for m, v in alignment(k, l).items():
                    values[m].append(v)
            acc = float(np.mean([t["test_accuracy"].values[i] for t in trajs]))
            rows.append({"width": width, "step": step, "accuracy": acc,
                         **{m: float(np.mean(v)) for m, v in values.items()}})
    return rows


def _spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation, rounded to 12 digits (so that 4 ranks give exactly 0.8)."""
    rho = spearmanr(x, y).statistic
    return round(float(rho), 12) if np.isfinite(rho) else 0.0


@register
class RepresentationUniversality(Law):
    id = "representation-universality"
    strand = "universality"
    claim = (
        "Networks trained from different seeds learn aligned representations, and the "
        "alignment rises with width and with performance, by every measure: linear CKA, "
        "debiased CKA and mutual k-nearest-neighbour alignment agree on the trend."
    )
    reference = "Kornblith et al. 2019; Nguyen, Raghu & Kornblith 2021; Huh et al. 2024"
    regime = (
        "Three-layer ReLU MLPs (standard parametrization) on digits (1000 training images), "
        "Adam for 300 full-batch steps; penultimate features on 128 held-out images; "
        "alignment averaged over seed pairs. Thresholds: Spearman ≥ 0.8 with width and with "
        "accuracy across trained models, ≥ 0.7 with accuracy over training checkpoints "
        "(step ≥ 1), ≥ 0.8 between metrics, and alignment ≥ 0.5 at the largest width. "
        "Alignment also rises with width at initialization (random features concentrate: "
        "linear CKA 0.11 → 0.65 from width 8 to 128), so the width trend alone does not "
        "separate learning from the law of large numbers; the checkpoint trend does. The "
        "metrics are fragile to outliers: with 500 training images two probe images carry a "
        "pixel that is constant on the training split and standardizes to 62.5, and these "
        "dominate the linear kernels (linear CKA 0.96 at init at width 64, falling during "
        "training, while mutual k-NN rises): the metrics then disagree, as Gröger et al. "
        "(2026) caution."
    )
    control = (
        "The same networks with the correspondence between inputs broken (the second "
        "network of each pair seen on a fixed random permutation of the inputs): "
        "unrelated representations must show no alignment, so a rise here would be an "
        "artefact of the metric (linear CKA keeps a small positive bias that grows with "
        "width; debiased CKA removes it)."
    )
    budgets: ClassVar[dict[str, str]] = {
        "quick": "widths 8–64, two seeds, 1000 training images",
        "standard": "widths 8–256, three seeds (three pairs), 1000 training images",
        "full": "widths 8–2048, five seeds, 1000 training images",
    }

    def __init__(self) -> None:
        self._memo = RunMemo()

    def _runs(self, budget: Budget, ctx: LawContext) -> dict[int, list[Trajectory]]:
        widths, seeds, n = _plan(budget)
        return {w: [self._memo.run(ctx, _system(w, s, n), _PROBES, _SCHEDULE,
                                   label=f"representations width {w} seed {s}")
                    for s in seeds] for w in widths}

    def _evidence(self, budget: Budget, ctx: LawContext, permuted: bool) -> Evidence:
        runs = self._runs(budget, ctx)
        rows = _table(runs, permuted)
        final = [r for r in rows if r["step"] == max(x["step"] for x in rows)]
        trained = [r for r in rows if r["step"] > 0]
        widest = final[-1]
        criteria = []
        for m in METRICS:
            name = _NAMES[m]
            criteria += [
                Criterion(f"{name}: Spearman with width (trained models)",
                          _spearman([r["width"] for r in final], [r[m] for r in final]),
                          0.8, ">="),
                Criterion(f"{name}: Spearman with test accuracy (trained models)",
                          _spearman([r["accuracy"] for r in final], [r[m] for r in final]),
                          0.8, ">="),
                Criterion(f"{name} at the largest width ({widest['width']:.0f})", widest[m],
                          0.5, ">="),
            ]
        over_training = {m: _spearman([r["accuracy"] for r in trained], [r[m] for r in trained])
                         for m in METRICS}
        criteria += [Criterion(f"{_NAMES[m]}: Spearman with test accuracy over training "
                               "checkpoints", v, 0.7, ">=") for m, v in over_training.items()]
        agree = {f"{_NAMES[a]}~{_NAMES[b]}": _spearman([r[a] for r in trained],
                                                      [r[b] for r in trained])
                 for a, b in combinations(METRICS, 2)}
        criteria.append(Criterion("agreement between metrics: least pairwise Spearman over "
                                  "training checkpoints", min(agree.values()), 0.8, ">="))
        tag = "permuted inputs (control)" if permuted else "trained from different seeds"
        width_fig = Figure(f"Alignment vs width, {tag}", "width", "alignment", xscale="log")
        perf_fig = Figure(f"Alignment vs test accuracy over training, {tag}", "test accuracy",
                          "alignment")
        init = [r for r in rows if r["step"] == 0]
        for m in METRICS:
            width_fig.curves += [
                Curve(f"{_NAMES[m]}, trained", [r["width"] for r in final], [r[m] for r in final],
                      "measured", m),
                Curve(f"{_NAMES[m]}, at init", [r["width"] for r in init], [r[m] for r in init],
                      "measured", m + " init"),
            ]
            for width in runs:
                path = [r for r in rows if r["width"] == width]
                perf_fig.curves.append(Curve(f"{_NAMES[m]}, width {width}",
                                             [r["accuracy"] for r in path],
                                             [r[m] for r in path], "measured", m))
        notes = (
            "trained: " + "; ".join(
                f"width {r['width']:.0f} acc {r['accuracy']:.3f} "
                + ", ".join(f"{_NAMES[m]} {r[m]:.3f}" for m in METRICS) for r in final)
            + ". Spearman with accuracy over training checkpoints: "
            + ", ".join(f"{_NAMES[m]} {v:.2f}" for m, v in over_training.items())
            + ". Agreement between metrics over checkpoints (Spearman): "
            + ", ".join(f"{k} {v:.2f}" for k, v in agree.items())
        )
        run_ids = [t.run_id for trajs in runs.values() for t in trajs]
        return Evidence(criteria, [width_fig, perf_fig], run_ids, notes)

    def measure(self, budget: Budget, ctx: LawContext) -> Evidence:
        return self._evidence(budget, ctx, permuted=False)

    def measure_control(self, budget: Budget, ctx: LawContext) -> Evidence:
        return self._evidence(budget, ctx, permuted=True)
