"""The trainer against hand-written reference loops, determinism and divergence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learnmech.probes import make_probes
from learnmech.system import MLP, DeepLinear, Digits, LearningRule, LinearTeacher, System
from learnmech.train import Schedule, initial_state, train


def _linear_system(**rule) -> System:
    return System(
        architecture=DeepLinear(hidden=[], init_scale=0.5),
        data=LinearTeacher(d_in=4, d_out=3, singular_values=[2.0, 1.0], n_train=40, noise=0.1),
        learning_rule=LearningRule(**rule),
        dtype="float64",
    )


def _reference(system: System, update) -> np.ndarray:
    """Run a numpy reference of the learning rule on the least-squares loss
    ½·mean‖y − Wx‖² of a one-layer linear model from the trainer's initial weights."""
    model, _, data, _ = initial_state(system)
    w = model.layers[0].weight.detach().numpy().copy()
    x, y = data.x_train.numpy(), data.y_train.numpy()
    state: dict = {}
    for _ in range(system.learning_rule.steps):
        grad = -(y - x @ w.T).T @ x / x.shape[0]
        w = update(w, grad, state)
    return w


def test_gd_with_weight_decay_matches_a_numpy_loop():
    system = _linear_system(optimizer="gd", lr=0.3, steps=50, weight_decay=0.01)
    traj = train(system)
    expected = _reference(system, lambda w, g, s: w - 0.3 * (g + 0.01 * w))
    np.testing.assert_allclose(traj.model.layers[0].weight.detach().numpy(), expected, atol=1e-12)


def test_heavy_ball_momentum_matches_a_numpy_loop():
    system = _linear_system(optimizer="momentum", lr=0.1, momentum=0.8, steps=40)

    def heavy_ball(w, g, s):
        prev = s.get("prev", w)
        s["prev"] = w
        return w - 0.1 * g + 0.8 * (w - prev)

    np.testing.assert_allclose(train(system).model.layers[0].weight.detach().numpy(),
                               _reference(system, heavy_ball), atol=1e-12)


def test_same_seed_same_numbers_and_other_seed_differs():
    system = System(architecture=MLP(width=32), data=Digits(n_train=200, n_test=50),
                    objective="cross_entropy",
                    learning_rule=LearningRule(optimizer="sgd", batch_size=32, lr=0.1, steps=30))
    probes = ["loss"]
    a = train(system, make_probes(probes), Schedule("linear", 4))
    b = train(system, make_probes(probes), Schedule("linear", 4))
    assert a["train_loss"].values == b["train_loss"].values
    c = train(system.updated({"seed": 1}), make_probes(probes), Schedule("linear", 4))
    assert a["train_loss"].values != c["train_loss"].values


def test_minibatch_sgd_matches_a_numpy_loop_over_epoch_permutations():
    """Minibatches are consecutive slices of one seeded permutation per epoch, so every
    example is used once per epoch."""
    system = _linear_system(optimizer="sgd", batch_size=10, lr=0.2, steps=12)
    model, _, data, gen = initial_state(system)
    w = model.layers[0].weight.detach().numpy().copy()
    x, y = data.x_train.numpy(), data.y_train.numpy()
    for _ in range(3):  # 40 examples, 4 batches per epoch, 12 steps
        perm = torch.randperm(40, generator=gen).numpy()
        for b in range(4):
            idx = perm[10 * b : 10 * b + 10]
            w = w - 0.2 * (-(y[idx] - x[idx] @ w.T).T @ x[idx] / 10)
    np.testing.assert_allclose(train(system).model.layers[0].weight.detach().numpy(), w,
                               atol=1e-12)


def test_divergence_is_an_outcome_with_its_step():
    system = System(architecture=MLP(width=16), data=LinearTeacher(),
                    learning_rule=LearningRule(optimizer="gd", lr=50.0, steps=200))
    traj = train(system, make_probes(["loss"]), Schedule("linear", 10))
    assert traj.status == "diverged"
    assert traj.diverged_at is not None and 0 < traj.diverged_at < 200
    assert "loss" in traj.reason
    assert traj["train_loss"].steps[-1] <= traj.diverged_at


def test_non_finite_weights_end_the_run_before_probes_see_them():
    system = System(architecture=DeepLinear(hidden=[8]), data=LinearTeacher(),
                    learning_rule=LearningRule(optimizer="gd", lr=1e30, steps=50))
    traj = train(system, make_probes(["e2e_svals"]), Schedule("linear", 51))
    assert traj.status == "diverged" and traj.diverged_at is not None
    assert traj.diverged_at <= 3


def test_probes_see_initialization_at_step_zero_and_schedule_steps():
    system = System(architecture=MLP(width=16), data=LinearTeacher(),
                    learning_rule=LearningRule(lr=0.05, steps=100))
    traj = train(system, make_probes(["loss"]), Schedule("log", 10))
    assert traj["train_loss"].steps == Schedule("log", 10).steps(100)
    assert traj["train_loss"].steps[0] == 0 and traj["train_loss"].steps[-1] == 100
    model, _, data, _ = initial_state(system)
    with torch.no_grad():
        initial = 0.5 * (model(data.x_train) - data.y_train).pow(2).sum() / data.x_train.shape[0]
    assert traj["train_loss"].values[0] == pytest.approx(float(initial), rel=1e-6)


@pytest.mark.parametrize(("kind", "total", "points"), [("log", 1000, 20), ("linear", 7, 50),
                                                       ("log", 0, 5)])
def test_schedule_includes_ends_and_is_sorted(kind, total, points):
    steps = Schedule(kind, points).steps(total)
    assert steps[0] == 0 and steps[-1] == total
    assert steps == sorted(set(steps))
    assert len(steps) <= max(points, 2) + 1


def test_divergence_rule_bounds_the_loss_by_the_first_one():
    from learnmech.loop import Divergence

    rule = Divergence(factor=10.0)
    assert rule.reason(0, 2.0) is None
    assert rule.reason(1, 20.0) is None          # exactly 10 × the first loss: still inside
    assert "above 10× the initial loss" in rule.reason(2, 20.5)
    assert rule.reason(3, float("nan")) == "non-finite loss"
    stacked = Divergence(factor=10.0)
    torch.testing.assert_close(
        stacked.diverging(0, torch.tensor([1.0, 2.0])), torch.tensor([False, False]))
    torch.testing.assert_close(stacked.diverging(1, torch.tensor([10.5, float("inf")])),
                               torch.tensor([True, True]))
    torch.testing.assert_close(stacked.diverging(2, torch.tensor([9.0, 19.0])),
                               torch.tensor([False, False]))


def test_cross_entropy_matches_torch_and_its_gradient():
    """The training objective's cross-entropy (log-softmax over the transposed view)
    against ``F.cross_entropy``: values and gradients, per example and averaged."""
    import torch.nn.functional as F

    from learnmech.loop import cross_entropy

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 10, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 10, (300,), generator=g)
    assert torch.allclose(cross_entropy(logits, labels, reduction="none"),
                          F.cross_entropy(logits, labels, reduction="none"), rtol=1e-14)
    ours = torch.autograd.grad(cross_entropy(logits, labels), logits)[0]
    ref = torch.autograd.grad(F.cross_entropy(logits, labels), logits)[0]
    assert torch.allclose(ours, ref, rtol=1e-12, atol=1e-15)
