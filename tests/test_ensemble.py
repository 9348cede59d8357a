"""Vectorized ensembles against the plain trainer, run by run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import learnmech.ensemble
from learnmech.ensemble import (
    _Layout,
    ensemble_key,
    group_ensembles,
    stacked_forward,
    stacked_objective,
    train_ensemble,
)
from learnmech.errors import InputError
from learnmech.probes import make_probes, register_probe
from learnmech.system import MLP, DeepLinear, Digits, LearningRule, LinearTeacher, System
from learnmech.threads import one_torch_thread
from learnmech.train import Schedule, initial_state, objective, train

SCHEDULE = Schedule("linear", 6)


def _members(rule: LearningRule, dtype: str = "float64") -> list[System]:
    base = System(
        architecture=MLP(width=12, depth=3),
        data=Digits(n_train=120, n_test=40),
        objective="cross_entropy",
        learning_rule=rule,
        dtype=dtype,
    )
    # seed, learning rate and init scale all vary; the last member diverges
    changes = [(0, 1.0, 1.0), (1, 2.0, 1.0), (2, 1.0, 0.5), (3, 1e5, 1.0)]
    return [
        base.updated({"seed": s, "learning_rule.lr": rule.lr * f, "architecture.init_scale": c})
        for s, f, c in changes
    ]


RULES = {
    "gd": LearningRule(optimizer="gd", lr=0.1, steps=25),
    "sgd": LearningRule(optimizer="sgd", lr=0.1, steps=25, batch_size=32),
    "momentum": LearningRule(
        optimizer="momentum", lr=0.05, steps=25, batch_size=50, nesterov=True, weight_decay=1e-3
    ),
    "adam": LearningRule(optimizer="adam", lr=3e-3, steps=25, batch_size=25, weight_decay=1e-2),
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_ensemble_equals_one_by_one(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # vectorized probes in chunks of 25 examples (the last of each split shorter)
    monkeypatch.setattr(learnmech.ensemble, "_PROBE_ROWS", 100)
    systems = _members(RULES[name])
    probes = ["loss", "accuracy", "weight_svals"]  # vectorized and per-member probes
    together = train_ensemble(systems, probes, SCHEDULE)
    for system, ens in zip(systems, together, strict=True):
        ref = train(system, make_probes(probes), SCHEDULE)
        assert (ens.status, ens.diverged_at, ens.steps_done) == (
            ref.status,
            ref.diverged_at,
            ref.steps_done,
        )
        assert sorted(ens.observables) == sorted(ref.observables)
        for key, series in ref.observables.items():
            assert ens[key].steps == series.steps
            np.testing.assert_allclose(ens[key].array(), series.array(), rtol=1e-9, atol=1e-12)
        assert ref.model is not None and ens.model is not None
        for a, b in zip(ref.model.parameters(), ens.model.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert together[-1].status == "diverged"


@register_probe("test_optimizer_moments")
class _OptimizerMoments:
    """Sum of every optimizer state tensor's entries: what a probe sees of the state."""

    name = "test_optimizer_moments"

    def __call__(self, model, loss_fn, batch, optimizer, step) -> list[float]:
        out = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                for key in ("exp_avg", "exp_avg_sq", "momentum_buffer", "step"):
                    if key in optimizer.state.get(p, {}):
                        out.append(float(optimizer.state[p][key].double().sum()))
        return out


@pytest.mark.parametrize("name", ["adam", "momentum"])
def test_probes_see_the_members_optimizer_state(name: str) -> None:
    systems = _members(RULES[name])[:2]
    probes = ["test_optimizer_moments"]
    for system, ens in zip(systems, train_ensemble(systems, probes, SCHEDULE), strict=True):
        ref = train(system, make_probes(probes), SCHEDULE)
        assert len(ref[probes[0]].values[-1]) > 0
        assert ens[probes[0]].steps == ref[probes[0]].steps
        for a, b in zip(ens[probes[0]].values, ref[probes[0]].values, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "erf"])
