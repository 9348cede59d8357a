"""Batch-size theory: scaling rules, the Pareto hyperbola fit, steps to a target."""

from __future__ import annotations

import math

import numpy as np
import pytest

from learnmech.errors import InputError
from learnmech.system import LearningRule
from learnmech.theory.batch_size import (
    first_crossing,
    fit_pareto,
    scaled_rule,
    steps_to_target,
)


def test_linear_and_square_root_rules() -> None:
    sgd = LearningRule(optimizer="sgd", lr=0.02, batch_size=4, steps=400)
    lin = scaled_rule(sgd, 8, "linear")
    assert (lin.lr, lin.batch_size, lin.steps) == (pytest.approx(0.16), 32, 50)
    adam = LearningRule(
        optimizer="adam", lr=1e-3, batch_size=2, steps=100, betas=(0.99, 0.999), eps=1e-8
    )
    sq = scaled_rule(adam, 4, "sqrt")
    assert sq.lr == pytest.approx(2e-3) and sq.batch_size == 8 and sq.steps == 25
    assert sq.betas == pytest.approx((0.96, 0.996)) and sq.eps == pytest.approx(5e-9)
    # examples seen are preserved
    assert sq.batch_size * sq.steps == adam.batch_size * adam.steps
    with pytest.raises(InputError):
        scaled_rule(adam, 200, "sqrt")  # 1 − 200·0.01 < 0: no valid β₁
    with pytest.raises(InputError):
        scaled_rule(LearningRule(optimizer="gd"), 2, "linear")


@pytest.mark.parametrize(("s_min", "b_crit"), [(12.0, 150.0), (3.0, 7.0), (40.0, 2000.0)])
def test_fit_recovers_an_exact_hyperbola(s_min: float, b_crit: float) -> None:
    batch = np.array([2, 4, 8, 16, 32, 64, 128, 256, 512], dtype=float)
    fit = fit_pareto(batch, steps_to_target(batch, s_min, b_crit))
    assert fit.s_min == pytest.approx(s_min, rel=1e-5)
    assert fit.b_crit == pytest.approx(b_crit, rel=1e-5)
    assert fit.rms_log < 1e-6
    assert fit.e_min == pytest.approx(s_min * b_crit, rel=1e-5)
    # the hyperbola (S/S_min − 1)(E/E_min − 1) = 1 holds on its points
    s = steps_to_target(batch, s_min, b_crit)
    np.testing.assert_allclose((s / s_min - 1) * (batch * s / (s_min * b_crit) - 1), 1.0)


def test_fit_against_a_brute_force_grid() -> None:
    """Noisy data: the fit's loss is no worse than a fine 2-D grid search's."""
    rng = np.random.default_rng(0)
    batch = np.geomspace(4, 512, 8)
    steps = steps_to_target(batch, 10.0, 100.0) * np.exp(rng.normal(0, 0.1, batch.size))
    fit = fit_pareto(batch, steps)

    def loss(s_min: float, b_crit: float) -> float:
        return float(np.sum((np.log(steps) - np.log(steps_to_target(batch, s_min, b_crit))) ** 2))

    grid = min(loss(s, b) for s in np.geomspace(5, 20, 300) for b in np.geomspace(30, 300, 300))
    assert loss(fit.s_min, fit.b_crit) <= grid + 1e-9
    assert fit.rms_log == pytest.approx(math.sqrt(loss(fit.s_min, fit.b_crit) / batch.size))


def test_first_crossing_interpolates_log_loss() -> None:
    steps = [0, 10, 20, 30]
    values = [1.0, 0.5, 0.25, 0.125]  # log-linear: reaches 0.3536 at step 15
    assert first_crossing(steps, values, 0.5**1.5) == pytest.approx(15.0)
    assert first_crossing(steps, values, 2.0) == 0.0
    assert first_crossing(steps, values, 0.01) == math.inf
    assert first_crossing(steps, [1.0, math.nan, 0.1, 0.1], 0.2) == pytest.approx(20.0)


