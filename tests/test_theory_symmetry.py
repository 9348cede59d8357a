"""Scale-symmetry norm law: the GD recursion against closed forms and a real network."""

import numpy as np
import pytest
import torch

from learnmech.errors import InputError
from learnmech.models.normalized import BatchNormMLP
from learnmech.theory.symmetry import gd_norm_growth


def test_recursion_matches_closed_forms():
    g = np.array([0.5, 1.0, 2.0])
    assert gd_norm_growth(3.0, g, lr=0.1) == pytest.approx(3.0 + 0.01 * np.cumsum([0, *g]))
    # constant ‖g‖² = c with decay: n_k = r^k n_0 + η²c (1 − r^k)/(1 − r), r = (1 − ηλ)²
    lr, wd, c, k = 0.1, 0.5, 2.0, 7
    r = (1 - lr * wd) ** 2
    expected = r**k * 3.0 + lr**2 * c * (1 - r**k) / (1 - r)
    assert gd_norm_growth(3.0, np.full(k, c), lr, wd)[-1] == pytest.approx(expected)
    assert gd_norm_growth(np.ones(2), np.ones((4, 2)), lr=0.5).shape == (5, 2)
    with pytest.raises(InputError):
        gd_norm_growth(1.0, g, lr=0.0)


def test_batch_norm_rows_are_scale_invariant_and_obey_the_step_identity():
    torch.manual_seed(0)
    net = BatchNormMLP(5, 7, 2, eps=0.0, generator=torch.Generator().manual_seed(1)).double()
    x, y = torch.randn(30, 5, dtype=torch.float64), torch.randn(30, 2, dtype=torch.float64)
    out = net(x)
    with torch.no_grad():
        net.hidden.weight[3] *= 4.0
    assert torch.allclose(net(x), out, atol=1e-12)
    loss = 0.5 * (net(x) - y).pow(2).sum() / 30
    (g,) = torch.autograd.grad(loss, [net.hidden.weight])
    w = net.hidden.weight.detach()
    assert torch.allclose((w * g).sum(1), torch.zeros(7, dtype=torch.float64), atol=1e-12)
    lr = 0.3
    after = (w - lr * g).pow(2).sum(1)
    predicted = gd_norm_growth(w.pow(2).sum(1).numpy(), g.pow(2).sum(1)[None].numpy(), lr)[-1]
    assert np.allclose(after.numpy(), predicted, rtol=1e-12)


def test_normalized_gd_run_follows_the_norm_identity_only_where_the_symmetry_is():
    from learnmech.models.normalized import train_normalized_gd
    from learnmech.theory.symmetry import breaking_exponent, conserved_decay_rate

    gen = torch.Generator().manual_seed(2)
    x = torch.randn(40, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(40, 2, generator=gen, dtype=torch.float64)
    run = train_normalized_gd(x, y, width=6, lr=0.1, steps=30)
    assert run.hidden.shape == (31, 6) and run.hidden_grad.shape == (30, 6)
    predicted = gd_norm_growth(run.hidden[0], run.hidden_grad, run.lr)
    assert np.allclose(run.hidden, predicted, rtol=1e-9)
    assert np.all(np.diff(run.hidden, axis=0) >= 0)
    readout = gd_norm_growth(run.readout[0], run.readout_grad, run.lr)
    assert not np.allclose(run.readout, readout, rtol=1e-3)
    assert breaking_exponent() == 1.0 and conserved_decay_rate(0.05) == 0.1
    with pytest.raises(InputError):
        conserved_decay_rate(-1.0)
