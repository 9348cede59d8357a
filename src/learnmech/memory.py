"""The memory budget: what a run or an instrument may allocate, checked before it does.

``$LEARNMECH_MAX_MEMORY_GB`` (GB) sets the budget; by default it is 80 % of this machine's
physical memory. A request above it is an :class:`~learnmech.errors.InputError` naming the
argument, the memory it would need and how to change either, never an allocator crash.
"""

from __future__ import annotations

import os

from learnmech.errors import InputError


def memory_budget() -> int:
    """Bytes a run may use: ``$LEARNMECH_MAX_MEMORY_GB`` (GB) if set, else 80 % of this
    machine's physical memory (16 GB where it cannot be read)."""
    text = os.environ.get("LEARNMECH_MAX_MEMORY_GB")
    if text is not None:
        try:
            gb = float(text)
        except ValueError:
            gb = float("nan")
        if not gb > 0 or gb == float("inf"):
            raise InputError("LEARNMECH_MAX_MEMORY_GB", text, "a positive number of GB")
        return int(gb * 1e9)
    try:
        return int(0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 16 * 10**9


def require_memory(field: str, what: str, need: float, smaller: str,
                   budget: int | None = None) -> None:
    """Raise :class:`InputError` on ``field`` when ``what`` needs ``need`` bytes, more than
    ``budget`` (default :func:`memory_budget`); ``smaller`` says what to make smaller."""
    budget = memory_budget() if budget is None else budget
    if need > budget:
        raise InputError(
            field, f"{what} needing about {need / 1e9:.3g} GB",
            f"at most {budget / 1e9:.3g} GB (the memory budget; set LEARNMECH_MAX_MEMORY_GB "
            f"to change it, or {smaller})")
