"""Runs shared between a law's claim and its control within one :meth:`Law.check`."""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from learnmech.laws.base import LawContext
from learnmech.system import System
from learnmech.train import Schedule, Trajectory


class RunMemo:
    """Remembers the trajectories trained through the last :class:`LawContext` it saw.

    A control measured on the same runs as its claim (for instance the same run at an
    early checkpoint) then costs nothing even without a store. A new context clears it.
    """

    def __init__(self) -> None:
        self._ctx: weakref.ref[LawContext] | None = None
        self._runs: dict[tuple[str, tuple[str, ...], Schedule | None], Trajectory] = {}

    def run(self, ctx: LawContext, system: System, probes: Sequence[str],
            schedule: Schedule | None = None, label: str = "") -> Trajectory:
        if self._ctx is None or self._ctx() is not ctx:
            self._ctx, self._runs = weakref.ref(ctx), {}
        key = (system.run_id, tuple(sorted(probes)), schedule)
        if key not in self._runs:
            self._runs[key] = ctx.run(system, probes, schedule, label=label)
        return self._runs[key]
