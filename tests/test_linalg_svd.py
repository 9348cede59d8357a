"""The spectral norm by bidiagonalization against a dense float64 SVD."""

from __future__ import annotations

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
