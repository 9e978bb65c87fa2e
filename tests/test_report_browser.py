"""index.html in a real headless Chromium: the matrix renders, a click opens a cell, a link to a cell opens with
its panel in view, the verdicts read one sentence per engine, screenshots are kept.

Chromium is Debian's package, installed on the fly when missing (as root).  The
screenshots stay in the test's tmp dir and are copied to ``reports/screenshots/``
(git-ignored) for a person to look at.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from harness.plugins.checks import CHECKS as SUITE_CHECKS
from harness.report.html import cell_id, render_html
from harness.report.report_json import load_report
from harness.report.verdicts import engine_verdicts
from tests.chromium import FLAGS, Browser, chromium_binary, png_ink
from tests.reportkit import CHECKS, CONFIG_DRIFT, ENGINES, committed_report, drifting, make_report

SCREENSHOTS = Path(__file__).resolve().parents[1] / "reports" / "screenshots"


@pytest.fixture(scope="module")
def chromium() -> str:
    binary, why = chromium_binary()
    if binary is None:
        message = f"NO BROWSER TEST: headless Chromium is unavailable: {why}"
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)
    return binary


def _keep(path: Path) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENSHOTS / path.name)


def test_matrix_renders_and_a_click_opens_the_cell(chromium: str, tmp_path: Path) -> None:
    staged = {**drifting(ENGINES[0]), **drifting(ENGINES[0], "large"),
              ("reference-conformance", ENGINES[1], "basic"): {
                  "outcome": "fail", "message": "AssertionError: the canonical form differs",
                  "findings": CONFIG_DRIFT},
              ("pull-resume", ENGINES[2], "large"): {
                  "outcome": "fail", "metrics": {"wasted_bytes": 20_136_060, "retry_used_range": False},
                  "message": "AssertionError: the retry downloaded 50340152 of 50340152 bytes again"},
              ("digest-preservation", ENGINES[1], "large"): {"outcome": "error", "message": "skopeo copy failed"}}
    page = tmp_path / "index.html"
    page.write_text(render_html(make_report(changes=staged), SUITE_CHECKS))

    with Browser(chromium, tmp_path / "profile", page.as_uri()) as browser:
        assert browser.wait_for("document.readyState === 'complete' && document.querySelectorAll('td.cell').length")
        cells = browser.eval("[...document.querySelectorAll('td.cell[data-cell]')].map(td => td.dataset.cell)")
        assert sorted(cells) == sorted(cell_id(c, e) for c in CHECKS for e in ENGINES)
        colours = browser.eval("Object.fromEntries([...document.querySelectorAll('td.cell[data-cell]')]"
                               ".map(td => [td.dataset.cell, getComputedStyle(td).backgroundColor]))")
        assert colours[cell_id("save-determinism", ENGINES[0])] != colours[cell_id("save-determinism", ENGINES[1])]
        assert browser.eval("document.querySelectorAll('figure.chart svg rect.bar').length") > 0
        _keep(browser.screenshot(tmp_path / "report-matrix.png"))

        target = cell_id("save-determinism", ENGINES[0])
        visible = f"(() => {{ const s = document.getElementById({json.dumps(target)});" \
                  f" return !!s && !s.hidden && getComputedStyle(s).display !== 'none' && s.offsetHeight > 0; }})()"
        assert not browser.eval(visible), "a cell's findings must be hidden until it is clicked"
        browser.click(f'td.cell[data-cell="{target}"] a')
        assert browser.wait_for(visible), "clicking the cell did not show its findings"
        text = browser.eval(f"document.getElementById({json.dumps(target)}).innerText")
        assert "mtime (2)" in text and "blobs/sha256" in text and "1795328380" in text and "1795328381" in text
        assert browser.eval("location.hash").startswith("#cell=save-determinism/")
        assert browser.eval("document.querySelectorAll('.cell-detail:not([hidden])').length") == 1
        _keep(browser.screenshot(tmp_path / "report-cell.png"))
    assert (tmp_path / "report-cell.png").stat().st_size > 10_000


def test_a_fragment_opens_its_cell_without_a_click(chromium: str, tmp_path: Path) -> None:
    """A shared link (``index.html#cell=CHECK/ENGINE``) opens that cell: chromium's --dump-dom after the script ran."""
    page = tmp_path / "index.html"
    page.write_text(render_html(make_report(changes=drifting(ENGINES[2])), SUITE_CHECKS))
    target = cell_id("save-determinism", ENGINES[2])
    flags = [f for f in FLAGS if not f.startswith("--remote-debugging")]
    proc = subprocess.run([chromium, *flags, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           f"{page.as_uri()}#{target}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
    dom = proc.stdout
    opened = dom.split(f'id="{target}"', 1)[1].split(">", 1)[0]
    assert "hidden" not in opened, "the cell named in the fragment stayed hidden"


DEEP = cell_id("save-determinism", "docker-26.1.5-overlay2")
"""A cell far below the fold of the committed full run's page (the matrix, the verdicts and the
unmeasured results come first)."""


def _real_page(tmp_path: Path) -> Path:
    page = tmp_path / "index.html"
    page.write_text(render_html(load_report(committed_report()), SUITE_CHECKS))
    return page


def test_a_link_to_a_cell_opens_with_its_panel_in_view(chromium: str, tmp_path: Path) -> None:
    page = _real_page(tmp_path)
    with Browser(chromium, tmp_path / "profile", f"{page.as_uri()}#{DEEP}") as browser:
        assert browser.wait_for("document.readyState === 'complete' && document.querySelectorAll('td.cell').length")
        box = browser.eval(f"""(() => {{ const s = document.getElementById({json.dumps(DEEP)});
            const r = s.getBoundingClientRect(); const hit = document.elementFromPoint(r.left + 40, r.top + 30);
            return {{hidden: s.hidden, top: r.top, bottom: r.bottom, left: r.left, height: innerHeight,
                     width: innerWidth, covered: !s.contains(hit), page: document.documentElement.scrollHeight}};
        }})()""")
        assert box["page"] > 2 * box["height"], "the page must be taller than the window for this test to tell"
        assert not box["hidden"]
        assert 0 <= box["top"] < box["height"] and box["bottom"] > box["top"] + 100, box
        assert 0 <= box["left"] < box["width"] and not box["covered"], box
        assert "save-determinism on docker-26.1.5-overlay2" in browser.eval(
            f"document.getElementById({json.dumps(DEEP)}).innerText")
        _keep(browser.screenshot(tmp_path / "report-deep-link.png"))
        browser.send("Input.dispatchKeyEvent", type="keyDown", key="Escape", code="Escape", windowsVirtualKeyCode=27)
        assert browser.wait_for("document.querySelectorAll('.cell-detail:not([hidden])').length === 0"), \
            "Esc did not close the panel"


def test_a_link_to_a_cell_screenshots_with_its_panel(chromium: str, tmp_path: Path) -> None:
    """The way a person (or CI) captures a link: chromium --screenshot of the URL.  A page that scrolls to the
    panel came out all white this way; the panel must be what the picture shows."""
    page = _real_page(tmp_path)
    shot = tmp_path / "deep-link-screenshot.png"
    flags = [f for f in FLAGS if not f.startswith(("--remote-debugging", "--window-size"))]
    proc = subprocess.run([chromium, *flags, "--window-size=1400,900", "--virtual-time-budget=3000",
                           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                           f"{page.as_uri()}#{DEEP}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-1500:]
    _keep(shot)
    assert png_ink(shot) > 0.05, "the screenshot of a link to a cell is blank"
    assert png_ink(shot, (0.3, 0.0, 1.0, 0.3)) > 0.05, "the panel's top is not in the picture"


def test_the_verdicts_say_one_sentence_per_engine(chromium: str, tmp_path: Path) -> None:
    report = make_report(changes={**drifting(ENGINES[1]), ("digest-preservation", ENGINES[2], "large"): {
        "outcome": "error", "message": "ToolFailed: skopeo copy failed"}})
    page = tmp_path / "index.html"
    page.write_text(render_html(report, SUITE_CHECKS))
    with Browser(chromium, tmp_path / "profile", page.as_uri()) as browser:
        assert browser.wait_for("document.readyState === 'complete' && document.querySelectorAll('li.verdict').length")
        shown = browser.eval("Object.fromEntries([...document.querySelectorAll('li.verdict')]"
                             ".map(li => [li.dataset.engine, li.querySelector('.sentence').innerText]))")
        assert shown == {v.engine: v.sentence() for v in engine_verdicts(report, SUITE_CHECKS)}
        assert "but repeated saves differ for basic" in shown[ENGINES[1]]
        assert shown[ENGINES[2]].endswith("; 3 results could not be measured (digest-preservation).")
        colours = browser.eval("[...new Set([...document.querySelectorAll('li.verdict a.breaks')]"
                               ".map(a => getComputedStyle(a).color))].concat([...new Set([...document"
                               ".querySelectorAll('li.verdict a.holds')].map(a => getComputedStyle(a).color))])")
        assert len(colours) == 2 and colours[0] != colours[1], "what does not hold must read apart from what does"
        assert browser.eval("getComputedStyle(document.querySelector('#unmeasured')).borderStyle").startswith("dashed")
        _keep(browser.screenshot(tmp_path / "report-verdicts.png"))
        browser.click(f'li.verdict[data-engine="{ENGINES[1]}"] a.breaks')
        target = cell_id("save-determinism", ENGINES[1])
        assert browser.wait_for(f"!document.getElementById({json.dumps(target)}).hidden"), \
            "a phrase did not open its results"