@pytest.mark.parametrize(("loss_name", "parametrization", "bias", "dtype", "rtol"), [
    ("cross_entropy", "sp", True, "float64", 1e-12),
    ("mse", "ntp", True, "float64", 1e-12),  # every layer's multiplier ≠ 1, one-hot targets
    ("mse", "ntp", False, "float32", 1e-6),
])
def test_written_out_backward_against_autograd(
    activation: str, loss_name: str, parametrization: str, bias: bool, dtype: str, rtol: float
) -> None:
    """The ensemble's backward is written out per activation and objective; the one-by-one
    runs take their gradients from autograd. Full-batch GD on 60 examples (1/60 is not a
    power of two) with a readout multiplier of 2, after 8 steps."""
    base = System(
        architecture=MLP(width=10, depth=3, activation=activation, bias=bias,
                         parametrization=parametrization, output_multiplier=2.0),
        data=Digits(n_train=60, n_test=0),
        objective=loss_name,
        learning_rule=LearningRule(optimizer="gd", lr=0.1, steps=8),
        dtype=dtype,
    )
    systems = [base.updated({"seed": s, "architecture.init_scale": c})
               for s, c in [(0, 1.0), (1, 2.0)]]
    with one_torch_thread():
        together = train_ensemble(systems, ["loss"], SCHEDULE)
        alone = [train(s, make_probes(["loss"]), SCHEDULE) for s in systems]
    for ens, ref in zip(together, alone, strict=True):
        assert ens["train_loss"].array()[-1] < 0.9 * ens["train_loss"].array()[0]  # it trains
        np.testing.assert_allclose(ens["train_loss"].array(), ref["train_loss"].array(),
                                   rtol=rtol)
        assert ref.model is not None and ens.model is not None
        for a, b in zip(ref.model.parameters(), ens.model.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=rtol, atol=rtol * float(a.detach().abs().max()))


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_float32_agrees_to_rounding(name: str) -> None:
    """In float32 each member is its own run to rounding (rel. 1e-6), not merely close:
    64-wide ReLU MLPs on digits at lr 0.2, where one rounding difference in a product
    can flip a hidden unit whose pre-activation sits within 1e-7 of zero (seed 7 has one
    at step 30) and move that step's update by 1e-3 of the weights, a gap the
    dynamics then keep (7.7e-4 in the final loss when the products rounded differently
    from the one-by-one runs).

    On one torch thread: with two, a one-by-one product may be split between the threads
    and round differently from the same member's batched product (an AMD EPYC with MKL:
    1.3e-5 in seed 7's final loss at two threads, 1e-7 at one)."""
    rule = {
        "sgd": LearningRule(optimizer="sgd", lr=0.2, steps=40, batch_size=64),
        "adam": LearningRule(optimizer="adam", lr=3e-3, steps=40, batch_size=64),
    }[name]
    base = System(
        architecture=MLP(width=64, depth=3),
        data=Digits(n_train=1000, n_test=0),
        objective="cross_entropy",
        learning_rule=rule,
    )
    systems = [base.updated({"seed": s}) for s in (3, 7)]
    with one_torch_thread():
        together = train_ensemble(systems, ["loss"], SCHEDULE)
        alone = [train(system, make_probes(["loss"]), SCHEDULE) for system in systems]
    for ens, ref in zip(together, alone, strict=True):
        np.testing.assert_allclose(ens["train_loss"].array(), ref["train_loss"].array(), rtol=1e-6)
        assert ref.model is not None and ens.model is not None
        for a, b in zip(ref.model.parameters(), ens.model.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_deep_linear_near_identity_members() -> None:
    base = System(
        architecture=DeepLinear(hidden=[6], init="near_identity", init_scale=0.3),
        data=LinearTeacher(d_in=6, d_out=6),
        learning_rule=LearningRule(optimizer="gd", lr=0.05, steps=30),
        dtype="float64",
    )
    systems = [
        base.updated({"seed": s, "architecture.init_scale": c}) for s, c in [(0, 0.3), (1, 0.1)]
    ]
    for system, ens in zip(systems, train_ensemble(systems, ["e2e_svals"], SCHEDULE), strict=True):
        ref = train(system, make_probes(["e2e_svals"]), SCHEDULE)
        np.testing.assert_allclose(ens["e2e_svals"].array(), ref["e2e_svals"].array(), rtol=1e-10)


def test_incompatible_members_are_rejected() -> None:
    a = _members(RULES["sgd"])[0]
    b = a.updated({"architecture.width": 13})
    c = a.updated({"learning_rule.batch_size": 16})
    assert ensemble_key(a) == ensemble_key(a.updated({"seed": 9, "learning_rule.lr": 3.0}))
    with pytest.raises(InputError, match="differ only in"):
        train_ensemble([a, b])
    groups = group_ensembles([a, b, c, a.updated({"seed": 5})], max_size=8)
    assert sorted(len(g) for g in groups) == [1, 1, 2]
    assert [len(g) for g in group_ensembles([a.updated({"seed": s}) for s in range(5)], 2)] == [
        2,
        2,
        1,
    ]


@pytest.mark.parametrize("loss_name", ["mse", "cross_entropy"])
def test_stacked_forward_and_objective_against_the_module(loss_name: str) -> None:
    """Batched forward (fast and generic vmap paths) and per-member objective against the
    network's own forward and :func:`learnmech.train.objective`, member by member."""
    systems = _members(RULES["sgd"])[:3]
    systems = [s.updated({"objective": loss_name}) for s in systems]
    members = [initial_state(s) for s in systems]
    template, _, data, _ = members[0]
    layout = _Layout(template)
    params = torch.stack([layout.flatten(dict(m.named_parameters())) for m, *_ in members])
    loss = stacked_objective(systems[0], data)
    reference = objective(systems[0], data)
    own_x = torch.stack([data.x_train[:7], data.x_train[3:10], data.x_train[5:12]])
    own_y = torch.stack([data.y_train[:7], data.y_train[3:10], data.y_train[5:12]])
    for generic in (False, True):
        forward = stacked_forward(template, generic=generic)
        shared = forward(layout.unflatten_stacked(params), data.x_train)
        own = forward(layout.unflatten_stacked(params), own_x)
        for k, (model, *_) in enumerate(members):
            with torch.no_grad():
                torch.testing.assert_close(shared[k], model(data.x_train), rtol=1e-12, atol=0)
                torch.testing.assert_close(own[k], model(own_x[k]), rtol=1e-12, atol=0)
                assert float(loss(shared, data.y_train)[k]) == pytest.approx(
                    float(reference(model(data.x_train), data.y_train)), rel=1e-12
                )
                assert float(loss(own, own_y)[k]) == pytest.approx(
                    float(reference(model(own_x[k]), own_y[k])), rel=1e-12
                )
