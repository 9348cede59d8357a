"""Over-budget requests are refused before anything is allocated, naming the argument; long
computations (kernels, Lanczos, trace and density estimates) report their progress."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
import torch
from torch import nn

from learnmech.errors import InputError
from learnmech.linalg import (
    DenseOperator,
    HessianOperator,
    hutch_pp,
    hutchinson,
    lanczos,
    spectral_density,
)
from learnmech.memory import memory_budget, require_memory
from learnmech.probes.ntk import empirical_ntk
from learnmech.theory.kernels import analytic_kernels


@pytest.fixture
def small_budget(monkeypatch):
    monkeypatch.setenv("LEARNMECH_MAX_MEMORY_GB", "0.001")  # 1 MB


def test_budget_comes_from_the_environment(small_budget):
    assert memory_budget() == 10**6
    require_memory("x", "a thing", 10**6, "less")
    with pytest.raises(InputError, match=r"about 0\.002 GB.*LEARNMECH_MAX_MEMORY_GB.*less"):
        require_memory("x", "a thing", 2 * 10**6, "less")


def test_bad_budget_is_an_input_error(monkeypatch):
    monkeypatch.setenv("LEARNMECH_MAX_MEMORY_GB", "lots")
    with pytest.raises(InputError, match="LEARNMECH_MAX_MEMORY_GB"):
        memory_budget()


def test_analytic_kernels_refuse_before_allocating(small_budget):
    x = torch.randn(400, 3)  # 2 kernels × 400² × 8 B = 2.56 MB
    with pytest.raises(InputError, match=r"x1.*400 × 400 inputs"):
        analytic_kernels(x, depth=2)
    assert analytic_kernels(x[:100], depth=2).ntk.shape == (100, 100)  # 0.16 MB


def test_empirical_ntk_refuses_before_allocating(small_budget):
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 4))
    x = torch.randn(200, 3)  # full: 200² × 16 × 4 B = 2.56 MB; trace: 0.16 MB
    with pytest.raises(InputError, match="outputs='trace'"):
        empirical_ntk(model, x)
    assert empirical_ntk(model, x, outputs="trace").shape == (200, 200)
    with pytest.raises(InputError) as refused:  # trace already: the hint is fewer inputs
        empirical_ntk(model, torch.randn(1000, 3), outputs="trace")  # 4 MB
    assert "fewer inputs" in str(refused.value) and "outputs=" not in str(refused.value)


def test_dense_hessian_refuses_before_allocating(small_budget):
    model = nn.Linear(300, 2)  # 602 parameters: 2 × 602² × 4 B = 2.9 MB
    batch = (torch.randn(5, 300), torch.randn(5, 2))
    op = HessianOperator(model, nn.functional.mse_loss, batch)
    with pytest.raises(InputError, match=r"dense.*602 parameters"):
        op.dense()


@pytest.mark.parametrize("method", ["structured", "jacobian", "ntvp"])
def test_empirical_ntk_reports_progress_to_the_last_block(method):
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))
    x = torch.randn(40, 3)
    seen: list[tuple[int, int]] = []
    want = empirical_ntk(model, x, outputs="trace", method=method)
    got = empirical_ntk(model, x, outputs="trace", method=method, max_memory=4096,
                        progress=lambda done, total: seen.append((done, total)))
    torch.testing.assert_close(got, want)
    assert len(seen) > 1 and seen[-1][0] == seen[-1][1]
    assert [d for d, _ in seen] == list(range(1, len(seen) + 1))


def _recorder() -> tuple[list[tuple[int, int]], Callable[[int, int], None]]:
    seen: list[tuple[int, int]] = []
    return seen, lambda done, total: seen.append((done, total))


def _ends_complete(seen: list[tuple[int, int]]) -> None:
    """Calls were made, ``done`` never fell and the last call says everything is done."""
    assert len(seen) > 1 and seen[-1][0] == seen[-1][1]
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen))
    assert all(done <= total for done, total in seen)


@pytest.mark.parametrize("name", ["lanczos", "hutchinson", "hutch_pp", "spectral_density"])
def test_matrix_free_estimators_report_progress_and_compute_the_same(name):
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(60, 60, generator=gen, dtype=torch.float64)
    op = DenseOperator(a + a.T)
    run = {"lanczos": lambda **kw: lanczos(op, 2, tol=1e-10, **kw).values,
           "hutchinson": lambda **kw: hutchinson(op, 12, **kw).value,
           "hutch_pp": lambda **kw: hutch_pp(op, 12, **kw).value,
           "spectral_density": lambda **kw: spectral_density(op, probes=3, steps=20,
                                                             **kw).nodes}[name]
    seen, progress = _recorder()
    torch.testing.assert_close(torch.as_tensor(run(progress=progress)), torch.as_tensor(run()))
    _ends_complete(seen)


def test_analytic_kernels_report_progress_per_block_of_rows():
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(1))
    seen, progress = _recorder()
    got = analytic_kernels(x, depth=3, max_memory=12 * 50 * 8 * 7, progress=progress)
    want = analytic_kernels(x, depth=3)
    torch.testing.assert_close(got.ntk, want.ntk)
    _ends_complete(seen)
    assert seen[-1] == (50, 50) and len(seen) == 8  # blocks of 7 rows
