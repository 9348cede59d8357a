"""The HTML report is self-contained and shows every verdict."""

from __future__ import annotations

import json
import re

from learnmech.laws import Criterion, Curve, Evidence, Figure, Verdict
from learnmech.report import write_report


def _verdict(law_id: str, value: float) -> dict:
    fig = Figure("t", "x", "y", [Curve("theory", [0, 1], [0, 1], "theory", "a"),
                                 Curve("measured", [0, 1], [0.1, 0.9], "measured", "a")])
    return Verdict(
        law_id, "solvable", "claim text", "Someone 2020", "regime text", "control text", "quick",
        Evidence([Criterion("error", value, 0.1)], [fig]),
        Evidence([Criterion("error", 0.5, 0.1)]), 1.0,
    ).to_json()


def test_report_has_scorecard_sections_and_embedded_figures(tmp_path):
    path = write_report([_verdict("law-a", 0.05), _verdict("law-b", float("nan"))],
                        tmp_path / "r.html")
    html = path.read_text()
    assert html.count('class="law"') == 2
    assert "1 hold · 0 fail · 1 inconclusive" in html
    assert "not measured" in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 2
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
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 1


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
