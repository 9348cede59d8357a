"""The HTML report is self-contained and shows every verdict."""

from __future__ import annotations

import base64
import io
import itertools
import json
import re

import numpy as np

from learnmech.laws import Criterion, Curve, Evidence, Figure, Verdict
from learnmech.report import write_report


def verdict_record(law_id: str, value: float) -> dict:
    fig = Figure("t", "x", "y", [Curve("theory", [0, 1], [0, 1], "theory", "a"),
                                 Curve("measured", [0, 1], [0.1, 0.9], "measured", "a")])
    return Verdict(
        law_id, "solvable", "claim text", "Someone 2020", "regime text", "control text", "quick",
        Evidence([Criterion("error", value, 0.1)], [fig]),
        Evidence([Criterion("error", 0.5, 0.1)]), 1.0,
    ).to_json()


def test_report_has_scorecard_sections_and_embedded_figures(tmp_path):
    path = write_report([verdict_record("law-a", 0.05), verdict_record("law-b", float("nan"))],
                        tmp_path / "r.html")
    html = path.read_text()
    assert html.count('class="law"') == 2
    assert "1 hold · 0 fail · 1 inconclusive" in html
    assert "not measured" in html
    assert len(re.findall(r'src="data:image/webp;base64,', html)) == 2
    assert "http://" not in html and "https://" not in html


def test_missing_values_in_figures_are_strict_json_and_still_drawn(tmp_path):
    fig = Figure("t", "x", "y", [Curve("measured", [0, 1, 2], [float("nan"), 1.0, 2.0],
                                       "measured", "a")])
    record = Verdict(
        "law-c", "empirical", "claim", "ref", "regime", "control", "quick",
        Evidence([Criterion("error", 0.05, 0.1)], [fig]), Evidence([Criterion("error", 0.5, 0.1)]),
        1.0,
    ).to_json()
    text = json.dumps(record, allow_nan=False)  # raises on NaN or infinity
    assert json.loads(text)["figures"][0]["curves"][0]["y"] == [None, 1.0, 2.0]
    html = write_report([json.loads(text)], tmp_path / "r.html").read_text()
    assert len(re.findall(r'src="data:image/webp;base64,', html)) == 1


def test_report_shows_resolving_power_and_the_ladder(tmp_path):
    from learnmech.laws import Sharpness

    ladder = [{"change": 0.05, "minus": "holds", "plus": "holds"},
              {"change": 0.1, "minus": "fails", "plus": "fails"}]
    record = Verdict(
        "law-d", "limits", "claim", "ref", "regime", "control text", "quick",
        Evidence([Criterion("error", 0.05, 0.1)]), Evidence([Criterion("error", 0.5, 0.1)]),
        1.0, control_theory="a rival kernel", sharpness=Sharpness(0.1, ladder),
    ).to_json()
    html = write_report([record], tmp_path / "r.html").read_text()
    assert "10%" in html and "×0.90/×1.10" in html and "a rival kernel" in html
    assert "resolving power reported by 1" in html


def layers_figure(n: int, title: str = "per-layer update size") -> dict:
    """``n`` groups (layers), each a theory line and measured dots over integer steps."""
    curves = []
    for layer in range(n):
        x = list(range(12))
        curves.append(Curve(f"layer {layer} theory", x, [1.0 + layer] * 12, "theory",
                            f"layer {layer}"))
        curves.append(Curve(f"layer {layer}", x, [1.0 + layer + 0.1 * (i % 3) for i in x],
                            "measured", f"layer {layer}"))
    from dataclasses import asdict

    return asdict(Figure(title, "layer", "size", curves))


def _legend_texts(fig) -> list[str]:
    (ax,) = fig.axes
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def test_every_figure_has_one_legend_naming_its_curves_or_its_colours():
    import matplotlib.pyplot as plt

    from learnmech.report.figures import draw

    few = layers_figure(2)
    fig = draw(few)
    assert _legend_texts(fig) == [c["label"] for c in few["curves"]]
    plt.close(fig)
    many = layers_figure(15)
    fig = draw(many)
    texts = _legend_texts(fig)
    assert texts == [f"layer {i}" for i in range(15)] + ["theory", "measured"]
    plt.close(fig)


def test_ticks_are_few_and_integer_for_integer_data_and_titles_wrap():
    import matplotlib.pyplot as plt

    from learnmech.report.figures import TITLE_WIDTH, draw

    long_title = "kernel distance from initialization against the output multiplier " * 3
    fig = draw(layers_figure(2, long_title))
    (ax,) = fig.axes
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    shown = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert 2 <= len(shown) <= 8
    assert all(float(t).is_integer() for t in shown)
    lines = ax.get_title().split("\n")
    assert len(lines) >= 3 and max(len(line) for line in lines) <= TITLE_WIDTH
    # labels must not overlap: each tick label's box is disjoint from the next one's
    boxes = sorted((t.get_window_extent() for t in ax.get_xticklabels() if t.get_text()),
                   key=lambda b: b.x0)
    assert all(a.x1 <= b.x0 for a, b in itertools.pairwise(boxes))
    plt.close(fig)


def test_a_dense_figure_is_a_small_png_and_the_page_carries_it_losslessly_smaller():
    from PIL import Image

    from learnmech.report.figures import data_uri, render_png

    png = render_png(layers_figure(15))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 40_000
    webp = base64.b64decode(data_uri(layers_figure(15)).split(",", 1)[1])
    assert webp[8:12] == b"WEBP" and len(webp) < 0.9 * len(png)
    pixels = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in (png, webp)]
    assert np.array_equal(*pixels)


def test_controls_that_fail_read_as_success_and_stored_runs_are_timed(tmp_path):
    record = verdict_record("law-e", 0.05) | {"seconds": 0.01, "stored_seconds": 42.0}
    html = write_report([record], tmp_path / "r.html").read_text()
    assert '<td class="ok">fails ✓ (0.5)</td>' in html
    assert "&lt; 0.1 s + 42 s of stored runs" in html and "0.0 s" not in html


def test_a_verdict_of_an_unknown_strand_gets_its_own_section(tmp_path):
    records = [verdict_record("law-f", 0.05),
               verdict_record("law-g", 0.05) | {"strand": "elsewhere"}]
    html = write_report(records, tmp_path / "r.html").read_text()
    assert html.count('class="law"') == 2 and "<h2>elsewhere</h2>" in html
