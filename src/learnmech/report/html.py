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


def _duration(verdict: dict[str, Any]) -> str:
    """Seconds the check took, and the training time of the runs it read from the store."""
    seconds, stored = verdict["seconds"], verdict.get("stored_seconds") or 0.0
    took = f"{seconds:.1f} s" if seconds >= 0.05 else "< 0.1 s"
    return f"{took} + {stored:.0f} s of stored runs" if stored >= 0.5 else took


def _control_class(control: dict[str, Any]) -> str:
    """A control that fails is the check working (``ok``); one that holds is a problem."""
    return {"fails": "ok", "holds": "bad"}.get(control["verdict"], "inconclusive")


def _control_text(control: dict[str, Any]) -> str:
    return {"fails": "fails ✓", "holds": "holds ✗"}.get(control["verdict"], control["verdict"])


def _ladder(outcome: str) -> str:
    """A scaled prediction's outcome: rejected (the check tells it from the theory) or not."""
    return {"fails": "rejected", "holds": "accepted"}.get(outcome, outcome)


def render(verdicts: Sequence[dict[str, Any]], title: str = "learnmech law catalogue") -> str:
    """The report's HTML text for ``verdicts``."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["fmt"] = _fmt
    env.filters["png"] = data_uri
    env.filters["resolution"] = _resolution
    env.filters["duration"] = _duration
    env.filters["control_class"] = _control_class
    env.filters["control_text"] = _control_text
    env.filters["ladder"] = _ladder
    template = env.from_string(
        resources.files("learnmech.report").joinpath("report.html.j2").read_text()
    )
    # a verdict stored under a strand this version does not know gets a section of its own
    strands = STRANDS | {v["strand"]: str(v["strand"]) for v in verdicts
                         if v["strand"] not in STRANDS}
    order = list(strands)
    ordered = sorted(verdicts, key=lambda v: (order.index(v["strand"]), v["id"]))
    return template.render(
        title=title,
        verdicts=ordered,
        strands=strands,
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
