"""The centred student of lazy training: f_0 ≡ 0, its first-layer Jacobian against finite
differences, and, at a large output multiplier, real GD moving W₁ as far as the closed-form
linearization says."""

from __future__ import annotations

import pytest
import torch

from learnmech.lazy_training import (
    Student,
    centred_student,
    first_layer_jacobian,
    linearized_weight_movement,
    train_student,
)
from learnmech.probes.hidden import linear_layers

SMALL = Student(width=40, n_train=8, n_test=8, steps=60)


def test_centred_student_starts_at_zero():
    model, _, data = centred_student(SMALL, 1.0, seed=0)
    with torch.no_grad():
        assert model(data.x_test).abs().max() < 1e-7  # float32 summation order


def test_first_layer_jacobian_matches_finite_differences():
    model, _, data = centred_student(SMALL, 2.0, seed=1)
    model = model.double()
    x = data.x_train.double()[:3]
    jac = first_layer_jacobian(model, x)
    weight = linear_layers(model)[0].weight
    eps = 1e-6
    for k in (0, 7, 33):
        i, j = divmod(k, weight.shape[1])
        with torch.no_grad():
            weight[i, j] += eps
            up = model(x).flatten()
            weight[i, j] -= 2 * eps
            down = model(x).flatten()
            weight[i, j] += eps
        assert torch.allclose(jac[:, k], (up - down) / (2 * eps), rtol=1e-6, atol=1e-9)


def test_large_multiplier_moves_as_the_linearization():
    run = train_student(SMALL, 300.0, seed=2)
    assert run.weight_movement == pytest.approx(
        linearized_weight_movement(SMALL, 300.0, seed=2), rel=0.01)
    rich = train_student(SMALL, 0.1, seed=2)
    assert rich.weight_movement > 100 * run.weight_movement
