"""Interleaved timing, shared by the scripts in ``bench/``.

On a shared machine the load changes from second to second, so one side timed after the
other measures the load as much as the code. Every comparison here runs ours, peer, ours,
peer … (``repeats`` pairs, after one untimed warm-up call of each), so that a burst of
load hits both alike, and reports per pair the ratio peer time / our time (above 1:
ours is faster), as its median with the minimum and maximum over the pairs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: The fewest pairs a reported ratio is the median of.
MIN_REPEATS = 5


def seconds_of(fn: Callable[[], object]) -> Callable[[], float]:
    """A call of ``fn`` that returns its wall time in seconds instead of its value."""

    def timed() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return timed


@dataclass
class Pairs:
    """Seconds of ``repeats`` interleaved pairs: ``ours[i]`` ran just before ``peer[i]``."""

    ours: list[float]
    peer: list[float]

    @property
    def ratios(self) -> list[float]:
        """Peer time / our time, pair by pair (above 1: ours is faster)."""
        return [p / o for o, p in zip(self.ours, self.peer, strict=True)]

    def ratio(self) -> str:
        """``median [min–max]`` of :attr:`ratios`."""
        return spread(self.ratios)

    def inverse_ratio(self) -> str:
        """``median [min–max]`` of our time / peer time (an overhead, where ours wraps the
        peer's work)."""
        return spread([1 / r for r in self.ratios])

    def times(self) -> str:
        """Median seconds of both sides, ``ours s / peer s``."""
        return f"{statistics.median(self.ours):.3f} s / {statistics.median(self.peer):.3f} s"


def interleaved(
    ours: Callable[[], float], peer: Callable[[], float], repeats: int = MIN_REPEATS,
    warmup: bool = True,
) -> Pairs:
    """Run ``ours(); peer()`` ``repeats`` times (after one warm-up call of each when
    ``warmup``); each callable returns the seconds it measured (see :func:`seconds_of`;
    a worker in another process may time itself and return its own measurement)."""
    if repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats}")
    if warmup:
        ours(), peer()
    pairs = Pairs([], [])
    for _ in range(repeats):
        pairs.ours.append(ours())
        pairs.peer.append(peer())
    return pairs


def spread(values: Sequence[float], digits: int = 2) -> str:
    """``median [min–max]`` of ``values``."""
    return (f"{statistics.median(values):.{digits}f} "
            f"[{min(values):.{digits}f}–{max(values):.{digits}f}]")
