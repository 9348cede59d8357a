"""AGOP against finite differences and closed forms; the feature-ansatz probe."""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from learnmech.data import Dataset
from learnmech.errors import InputError
from learnmech.models import Network
from learnmech.probes.feature_ansatz import (
    FeatureAnsatz,
    agop,
    input_jacobians,
    matrix_correlation,
    psd_sqrt,
)


class Seen(NamedTuple):
    """What a probe is called with: ``probe(*seen)``."""

    model: nn.Module
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    data: Dataset
    optimizer: torch.optim.Optimizer
    step: int


def _net(activation: str, seed: int = 0, widths=(5, 7, 6, 3)) -> Network:
    torch.manual_seed(seed)
    net = Network(list(widths), activation, True, [1.0, 0.5, 2.0]).double()
    with torch.no_grad():
        for layer in net.layers:
            layer.bias.normal_()
    return net


def test_agop_matches_central_finite_differences():
    net = _net("tanh")
    x = torch.randn(11, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    eps = 1e-6
    jac = np.zeros((11, 3, 5))
    with torch.no_grad():
        for d in range(5):
            e = torch.zeros(5, dtype=torch.float64)
            e[d] = eps
            jac[:, :, d] = ((net(x + e) - net(x - e)) / (2 * eps)).numpy()
    reference = np.einsum("nkd,nke->de", jac, jac) / 11
    assert np.allclose(agop(net, x, chunk=4).numpy(), reference, rtol=1e-7, atol=1e-9)


def test_agop_of_relu_network_matches_closed_form():
    """f = m₂W₂ relu(m₁W₁x + b₁) (+ …): J(x) = M₃ D₂(x) M₂ D₁(x) M₁ with D the active units."""
    net = _net("relu", seed=2)
    x = torch.randn(20, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    w = net.effective_weights()
    total = torch.zeros(5, 5, dtype=torch.float64)
    for xi in x:
        z1 = w[0] @ xi + net.layers[0].bias
        z2 = w[1] @ torch.relu(z1) + net.layers[1].bias
        j = w[2] @ torch.diag((z2 > 0).double()) @ w[1] @ torch.diag((z1 > 0).double()) @ w[0]
        total += j.T @ j
    assert torch.allclose(agop(net, x), total.detach() / 20, atol=1e-12)


def test_agop_of_linear_network_is_gram_of_end_to_end_map():
    net = Network([4, 6, 2], "identity", False, [1.0, 1.0]).double()
    x = torch.randn(9, 4, dtype=torch.float64)
    m = net.end_to_end()
    assert torch.allclose(agop(net, x), m.T @ m, atol=1e-12)
    assert input_jacobians(net, x).shape == (9, 2, 4)


def test_matrix_correlation_and_sqrt():
    a = torch.randn(5, 5, dtype=torch.float64)
    assert matrix_correlation(a, 3 * a + 1) == pytest.approx(1.0)
    assert matrix_correlation(a, -a) == pytest.approx(-1.0)
    expected = np.corrcoef(a.flatten().numpy(), (a @ a).flatten().numpy())[0, 1]
    assert matrix_correlation(a, a @ a) == pytest.approx(expected)
    s = a @ a.T
    r = psd_sqrt(s)
    assert torch.allclose(r @ r, s, atol=1e-10)
    with pytest.raises(InputError):
        matrix_correlation(a, a[:4])


def test_feature_ansatz_probe_leaves_model_untouched():
    from learnmech.system import MLP, LearningRule, System, TeacherStudent
    from learnmech.train import initial_state, make_optimizer, objective

    system = System(architecture=MLP(width=16), data=TeacherStudent(n_train=64, n_test=0),
                    learning_rule=LearningRule(steps=0))
    model, plan, data, _ = initial_state(system)
    model.eval()
    state = Seen(model, objective(system, data), data,
                make_optimizer(model, plan, system.learning_rule), 0)
    values = FeatureAnsatz()(*state)
    assert -1 <= values["nfa.correlation"] <= 1
    assert not model.training
    assert all(p.grad is None for p in model.parameters())


def test_fitted_power_recovers_a_planted_power_and_the_balanced_linear_net():
    from learnmech.probes.feature_ansatz import (
        fit_feature_exponent,
        power_fit_residual,
        psd_power,
    )
    from learnmech.theory.feature_ansatz import feature_exponent

    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=torch.float64))
    g = (q * torch.tensor([5.0, 3.0, 1.0, 0.4, 0.1, 0.02], dtype=torch.float64)) @ q.T
    assert torch.allclose(psd_power(g, 0.5) @ psd_power(g, 0.5), g, atol=1e-12)
    alpha, residual = fit_feature_exponent(2.5 * psd_power(g, 0.37), g)
    assert alpha == pytest.approx(0.37, abs=1e-5) and residual < 1e-6
    assert power_fit_residual(g, g, 1.0) == pytest.approx(0.0, abs=1e-12)
    # a balanced two-layer linear network W₂W₁ with W₂ᵀW₂ = W₁W₁ᵀ: W₁ = Σ^½ Vᵀ, W₂ = U Σ^½,
    # whose AGOP, computed from its Jacobians, is (W₁ᵀW₁)²
    u, _ = torch.linalg.qr(torch.randn(4, 3, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(6, 3, generator=gen, dtype=torch.float64))
    s = torch.tensor([2.0, 1.0, 0.3], dtype=torch.float64).sqrt()
    w1, w2 = s[:, None] * v.T, u * s
    x = torch.randn(10, 6, generator=gen, dtype=torch.float64)
    g = agop(lambda z: z @ w1.T @ w2.T, x)
    alpha, residual = fit_feature_exponent(w1.T @ w1, g)
    assert alpha == pytest.approx(feature_exponent(2), abs=1e-5) and residual < 1e-6
    with pytest.raises(InputError):
        feature_exponent(0)
