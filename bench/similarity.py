"""Representational similarity: learnmech against ckatorch and torch-cka, in one run.

Two correlated representations X, Y (n examples × 256 features, float64) are compared
by linear CKA and debiased CKA (unbiased HSIC of Song et al. 2012). Every library gets the
same tensors, on one thread; each library is timed interleaved with learnmech's Gram
form (``bench/timing.py``, ``--repeats`` pairs). The table prints the values (they must
agree), the median milliseconds and each library's time divided by learnmech's Gram-form
time, median [min–max] over the pairs (``learnmech*`` is
:func:`~learnmech.probes.similarity.linear_cka` on the features, cheaper when features
are fewer than examples; there the ratio is below 1).

Run with the peer environment that ``bench/peers.sh`` builds (the peers are not learnmech
dependencies)::

    PYTHONPATH=src ~/venvs/peers/bin/python bench/similarity.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
from types import SimpleNamespace

import torch
from ckatorch import cka_base
from torch_cka import CKA as TorchCKA

from learnmech.probes.similarity import cka, gram, linear_cka
from timing import MIN_REPEATS, interleaved, seconds_of


def torch_cka_debiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """torch-cka's unbiased HSIC (its ``CKA._HSIC``) on one full batch."""
    hsic = TorchCKA._HSIC
    owner = SimpleNamespace(device="cpu")
    k, l = x @ x.T, y @ y.T
    k.fill_diagonal_(0.0)
    l.fill_diagonal_(0.0)
    k, l = k.float(), l.float()  # its ones vector is float32
    return hsic(owner, k, l) / (hsic(owner, k, k) * hsic(owner, l, l)) ** 0.5


def compare(n: int, repeats: int) -> None:
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
        ours = entries[0][1]
        for library, fn in entries:
            pairs = interleaved(seconds_of(ours), seconds_of(fn), repeats)
            print(f"{n:>5} {measure:<14} {library:<12} {fn():>9.5f} "
                  f"{1e3 * statistics.median(pairs.peer):>9.2f} {pairs.ratio():>18}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=MIN_REPEATS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{args.repeats} interleaved pairs; ratio = library time / learnmech Gram-form time")
    print(f"{'n':>5} {'measure':<14} {'library':<12} {'value':>9} {'ms':>9} "
          f"{'ratio [min–max]':>18}")
    for n in (500, 1000, 2000, 4000):
        compare(n, args.repeats)


if __name__ == "__main__":
    main()
