"""Neural-collapse metrics on constructed features with known answers."""

import numpy as np
import pytest
import torch

from learnmech.errors import InputError
from learnmech.probes.collapse import collapse_metrics


def _simplex(c: int, p: int, radius: float, seed: int = 0) -> torch.Tensor:
    """``c`` centred means of norm ``radius`` forming a simplex ETF, embedded in ℝ^p."""
    etf = torch.eye(c, dtype=torch.float64) - 1.0 / c
    etf = etf / torch.linalg.norm(etf, dim=1, keepdim=True) * radius  # rows of norm r
    q, _ = torch.linalg.qr(torch.randn(p, c, generator=torch.Generator().manual_seed(seed),
                                       dtype=torch.float64))
    return etf @ q.T  # (c, p): an isometric embedding keeps norms and angles


def _with_noise(means: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Each class gets the 2p points μ_c ± σ√p e_k, so Σ_W = σ² I exactly."""
    c, p = means.shape
    dev = sigma * np.sqrt(p) * torch.cat([torch.eye(p), -torch.eye(p)]).double()
    h = torch.cat([m + dev for m in means])
    y = torch.arange(c).repeat_interleave(2 * p)
    return h, y


def test_exact_simplex_is_fully_collapsed():
    offset = torch.full((8,), 2.0, dtype=torch.float64)  # a global mean does not matter
    means = _simplex(5, 8, radius=3.0) + offset
    h, y = means.repeat(4, 1), torch.arange(5).repeat(4)
    w = means - means.mean(0)
    values = collapse_metrics(h, y, w, b=-(w @ offset))
    for name, v in values.items():
        assert v == pytest.approx(0.0, abs=1e-10), name


def test_nc1_closed_form_for_simplex_with_isotropic_noise():
    """Σ_W = σ²I and an ETF of radius r: NC1 = σ²(C−1)²/(C r²)."""
    c, p, r, sigma = 4, 6, 2.0, 0.3
    h, y = _with_noise(_simplex(c, p, r, seed=1), sigma)
    values = collapse_metrics(h, y, w=torch.randn(c, p, dtype=torch.float64))
    assert values["nc1"] == pytest.approx(sigma**2 * (c - 1) ** 2 / (c * r**2), rel=1e-10)
    assert values["nc2_etf"] == pytest.approx(0.0, abs=1e-10)


def test_nc1_matches_numpy_pseudo_inverse_on_random_features():
    g = torch.Generator().manual_seed(3)
    h = torch.randn(90, 7, generator=g, dtype=torch.float64)
    y = torch.arange(3).repeat(30)
    h[y == 1] += 2.0
    values = collapse_metrics(h, y, w=torch.randn(3, 7, generator=g, dtype=torch.float64))
    hn, yn = h.numpy(), y.numpy()
    mu = np.stack([hn[yn == k].mean(0) for k in range(3)])
    sw = sum(np.outer(v, v) for v in hn - mu[yn]) / len(hn)
    mc = mu - mu.mean(0)
    sb = mc.T @ mc / 3
    assert values["nc1"] == pytest.approx(np.trace(sw @ np.linalg.pinv(sb, rcond=1e-10)) / 3,
                                          rel=1e-8)


def test_non_simplex_geometry_by_hand():
    """Means (1,0), (−1,0), (0,3): centred (1,−1), (−1,−1), (0,2); cosines 0, −1/√2, −1/√2."""
    means = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    values = collapse_metrics(means, torch.arange(3), w=means)
    norms = np.array([np.sqrt(2), np.sqrt(2), 2.0])
    assert values["nc2_equinorm"] == pytest.approx(norms.std(ddof=1) / norms.mean())
    cos = np.array([0.0, -1 / np.sqrt(2), -1 / np.sqrt(2)])
    assert values["nc2_angle_dev"] == pytest.approx(np.mean(np.abs(cos + 0.5)))
    assert values["nc2_angle_std"] == pytest.approx(np.repeat(cos, 2).std(ddof=1))
    assert values["nc2_etf"] > 0.1
    centred = means - means.mean(0)
    expected_nc3 = np.sum((means.numpy() / np.linalg.norm(means.numpy())
                           - centred.numpy() / np.linalg.norm(centred.numpy())) ** 2)
    assert values["nc3"] == pytest.approx(expected_nc3)


def test_nc4_counts_disagreements_with_nearest_class_centre():
    means = _simplex(4, 4, radius=1.0)
    h, y = means.repeat(3, 1), torch.arange(4).repeat(3)
    w = means[[1, 0, 2, 3]]  # the classifier swaps classes 0 and 1
    assert collapse_metrics(h, y, w)["nc4"] == pytest.approx(0.5)
    assert collapse_metrics(h, y, means)["nc4"] == 0.0


def test_bad_input():
    h = torch.randn(6, 3)
    with pytest.raises(InputError):
        collapse_metrics(h, torch.tensor([0, 0, 1, 1, 2, 2]), w=torch.randn(4, 3))  # class 3 absent
    with pytest.raises(InputError):
        collapse_metrics(h, torch.tensor([0, 0, 1, 1, 2, 2]), w=torch.randn(3, 5))
