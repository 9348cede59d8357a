"""Representational similarity: learnmech against ckatorch and torch-cka, in one run.

Two correlated representations X, Y (n examples × 256 features, float64) are compared
by linear CKA and debiased CKA (unbiased HSIC of Song et al. 2012). Every library gets the
same tensors; each timing is the best of 5 repeats on one thread; the table prints the
values (they must agree) and each library's time divided by learnmech's Gram-form time
(``learnmech*`` is :func:`~learnmech.probes.similarity.linear_cka` on the features,
cheaper when features are fewer than examples).

Run with an environment that has the peers (they are not learnmech dependencies)::

    PYTHONPATH=src python bench/similarity.py
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace

import torch
from ckatorch import cka_base
from torch_cka import CKA as TorchCKA

from learnmech.probes.similarity import cka, gram, linear_cka


def best_of(fn: Callable[[], float], repeats: int = 5) -> tuple[float, float]:
    value, best = fn(), float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return value, best


def torch_cka_debiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """torch-cka's unbiased HSIC (its ``CKA._HSIC``) on one full batch."""
    hsic = TorchCKA._HSIC
    owner = SimpleNamespace(device="cpu")
    k, l = x @ x.T, y @ y.T
    k.fill_diagonal_(0.0)
    l.fill_diagonal_(0.0)
    k, l = k.float(), l.float()  # its ones vector is float32
    return hsic(owner, k, l) / (hsic(owner, k, k) * hsic(owner, l, l)) ** 0.5


def compare(n: int) -> None:
    """Print one block of the table for ``n`` examples."""
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, 256, generator=g, dtype=torch.float64)
    mix = torch.randn(256, 256, generator=g, dtype=torch.float64) / 16
    y = 0.7 * x @ mix + torch.randn(n, 256, generator=g, dtype=torch.float64)
    rows = {
        "linear CKA": [
            ("learnmech", lambda: cka(gram(x), gram(y))),
            ("learnmech*", lambda: linear_cka(x, y)),
            ("ckatorch", lambda: float(cka_base(x, y, unbiased=False))),
        ],
        "debiased CKA": [
            ("learnmech", lambda: cka(gram(x), gram(y), debiased=True)),
            ("ckatorch", lambda: float(cka_base(x, y, unbiased=True))),
            ("torch-cka", lambda: torch_cka_debiased(x, y)),
        ],
    }
    for measure, entries in rows.items():
        ours = None
        for library, fn in entries:
            value, seconds = best_of(fn)
            ours = ours or seconds
            print(f"{n:>5} {measure:<14} {library:<12} {value:>9.5f} {1e3 * seconds:>9.2f} "
                  f"{seconds / ours:>6.2f}")


def main() -> None:
    torch.set_num_threads(1)
    print(f"{'n':>5} {'measure':<14} {'library':<12} {'value':>9} {'ms':>9} {'ratio':>6}")
    for n in (500, 1000, 2000, 4000):
        compare(n)


if __name__ == "__main__":
    main()
