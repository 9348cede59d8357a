"""The report in a real headless browser (Chromium through Playwright).

The page must load without console errors, decode every figure, overflow nowhere (no
truncated law ids, titles or tables), and each law's section must be on screen: it is
screenshotted and the screenshot must show something. ``make test`` installs Chromium
(Debian's ``chromium``) where it can; elsewhere this module is skipped with the hint.
"""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

from learnmech.laws import get_law
from learnmech.report import write_report

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium: apt-get install -y chromium (make test does)")

LAWS = ("eos-gd", "nngp-ntk-init", "eigenlearning")
"""Real verdicts at the quick budget, their runs shared with the other law tests."""


@pytest.fixture(scope="module")
def page_of_report(law_context, tmp_path_factory):
    from test_report import layers_figure, verdict_record

    records = [get_law(law_id).check("quick", law_context).to_json() for law_id in LAWS]
    crowded = verdict_record("a-law-with-a-long-identifier-that-must-not-be-cut", 0.05)
    crowded["figures"] = [layers_figure(15, "update size of every layer " * 4)]
    records.append(crowded | {"strand": "elsewhere"})
    path = write_report(records, tmp_path_factory.mktemp("report") / "report.html")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"{m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.goto(path.as_uri(), wait_until="load")
        for img in page.locator("img").all():  # lazy images load once scrolled to
            img.scroll_into_view_if_needed()
        page.wait_for_function("[...document.images].every(i => i.complete)")
        yield page, problems, records, tmp_path_factory.mktemp("screens")
        browser.close()


def test_the_page_loads_without_console_errors(page_of_report):
    _, problems, _, _ = page_of_report
    assert problems == []


def test_every_figure_is_decoded_and_titled(page_of_report):
    page, _, records, _ = page_of_report
    images = page.evaluate(
        "[...document.images].map(i => [i.naturalWidth, i.naturalHeight, i.alt])")
    assert len(images) == sum(len(r["figures"]) for r in records) > 0
    assert all(w > 100 and h > 100 and alt for w, h, alt in images)


def test_nothing_overflows_or_is_cut(page_of_report):
    page, _, _, _ = page_of_report
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    cut = page.evaluate("""[...document.querySelectorAll('h1, h2, h3, td, th, p, dd')]
        .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.slice(0, 60))""")
    assert cut == []


def test_each_section_is_on_screen(page_of_report):
    page, _, records, shots = page_of_report
    sections = page.locator("div.law").all()
    assert len(sections) == len(records)
    for i, section in enumerate(sections):
        path = shots / f"section-{i}.png"
        section.screenshot(path=str(path))
        with Image.open(path) as image:
            low, high = image.convert("L").getextrema()
            assert image.width > 400 and image.height > 150 and high - low > 100
