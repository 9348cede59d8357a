"""The spectral norm by bidiagonalization against a dense float64 SVD."""

from __future__ import annotations

import math

import pytest
import torch

from learnmech.errors import InputError
from learnmech.linalg import spectral_norm


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(300, 700), (600, 400), (20, 30)])
def test_spectral_norm_matches_the_dense_svd(shape, dtype):
    """float32 matrices are iterated in float32; the reference is float64 either way."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
    want = float(torch.linalg.svdvals(a.double())[0])
    assert spectral_norm(a) == pytest.approx(want, rel=1e-6)


def test_low_rank_and_sign_like_updates():
    g = torch.Generator().manual_seed(2)
    low = torch.randn(500, 3, generator=g) @ torch.randn(3, 400, generator=g)  # β vanishes
    sign = torch.sign(torch.randn(512, 512, generator=g)) * 1e-2  # an Adam-like update
    for a in (low, sign):
        assert spectral_norm(a) == pytest.approx(float(torch.linalg.svdvals(a.double())[0]),
                                                 rel=1e-6)


def test_zero_matrix_and_bad_shape():
    assert spectral_norm(torch.zeros(400, 300)) == 0.0
    with pytest.raises(InputError, match="matrix"):
        spectral_norm(torch.ones(5))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_clustered_top_of_a_known_spectrum(dtype):
    """``U diag(s) Vᵀ`` with the top singular values 1, 0.999, 0.998, …: the iteration runs
    long enough for the unreorthogonalized bases to lose orthogonality; the reference is
    the constructed ``s_max = 1``."""
    g = torch.Generator().manual_seed(3)
    m, n = 400, 300
    u, _ = torch.linalg.qr(torch.randn(m, n, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    s = torch.cat([1 - 1e-3 * torch.arange(20, dtype=torch.float64),
                   torch.rand(n - 20, generator=g, dtype=torch.float64) * 0.9])
    a = (u * s) @ v.T
    assert spectral_norm(a.to(dtype)) == pytest.approx(1.0, rel=1e-6)


def test_huge_and_non_finite_entries():
    """Entries near the float32 limit: the products would overflow unscaled."""
    g = torch.Generator().manual_seed(4)
    a = torch.randn(300, 200, generator=g, dtype=torch.float64)
    want = float(torch.linalg.svdvals(a)[0])
    assert spectral_norm((a * 1e36).float()) == pytest.approx(want * 1e36, rel=1e-6)
    bad = a.clone()
    bad[3, 4] = float("inf")
    assert math.isnan(spectral_norm(bad))
    bad[3, 4] = float("nan")
    assert math.isnan(spectral_norm(bad))
