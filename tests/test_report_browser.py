"""index.html in a real headless Chromium: the matrix renders, a click opens a cell, screenshots are kept.

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
from tests.chromium import FLAGS, Browser, chromium_binary
from tests.reportkit import CHECKS, CONFIG_DRIFT, ENGINES, drifting, make_report

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
