"""Simple empirical laws: conservation laws of parameter symmetries (Kunin et al. 2021)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from learnmech.data import load
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
from learnmech.models.normalized import BatchNormMLP
from learnmech.system import MLP, Activation, LearningRule, System, TeacherStudent
from learnmech.theory import dln, symmetry
from learnmech.train import Schedule, Trajectory

_WD = 0.05
_DRIFT = 0.002  # relative drift of q allowed at the smallest step (measured: ~1e-4 at η=0.01)
_DATA = TeacherStudent(d_in=10, d_out=2, teacher_width=4, n_train=256, n_test=0)


def _horizon(budget: Budget) -> float:
    return 4.0 if budget == "quick" else 8.0


def _lrs(budget: Budget) -> list[float]:
    return {"quick": [0.04, 0.02, 0.01], "standard": [0.04, 0.02, 0.01, 0.005],
            "full": [0.04, 0.02, 0.01, 0.005, 0.0025]}[budget]


def _relu_system(budget: Budget, lr: float, activation: Activation = "relu",
                 weight_decay: float = 0.0) -> System:
    return System(
        architecture=MLP(width=64 if budget == "full" else 32, depth=3, activation=activation),
        data=_DATA,
        learning_rule=LearningRule(optimizer="gd", lr=lr, steps=round(_horizon(budget) / lr),
                                   weight_decay=weight_decay),
        dtype="float64",
    )


@dataclass
class _NormRun:
    """Squared row norms of the normalized layer and the readout over a GD run, and the
    squared norms of their loss gradients, one row per step (``(K+1, m)`` and ``(K, m)``)."""

    lr: float
    hidden: np.ndarray
    hidden_grad: np.ndarray
    readout: np.ndarray
    readout_grad: np.ndarray


def _train_normalized(lr: float, horizon: float, width: int, seed: int = 0) -> _NormRun:
    """Full-batch GD (float64, MSE with ½) on :class:`BatchNormMLP`, recording every step.

    The trainer's networks have no normalization layer, so this loop trains it directly.
    """
    data = load(_DATA).to("cpu", torch.float64)
    model = BatchNormMLP(data.d_in, width, data.d_out,
                         generator=torch.Generator().manual_seed(seed)).double()
    x, y = data.x_train, data.y_train
    rows: dict[str, list[np.ndarray]] = {"h": [], "hg": [], "r": [], "rg": []}

    def norms() -> None:
        rows["h"].append(model.hidden.weight.detach().pow(2).sum(1).numpy().copy())
        rows["r"].append(model.readout.weight.detach().pow(2).sum(1).numpy().copy())

    norms()
    params = list(model.parameters())
    for _ in range(round(horizon / lr)):
        loss = 0.5 * (model(x) - y).pow(2).sum() / x.shape[0]
        grads = dict(zip(["hidden", "readout", "bias"], torch.autograd.grad(loss, params),
                         strict=True))
        rows["hg"].append(grads["hidden"].pow(2).sum(1).numpy().copy())
        rows["rg"].append(grads["readout"].pow(2).sum(1).numpy().copy())
        with torch.no_grad():
            for p, g in zip(params, grads.values(), strict=True):
                p.sub_(lr * g)
        norms()
    return _NormRun(lr, *(np.stack(rows[k]) for k in ("h", "hg", "r", "rg")))


def _identity_error(norms: np.ndarray, grads: np.ndarray, lr: float) -> float:
    """Worst relative error of ``‖w_k‖² = ‖w_0‖² + η² Σ_{j<k} ‖g_j‖²`` over steps and rows."""
    predicted = symmetry.gd_norm_growth(norms[0], grads, lr)
    return float(np.max(np.abs(norms - predicted) / norms[0]))


def _exponent(lrs: list[float], values: list[float]) -> float:
    return float(np.polyfit(np.log(lrs), np.log(values), 1)[0])


@register
class NoetherConservation(Law):
    id = "noether-conservation"
    strand = "empirical"
    claim = (
        "Parameter symmetries give conserved quantities of gradient flow: per ReLU neuron "
        "q_i = ‖a_i‖² − ‖w_i‖² − b_i² (rescaling symmetry), and the norm of weights feeding a "
        "normalization layer (scale symmetry). Under GD the first drifts by O(η) at fixed "
        "time t = η·steps and the second grows exactly as ‖w‖² + η²Σ‖g‖²; with weight decay "
        "λ the conserved quantities decay as e^{−2λt}."
    )
    reference = "Kunin, Sagastuy-Brena, Ganguli, Yamins & Tanaka 2021"
    regime = (
        "Full-batch GD in float64 on a teacher-student task (ReLU MLP with two hidden layers "
        "of 32 units, standard parametrization; a two-layer network with batch normalization "
        "without affine parameters, ε = 1e-10, on its hidden layer). Small steps (η ≤ 0.04, "
        "far below the stability limit) so that GD tracks gradient flow; the decay law "
        "needs ηλ ≪ 1 ((1 − ηλ)^{2k} ≈ e^{−2λt})."
    )
    control = (
        "Where the symmetry is absent the same criteria must fail: the per-neuron quantity "
        "of a tanh network (tanh is not homogeneous) at the smallest step, and the GD norm "
        "identity applied to the readout rows of the normalized network, which feed no "
        "normalization."
    )
    budgets: ClassVar[dict[str, str]] = {
        "quick": "lr 0.04/0.02/0.01 to t = 4",
        "standard": "lr 0.04 … 0.005 to t = 8",
        "full": "lr 0.04 … 0.0025 to t = 8, width 64",
    }

    def __init__(self) -> None:
        self._memo = RunMemo()

    def _relu(self, ctx: LawContext, system: System) -> Trajectory:
        arch = system.architecture
        act = arch.activation if isinstance(arch, MLP) else "linear"
        return self._memo.run(ctx, system, ["loss", "neuron_balance"], Schedule("linear", 40),
                              label=f"neuron balance {act} lr={system.learning_rule.lr}")

    @staticmethod
    def _drift(traj: Trajectory) -> float:
        """Worst relative per-neuron drift at the end of the run, over hidden layers."""
        keys = [k for k in traj.observables if k.startswith("neuron_balance.drift.")]
        return max(float(traj[k].array()[-1]) for k in keys)

    def measure(self, budget: Budget, ctx: LawContext) -> Evidence:
        lrs = _lrs(budget)
        trajs = [self._relu(ctx, _relu_system(budget, lr)) for lr in lrs]
        drifts = [self._drift(t) for t in trajs]
        p_relu = _exponent(lrs, drifts)

        # weight decay: q_i(t) = q_i(0) e^{−2λt}, every neuron of every hidden layer
        lr = lrs[-1]
        decay = self._relu(ctx, _relu_system(budget, lr, weight_decay=_WD))
        t = np.asarray(decay["neuron_balance.0"].steps, dtype=float) * lr
        predicted = dln.conserved_decay(1.0, _WD, t)
        decay_err, decay_fig = 0.0, Figure(
            f"Per-neuron q_i(t)/q_i(0) under weight decay λ={_WD}", "time t = η·step",
            "q_i(t) / q_i(0)", yscale="log")
        decay_fig.curves.append(Curve("theory e^{−2λt}", t.tolist(), predicted.tolist(),
                                      "theory", "decay"))
        for l in (0, 1):
            q = decay[f"neuron_balance.{l}"].array()  # (time, neurons)
            scale = np.abs(q[0]).mean()
            decay_err = max(decay_err, float(np.max(np.abs(q - q[0] * predicted[:, None]))
                                             / scale))
            for i in range(3):
                decay_fig.curves.append(Curve(f"layer {l}, neuron {i}", t.tolist(),
                                              (q[:, i] / q[0, i]).tolist(), "measured",
                                              "decay"))

        # normalization: exact GD identity and O(η) growth at fixed time
        width = 64 if budget == "full" else 32
        runs = [_train_normalized(lr, _horizon(budget), width) for lr in lrs]
        identity = max(_identity_error(r.hidden, r.hidden_grad, r.lr) for r in runs)
        growth = [float(np.max(r.hidden[-1] / r.hidden[0] - 1.0)) for r in runs]
        p_norm = _exponent(lrs, growth)

        scaling = Figure("Breaking of conservation by finite steps, at fixed time",
                         "learning rate η", "relative change at the end", xscale="log",
                         yscale="log")
        for label, values in (("ReLU per-neuron |Δq|", drifts),
                              ("normalized ‖w‖² growth", growth)):
            ref = values[-1] / lrs[-1]
            scaling.curves += [
                Curve(f"theory ∝ η ({label})", lrs, [ref * x for x in lrs], "theory", label),
                Curve(label, lrs, values, "measured", label),
            ]
        smallest = runs[-1]
        steps = np.arange(smallest.hidden.shape[0]) * smallest.lr
        norm_fig = Figure(f"‖w_i‖² of rows feeding batch norm, η={smallest.lr}",
                          "time t = η·step", "‖w_i(t)‖² / ‖w_i(0)‖²")
        pred = symmetry.gd_norm_growth(smallest.hidden[0], smallest.hidden_grad, smallest.lr)
        for i in range(3):
            norm_fig.curves += [
                Curve(f"‖w₀‖² + η²Σ‖g‖², row {i}", steps.tolist(),
                      (pred[:, i] / pred[0, i]).tolist(), "theory", f"row {i}"),
                Curve(f"measured, row {i}", steps.tolist(),
                      (smallest.hidden[:, i] / smallest.hidden[0, i]).tolist(), "measured",
                      f"row {i}"),
            ]
        criteria = [
            Criterion(f"ReLU: max relative per-neuron drift of q at η={lrs[-1]}", drifts[-1],
                      _DRIFT),
            Criterion("ReLU: exponent p of drift ∝ η^p at fixed t, |p − 1|", abs(p_relu - 1),
                      0.15),
            Criterion(f"weight decay λ={_WD}: max |q_i(t) − q_i(0)e^(−2λt)| / mean |q_i(0)|",
                      decay_err, 0.02),
            Criterion("batch norm: max relative error of ‖w‖² = ‖w₀‖² + η²Σ‖g‖²", identity,
                      1e-6),
            Criterion(f"batch norm: max relative growth of ‖w‖² at η={lrs[-1]}", growth[-1],
                      0.01),
            Criterion("batch norm: exponent p of growth ∝ η^p at fixed t, |p − 1|",
                      abs(p_norm - 1), 0.15),
        ]
        run_ids = [t.run_id for t in trajs] + [decay.run_id]
        notes = (f"drift exponent {p_relu:.3f}, norm-growth exponent {p_norm:.3f} (theory 1); "
                 f"batch-norm runs trained directly (not stored)")
        return Evidence(criteria, [scaling, decay_fig, norm_fig], run_ids, notes)

    def measure_control(self, budget: Budget, ctx: LawContext) -> Evidence:
        lr = _lrs(budget)[-1]
        tanh = self._relu(ctx, _relu_system(budget, lr, activation="tanh"))
        width = 64 if budget == "full" else 32
        run = _train_normalized(lr, _horizon(budget), width)
        criteria = [
            Criterion(f"tanh: max relative per-neuron drift of q at η={lr}", self._drift(tanh),
                      _DRIFT),
            Criterion("readout rows (no normalization): max relative error of "
                      "‖w‖² = ‖w₀‖² + η²Σ‖g‖²",
                      _identity_error(run.readout, run.readout_grad, lr), 1e-6),
        ]
        return Evidence(criteria, [], [tanh.run_id])
