"""Lazy training by output scaling (Chizat, Oyallon & Bach 2019): a centred two-layer
ReLU student ``f(x) = (α/n) Σ_i a_i ReLU(w_iᵀx)`` trained at output multiplier ``α``.

The student has ``n`` neurons in pairs with equal ``w`` and opposite ``a``, so ``f_0 ≡ 0``
(Chizat et al.'s centred model): the trainer of :mod:`learnmech.train` cannot express this
initialization, so the loop is here. It trains by full-batch GD on learnmech's
``mse = 1/(2N) Σ (f − y)²`` with the mean-field plan's per-layer learning rates and base
learning rate ``η = η₀ min(1, α)/α²`` (time rescaled by ``α²`` as in Chizat et al., capped
for ``α < 1`` to keep GD stable). It records

* ``weight_movement`` ``‖W₁(T) − W₁(0)‖/‖W₁(0)‖`` (Frobenius),
* ``feature_movement`` ``‖h(T) − h(0)‖/‖h(0)‖`` of the hidden layer on the training inputs,
* ``trajectories`` ``(times, n, d_in)``: ``|a_i| w_i`` of every neuron at the traced
  steps, and the final training loss.

:func:`linearized_weight_movement` is the same ``‖ΔW₁‖/‖W₁(0)‖`` for the student's
linearization around initialization.

For ``α → ∞`` training is lazy: the student follows its linearization, so both movements
fall as ``1/α``; for ``α → 0`` it is rich (features move by O(1)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from learnmech.data import Dataset, load
from learnmech.models import Network, build_model
from learnmech.probes.hidden import hidden_features, linear_layers
from learnmech.probes.ntk import empirical_ntk, optimizer_weights
from learnmech.system import MLP, LearningRule, System, TeacherStudent
from learnmech.theory.linearized import parameter_change
from learnmech.train import make_optimizer, objective


@dataclass(frozen=True)
class Student:
    """The experiment: ``width`` neurons, a teacher with ``teacher_width`` ReLU units on
    ``d_in``-dimensional Gaussian inputs, ``n_train`` training points, ``steps`` GD steps
    with base learning rate ``eta0 · min(1, α)/α²``."""

    width: int = 200
    d_in: int = 2
    teacher_width: int = 3
    n_train: int = 20
    n_test: int = 400
    steps: int = 1000
    eta0: float = 1.0

    def lr(self, alpha: float) -> float:
        return self.eta0 * min(1.0, alpha) / alpha**2

    def system(self, alpha: float, seed: int) -> System:
        return System(
            architecture=MLP(width=self.width, depth=2, parametrization="mf", activation="relu",
                             bias=False, output_multiplier=alpha),
            data=TeacherStudent(d_in=self.d_in, d_out=1, teacher_width=self.teacher_width,
                                n_train=self.n_train, n_test=self.n_test, seed=seed),
            learning_rule=LearningRule(optimizer="gd", lr=self.lr(alpha), steps=self.steps),
            seed=seed,
        )


@dataclass(frozen=True)
class StudentRun:
    """What one trained student measured (see the module docstring)."""

    alpha: float
    weight_movement: float
    feature_movement: float
    train_loss: float
    trajectories: np.ndarray  # (times, width, d_in)


def centred_student(student: Student, alpha: float, seed: int
                    ) -> tuple[Network, torch.optim.Optimizer, Dataset]:
    """The student at initialization (pairs of neurons with opposite readout, ``f_0 ≡ 0``),
    its GD optimizer with the mean-field plan's learning rates, and the data."""
    system = student.system(alpha, seed)
    data = load(system.data)
    model, plan = build_model(system.architecture, student.d_in, 1,
                              generator=torch.Generator().manual_seed(seed))
    half = student.width // 2
    first, readout = linear_layers(model)
    with torch.no_grad():
        first.weight[half:] = first.weight[:half]
        readout.weight[:, half:] = -readout.weight[:, :half]
    return model, make_optimizer(model, plan, system.learning_rule), data


def train_student(student: Student, alpha: float, seed: int, trace: Sequence[int] = ()
                  ) -> StudentRun:
    """Train the centred student at output multiplier ``alpha`` (seed ``seed``), recording
    neuron positions at the steps in ``trace``."""
    model, optimizer, data = centred_student(student, alpha, seed)
    first = linear_layers(model)[0]
    x, y = data.x_train, data.y_train
    w0 = first.weight.detach().clone()
    with torch.no_grad():
        h0 = hidden_features(model, x)[0]
    loss_fn = objective(student.system(alpha, seed), data)
    snapshots = []
    loss = torch.tensor(float("nan"))
    for step in range(student.steps + 1):
        if step in trace:
            a = model.effective_weights()[1][0].abs()
            snapshots.append((a[:, None] * first.weight.detach()).numpy().copy())
        if step == student.steps:
            break
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        h = hidden_features(model, x)[0]
    return StudentRun(
        alpha=alpha,
        weight_movement=float((first.weight.detach() - w0).norm() / w0.norm()),
        feature_movement=float((h - h0).norm() / h0.norm()),
        train_loss=float(loss.detach()),
        trajectories=np.stack(snapshots) if snapshots else np.zeros((0, student.width, 2)),
    )


def first_layer_jacobian(model: Network, x: Tensor) -> Tensor:
    """``∂f(x_i)/∂W₁`` of a one-output network, flattened: ``(N, width · d_in)``."""
    first = linear_layers(model)[0]
    rows = []
    for xi in x:
        (grad,) = torch.autograd.grad(model(xi[None]).sum(), first.weight)
        rows.append(grad.flatten())
    return torch.stack(rows)


def linearized_weight_movement(student: Student, alpha: float, seed: int) -> float:
    """``‖ΔW₁‖/‖W₁(0)‖`` of the student's linearization after its ``steps`` GD steps
    (:func:`learnmech.theory.linearized.parameter_change` with the learning-rate-weighted
    NTK of the student at initialization)."""
    model, optimizer, data = centred_student(student, alpha, seed)
    first = linear_layers(model)[0]
    weights = optimizer_weights(model, optimizer)
    name = next(n for n, p in model.named_parameters() if p is first.weight)
    x = data.x_train
    theta = empirical_ntk(model, x, outputs="trace", weights=weights).double()
    with torch.no_grad():
        residual0 = (model(x) - data.y_train).double().flatten()
    lr = student.lr(alpha)
    change = parameter_change(first_layer_jacobian(model, x), weights[name], theta, residual0,
                              lr * student.steps, lr=lr)
    return float(change.norm() / first.weight.detach().double().norm())
