"""Render verdicts (the JSON records of :meth:`learnmech.laws.Verdict.to_json`) to one
self-contained HTML file: figures are embedded PNGs, no external assets."""

from __future__ import annotations

import datetime as dt
import platform
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from learnmech.laws import STRANDS
from learnmech.report.figures import data_uri


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # NaN
            return "not measured"
        return f"{value:.3g}"
    return str(value)


def _resolution(verdict: dict[str, Any]) -> str:
    """A verdict's resolving power as a percentage, or why it has none."""
    if verdict.get("qualitative"):
        return f"qualitative ({verdict.get('qualitative_reason', '')})"
    power = verdict.get("resolving_power")
    return "not reported" if power is None else f"{power:.0%}"


def render(verdicts: Sequence[dict[str, Any]], title: str = "learnmech law catalogue") -> str:
    """The report's HTML text for ``verdicts``."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["fmt"] = _fmt
    env.filters["png"] = data_uri
    env.filters["resolution"] = _resolution
    template = env.from_string(
        resources.files("learnmech.report").joinpath("report.html.j2").read_text()
    )
    order = list(STRANDS)
    ordered = sorted(verdicts, key=lambda v: (order.index(v["strand"]), v["id"]))
    return template.render(
        title=title,
        verdicts=ordered,
        strands=STRANDS,
        generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        machine=f"{platform.node()} · {platform.machine()} · Python {platform.python_version()}",
        counts={
            k: sum(v["verdict"] == k for v in ordered) for k in ("holds", "fails", "inconclusive")
        } | {"resolved": sum(v.get("resolving_power") is not None for v in ordered)},
    )


def write_report(verdicts: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write the report for ``verdicts`` to ``path`` and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(verdicts))
    return out
