"""Draw a law's :class:`~learnmech.laws.Figure` data: theory as lines, measurement as dots.

Every panel has one legend naming every curve (or, when there are many, every colour and
the two styles), a title wrapped to the panel's width, at most a handful of tick labels
per axis (integers where the data are integers, such as layer indices), and one colour
per ``group``. Panels are palette PNGs: a few tens of kB each.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from PIL import Image

TITLE_WIDTH = 62
"""Characters per title line at the panel's width and font size."""
MAX_LEGEND = 10
"""Beyond this many curves the legend names the colours and the two styles instead."""
PALETTE_COLOURS = 48


def _entries(figure: dict[str, Any]) -> int:
    """Legend entries when every curve and reference line is named."""
    return len(figure["curves"]) + len(figure.get("hlines", []))


def _ticks(ax: Axes, axis: str, scale: str, values: np.ndarray) -> None:
    """At most ~6 labelled ticks: integer ticks for integer data, 1-2-5 ticks on a log
    axis spanning less than two decades, decades otherwise."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    finite = values[np.isfinite(values)]
    if scale == "log":
        positive = finite[finite > 0]
        span = math.log10(positive.max() / positive.min()) if positive.size else 0.0
        subs = (1.0, 2.0, 5.0) if span < 2 else (1.0,)
        target.set_major_locator(ticker.LogLocator(base=10, subs=subs, numticks=7))
        target.set_major_formatter(ticker.LogFormatterSciNotation(labelOnlyBase=False)
                                   if span >= 2 else ticker.FormatStrFormatter("%g"))
        target.set_minor_formatter(ticker.NullFormatter())
    else:
        integer = finite.size > 0 and bool(np.all(finite == np.round(finite)))
        target.set_major_locator(ticker.MaxNLocator(nbins=6, integer=integer))


def _legend(ax: Axes, figure: dict[str, Any], colours: dict[str, Any]) -> None:
    """One legend per panel, outside the axes when it is long."""
    curves, entries = figure["curves"], _entries(figure)
    if entries == 0:
        return
    if len(curves) > MAX_LEGEND:
        kinds = {c["kind"] for c in curves}
        handles = [Line2D([], [], color=c, lw=3, label=g) for g, c in colours.items()]
        if "theory" in kinds:
            handles.append(Line2D([], [], color="0.2", lw=1.6, label="theory"))
        if "measured" in kinds:
            handles.append(Line2D([], [], color="0.2", ls="", marker="o", ms=3.5,
                                  label="measured"))
        handles += [Line2D([], [], color="0.35", ls="--", lw=1.0, label=label)
                    for _, label in figure.get("hlines", [])]
        ax.legend(handles=handles, fontsize=6.5, frameon=False, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), ncol=1 + len(handles) // 16)
    elif entries > 6:
        ax.legend(fontsize=6.5, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=7, frameon=False)


def draw(figure: dict[str, Any], dpi: int = 100) -> MplFigure:
    """The matplotlib figure of one :class:`learnmech.laws.Figure` in its dict form (the
    caller closes it). Curves of the same ``group`` share a colour; ``theory`` curves are
    lines and ``measured`` curves are dots."""
    curves = figure["curves"]
    wide = _entries(figure) > 6
    fig, ax = plt.subplots(figsize=(7.4 if wide else 5.6, 3.7), dpi=dpi)
    colours: dict[str, Any] = {}
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    xs, ys = [], []
    for curve in curves:
        group = curve.get("group", "") or curve["label"]
        colour = colours.setdefault(group, cycle[len(colours) % len(cycle)])
        # stored verdicts carry missing values as None: NaN here, a gap in the plot
        x, y = (np.asarray(curve[k], dtype=float) for k in ("x", "y"))
        xs.append(x)
        ys.append(y)
        if curve["kind"] == "theory":
            ax.plot(x, y, "-", color=colour, lw=1.6, label=curve["label"])
        else:
            ax.plot(x, y, "o", color=colour, ms=3.2, alpha=0.75, label=curve["label"])
    for y, label in figure.get("hlines", []):
        ax.axhline(y, color="0.35", ls="--", lw=1.0, label=label)
        ys.append(np.asarray([y], dtype=float))
    ax.set_xscale(figure.get("xscale", "linear"))
    ax.set_yscale(figure.get("yscale", "linear"))
    empty = np.zeros(0)
    _ticks(ax, "x", figure.get("xscale", "linear"), np.concatenate(xs) if xs else empty)
    _ticks(ax, "y", figure.get("yscale", "linear"), np.concatenate(ys) if ys else empty)
    ax.tick_params(labelsize=8)
    ax.set_title(textwrap.fill(figure["title"], TITLE_WIDTH + (18 if wide else 0)),
                 fontsize=9.5)
    ax.set_xlabel(figure["xlabel"], fontsize=9)
    ax.set_ylabel(figure["ylabel"], fontsize=9)
    ax.grid(alpha=0.25)
    _legend(ax, figure, colours)
    fig.tight_layout()
    return fig


def _palette_image(figure: dict[str, Any], dpi: int) -> Image.Image:
    """:func:`draw`'s figure as an image of at most :data:`PALETTE_COLOURS` colours."""
    fig = draw(figure, dpi)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    return Image.open(buf).convert("RGB").quantize(colors=PALETTE_COLOURS)


def render_png(figure: dict[str, Any], dpi: int = 100) -> bytes:
    """PNG bytes (palette-compressed) of :func:`draw`'s figure."""
    out = io.BytesIO()
    _palette_image(figure, dpi).save(out, format="PNG", optimize=True)
    return out.getvalue()


def data_uri(figure: dict[str, Any]) -> str:
    """The figure as a ``data:image/webp;base64,...`` URI for a self-contained page: the
    palette image in lossless WebP, 30 % smaller than the PNG (the standard report's 142
    figures: 0.87 MB against 1.24 MB at 96 colours), so the page stays under 1.5 MB."""
    out = io.BytesIO()
    _palette_image(figure, 100).save(out, format="WEBP", lossless=True, method=6, quality=100)
    return "data:image/webp;base64," + base64.b64encode(out.getvalue()).decode()
