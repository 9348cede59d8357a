"""An outside law, registered through the ``learnmech.laws`` entry point.

Gradient descent on ``L(x) = ½ Σ_i λ_i x_i²`` multiplies each coordinate by ``1 − ηλ_i``
per step, exactly. The competing theory is gradient flow, ``exp(−ηλ_i)`` per unit
``η`` of time: the same to first order in ``ηλ``, distinguishable at ``ηλ ~ 0.5``.
"""

from __future__ import annotations

import numpy as np
import torch

from learnmech.laws import (
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

CURVATURES = (0.2, 1.0, 2.5, 4.0)
LR = 0.2
STEPS = {"quick": 10, "standard": 30, "full": 100}


@register
class GDQuadraticRate(JudgedLaw):
    id = "gd-quadratic-rate"
    strand = "solvable"
    claim = "On a quadratic, gradient descent contracts each eigendirection by 1 − ηλ per step."
    reference = "textbook"
    regime = ("Exact for full-batch GD on any quadratic; float64 round-off only, so the "
              "relative tolerance 1e-9 is round-off with a wide margin.")
    control = "gradient flow's factor exp(−ηλ) for the same runs"
    control_theory = "gradient flow: exp(−ηλ) per step"
    budgets = {k: f"{len(CURVATURES)} curvatures, {v} steps" for k, v in STEPS.items()}

    def measure(self, budget, ctx: LawContext) -> Measurement:
        lam = torch.tensor(CURVATURES, dtype=torch.float64)
        x = torch.ones_like(lam, requires_grad=True)
        opt = torch.optim.SGD([x], lr=LR)
        for _ in range(STEPS[budget]):
            opt.zero_grad()
            (0.5 * lam * x.pow(2)).sum().backward()
            opt.step()
        factor = x.detach().abs().pow(1.0 / STEPS[budget]).numpy()
        return Measurement({"factor": factor})

    def predict(self, budget) -> Prediction:
        return Prediction({"factor": np.abs(1.0 - LR * np.asarray(CURVATURES))})

    def control_prediction(self, budget) -> Prediction:
        return Prediction({"factor": np.exp(-LR * np.asarray(CURVATURES))})

    def judge(self, measurement: Measurement, prediction: Prediction) -> Evidence:
        measured, theory = measurement["factor"], prediction["factor"]
        error = float(np.max(np.abs(measured - theory) / np.abs(theory)))
        steps = [LR * c for c in CURVATURES]
        fig = Figure("Contraction per step", "ηλ", "|x_{t+1} / x_t|", curves=[
            Curve("theory", steps, [float(t) for t in theory], "theory"),
            Curve("measured", steps, [float(m) for m in measured], "measured")])
        return Evidence([Criterion("max relative error of the factor", error, 1e-9)], [fig])
