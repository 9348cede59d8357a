"""The quanta model's closed forms against direct sums, and the Hutter simulation against
a direct count."""

from __future__ import annotations

import numpy as np
import pytest

from learnmech.errors import InputError
from learnmech.theory import quanta as Q


def _direct_tail(n: int, s: float, every: int | None = None, upto: int = 2_000_000) -> float:
    """``Σ_{n<k≤K} k^−s`` summed directly plus the Euler–Maclaurin remainder beyond ``K``."""
    k = np.arange(n + 1, upto + 1, dtype=float)
    if every is not None:
        k = k[k % every != 0]
    rest = upto ** (1 - s) / (s - 1) - 0.5 * upto**-s
    if every is not None:
        rest *= (every - 1) / every
    return float(np.sum(k**-s) + rest)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("every", [None, 3])
def test_tail_equals_the_direct_sum(alpha, every):
    for n in (0, 7, 100):
        assert Q.tail(n, alpha, every) == pytest.approx(_direct_tail(n, alpha + 1, every),
                                                        rel=1e-6)


@pytest.mark.parametrize("alpha", [0.4, 1.0])
def test_closed_form_is_the_leading_term_with_order_one_over_n_error(alpha):
    """``L(n) − L_∞`` against ``C n^−α`` (C = AΔ/α): the relative error falls as 1/n."""
    n = np.array([10.0, 100.0, 1000.0, 10000.0])
    exact = Q.loss_of_quanta(n, alpha, amplitude=2.0, delta=0.5)
    closed = Q.asymptotic_loss(n, alpha, amplitude=2.0, delta=0.5)
    rel = np.abs(closed / exact - 1)
    assert rel[-1] < 1e-3
    assert np.all(np.diff(np.log(rel)) / np.log(10) < -0.9)  # ∝ 1/n
    # the exponent of the exact curve tends to α
    local = -np.diff(np.log(exact)) / np.diff(np.log(n))
    assert local[-1] == pytest.approx(alpha, abs=1e-3)


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_missing_every_mth_quantum_keeps_the_exponent_and_raises_the_floor(alpha):
    m, n = 4, np.array([1e3, 1e4, 1e5])
    exact = Q.loss_of_quanta(n, alpha, every=m)
    floor = m ** -(alpha + 1) * _direct_tail(0, alpha + 1)
    assert exact - floor == pytest.approx(
        [_direct_tail(int(v), alpha + 1, m) for v in n], rel=1e-6)
    closed = Q.asymptotic_loss(n, alpha, every=m)
    assert np.abs((closed - floor) / (exact - floor) - 1)[-1] < 1e-3  # C' = C (M−1)/M
    complete = Q.asymptotic_loss(n, alpha)
    assert (closed - floor) / complete == pytest.approx((m - 1) / m)


def test_data_exponent():
    assert Q.data_exponent(0.4) == pytest.approx(0.4 / 1.4)


def test_hutter_curve_matches_a_direct_count():
    alpha, n_features, tau, seed = 0.7, 50, 3, 4
    samples = np.array([10, 100, 1000, 3000])
    loss, learned_at = Q.hutter_curve(alpha, n_features, samples, tau, seed)
    p = Q.frequencies(n_features, alpha)
    stream = np.random.default_rng(seed).choice(n_features, size=samples.max(), p=p)
    for d, value in zip(samples, loss, strict=True):
        counts = np.bincount(stream[:d], minlength=n_features)
        assert value == pytest.approx(p[counts < tau].sum())
    k = 5
    assert learned_at[k] == np.nonzero(stream == k)[0][tau - 1] + 1


def test_hutter_loss_scales_with_the_data_exponent():
    samples = np.unique(np.geomspace(1e3, 1e5, 8).astype(int))
    mean = np.mean([Q.hutter_curve(1.0, 20_000, samples, 50, s)[0] for s in range(4)], axis=0)
    slope = np.polyfit(np.log(samples), np.log(mean), 1)[0]
    assert -slope == pytest.approx(Q.data_exponent(1.0), abs=0.03)


def test_bad_input():
    with pytest.raises(InputError, match="alpha"):
        Q.frequencies(10, 0.0)
    with pytest.raises(InputError, match="tau"):
        Q.hutter_curve(1.0, 10, np.array([10]), 0, 0)