def test_tuned_front_finds_the_best_rate_of_a_closed_form() -> None:
    from learnmech.tuning import tuned_front

    # steps to the target: S(B, η) = S_min(1 + B_c/B)·(η/η*(B) + η*(B)/η)/2, least at
    # η*(B) = 0.1·B/(B + B_c): the tuned front is then the hyperbola exactly
    s_min, b_c = 10.0, 50.0
    lrs = [0.1 * 2.0**e for e in range(-8, 2)]
    calls = []

    def steps_at(batch: int, budget: int) -> np.ndarray:
        calls.append((batch, budget))
        star = 0.1 * batch / (batch + b_c)
        s = np.array([s_min * (1 + b_c / batch) * (lr / star + star / lr) / 2 for lr in lrs])
        s = np.where(s <= budget, s, np.inf)
        return np.stack([s, s], axis=1)  # two identical seeds

    front = tuned_front(steps_at, [64, 4, 16], lrs, start_steps=100)
    assert [p.batch for p in front] == [4, 16, 64]
    for p in front:
        star = 0.1 * p.batch / (p.batch + b_c)
        best = min(lrs, key=lambda lr: abs(math.log(lr / star)))
        assert p.lr == best and p.interior
        ratio = p.lr / star
        assert p.steps == pytest.approx(s_min * (1 + b_c / p.batch) * (ratio + 1 / ratio) / 2)
    assert calls[0] == (4, 100) and calls[1] == (4, 200)  # doubled until a run reached it
    assert calls[-1][1] == math.ceil(1.2 * front[1].steps) + 20


def test_hyperbola_rms_is_zero_on_its_own_curve_and_for_perfect_scaling() -> None:
    from learnmech.theory.batch_size import hyperbola_rms

    b = np.array([4.0, 16.0, 64.0, 256.0])
    s_min, rms = hyperbola_rms(b, steps_to_target(b, 8.0, 200.0), 200.0)
    assert s_min == pytest.approx(8.0) and rms == pytest.approx(0.0, abs=1e-12)
    assert hyperbola_rms(b, 1000.0 / b, math.inf) == (0.0, pytest.approx(0.0, abs=1e-12))
    # a wrong B_crit leaves residuals: log(1 + 100/B) − log(1 + 200/B) about their mean
    _, rms = hyperbola_rms(b, steps_to_target(b, 8.0, 200.0), 100.0)
    r = np.log1p(200 / b) - np.log1p(100 / b)
    assert rms == pytest.approx(np.std(r))


def test_matched_multiplier_recovers_the_rate_of_a_shifted_curve() -> None:
    from learnmech.tuning import log_loss_offset, matched_multiplier

    # L_c(x) = exp(−x·(1 + log(c/c0))): the log offset to L_{c0} is −mean(x)·log(c/c0),
    # a line in log c with root c0
    x = np.linspace(0.0, 5.0, 21)
    ref = np.exp(-x)
    c0, cs = 1.07, [0.8, 1.0, 1.25]
    offsets = [log_loss_offset(x, ref, x, np.exp(-x * (1 + np.log(c / c0)))) for c in cs]
    assert offsets[0] == pytest.approx(-np.mean(x[1:]) * np.log(0.8 / c0))
    assert matched_multiplier(cs, offsets) == pytest.approx(c0, rel=1e-12)
    assert math.isnan(matched_multiplier(cs, [0.1, math.nan, -0.1]))
    assert math.isnan(matched_multiplier(cs, [-0.1, 0.0, 0.1]))  # rises: no match


def test_time_rescaling_recovers_a_stretched_clock() -> None:
    from learnmech.tuning import time_rescaling

    t_ref = np.linspace(0.0, 40.0, 401)
    y_ref = 1.0 / (1.0 + t_ref) + 0.1 * np.exp(-t_ref / 5)
    t = np.linspace(0.0, 40.0, 41)
    for c0 in (0.9, 1.0, 1.13):
        y = 1.0 / (1.0 + c0 * t) + 0.1 * np.exp(-c0 * t / 5)  # the reference at c0·t
        assert time_rescaling(t_ref, y_ref, t, y) == pytest.approx(c0, rel=1e-3)
    assert math.isnan(time_rescaling(t_ref, y_ref, t, 1.0 / (1.0 + 2.0 * t)))  # out of bounds
