"""Draw a law's :class:`~learnmech.laws.Figure` data: theory as lines, measurement as dots."""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def render_png(figure: dict[str, Any], dpi: int = 110) -> bytes:
    """PNG bytes of one figure given as the dict form of :class:`learnmech.laws.Figure`.

    Curves of the same ``group`` share a colour; ``theory`` curves are lines and
    ``measured`` curves are dots.
    """
    fig, ax = plt.subplots(figsize=(5.6, 3.7), dpi=dpi)
    colours: dict[str, Any] = {}
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    curves = figure["curves"]
    for curve in curves:
        group = curve.get("group", "") or curve["label"]
        colour = colours.setdefault(group, cycle[len(colours) % len(cycle)])
        # stored verdicts carry missing values as None: NaN here, a gap in the plot
        x, y = (np.asarray(curve[k], dtype=float) for k in ("x", "y"))
        if curve["kind"] == "theory":
            ax.plot(x, y, "-", color=colour, lw=1.6, label=curve["label"])
        else:
            ax.plot(x, y, "o", color=colour, ms=3.2, alpha=0.75, label=curve["label"])
    for y, label in figure.get("hlines", []):
        ax.axhline(y, color="0.35", ls="--", lw=1.0, label=label)
    ax.set_xscale(figure.get("xscale", "linear"))
    ax.set_yscale(figure.get("yscale", "linear"))
    ax.set_title(figure["title"], fontsize=10)
    ax.set_xlabel(figure["xlabel"])
    ax.set_ylabel(figure["ylabel"])
    ax.grid(alpha=0.25)
    if len(curves) + len(figure.get("hlines", [])) <= 14:
        ax.legend(fontsize=7, frameon=False, ncol=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def data_uri(figure: dict[str, Any]) -> str:
    """The figure as a ``data:image/png;base64,...`` URI for a self-contained page."""
    return "data:image/png;base64," + base64.b64encode(render_png(figure)).decode()
