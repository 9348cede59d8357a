"""The linear self-supervised GD loop against autograd and the aligned closed form."""

import numpy as np
import pytest
import torch

from learnmech.errors import InputError
from learnmech.selfsupervised import TwoViewProblem, train_linear_ssl, two_view_problem
from learnmech.theory.stepwise import ssl_mode_trajectory


def _loss(w: torch.Tensor, cross: torch.Tensor) -> torch.Tensor:
    return (w @ cross @ w.T - torch.eye(w.shape[0], dtype=w.dtype)).pow(2).sum()


def test_problem_is_seeded_and_its_eigenpairs_are_those_of_the_cross_correlation():
    p = two_view_problem([1.0, 0.5, 0.25, 0.1], embed=2, scale=0.1, seed=3, n=500)
    q = two_view_problem([1.0, 0.5, 0.25, 0.1], embed=2, scale=0.1, seed=3, n=500)
    assert torch.equal(p.cross, q.cross) and torch.equal(p.w0, q.w0)
    assert torch.allclose(p.cross, p.cross.T)
    assert torch.allclose(p.cross @ p.v, p.v * p.gamma, atol=1e-12)
    assert p.gamma[0] > p.gamma[1]
    with pytest.raises(InputError, match="embed"):
        two_view_problem([1.0, 0.5], embed=3, scale=0.1, seed=0)


def test_one_step_is_gradient_descent_on_the_loss():
    p = two_view_problem([1.0, 0.5, 0.25], embed=2, scale=0.5, seed=1, n=300)
    lr = 1e-2
    w = p.w0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_loss(w, p.cross), w)
    record = train_linear_ssl(p, lr, horizon=lr, every=1)
    assert record.loss[0] == pytest.approx(float(_loss(p.w0, p.cross)), rel=1e-12)
    assert record.loss[1] == pytest.approx(float(_loss(p.w0 - lr * grad, p.cross)), rel=1e-10)


def test_aligned_start_follows_the_logistic_of_each_mode():
    p = two_view_problem([1.0, 0.5, 0.25], embed=2, scale=1.0, seed=2, n=2000)
    c0 = np.array([1e-3, 3e-3])
    w0 = torch.diag(torch.tensor(np.sqrt(c0)) / p.gamma.sqrt()) @ p.v.T
    aligned = TwoViewProblem(p.cross, p.gamma, p.v, w0)
    record = train_linear_ssl(aligned, lr=2e-3, horizon=3.0, every=50)
    theory = np.stack([ssl_mode_trajectory(float(g), c, record.t)
                       for g, c in zip(p.gamma, c0, strict=True)], axis=1)
    assert np.max(np.abs(np.sort(record.strengths, axis=1)[:, ::-1]
                         - np.sort(theory, axis=1)[:, ::-1])) < 0.02
