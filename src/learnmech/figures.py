"""Figure data: what a verdict, the μP verifier or a sweep hands to the report to draw.

A :class:`Figure` is one panel of :class:`Curve` series, theory as lines and measurements
as dots; nothing here draws (that is :mod:`learnmech.report`) or judges (that is
:mod:`learnmech.laws`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Curve", "Figure"]


@dataclass
class Curve:
    """One series of a figure: a theory line or measured dots (same ``group`` = same colour)."""

    label: str
    x: list[float]
    y: list[float]
    kind: Literal["theory", "measured"]
    group: str = ""


@dataclass
class Figure:
    """Data for one panel: curves, axes, optional horizontal reference lines."""

    title: str
    xlabel: str
    ylabel: str
    curves: list[Curve] = field(default_factory=list)
    xscale: Literal["linear", "log"] = "linear"
    yscale: Literal["linear", "log"] = "linear"
    hlines: list[tuple[float, str]] = field(default_factory=list)
