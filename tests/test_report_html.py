"""index.html rendered from report.json: self-contained, a cell for every engine × check, readable findings."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.plugins.checks import CHECKS as SUITE_CHECKS
from harness.report.html import cell_id, render_html, split_where
from tests.reportkit import CHECKS, CONFIG_DRIFT, ENGINES, drifting, make_report, write


class _Tags(HTMLParser):
    """Every start tag with its attributes, and whether the document nests properly."""

    VOID = {"meta", "br", "rect", "img", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()


def _parse(page: str) -> _Tags:
    tags = _Tags()
    tags.feed(page)
    assert tags.open == [], f"unclosed: {tags.open}"
    return tags


def test_page_is_self_contained() -> None:
    page = render_html(make_report(changes=drifting(ENGINES[0])), SUITE_CHECKS)
    tags = _parse(page)
    assert not [t for t, a in tags.tags if t in ("link", "img", "iframe") or (t == "script" and a.get("src"))]
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", page)
    assert "https://" not in page and "http://" not in page
    assert "@import" not in page and "url(" not in page


def test_matrix_has_a_coloured_cell_per_check_and_row() -> None:
    report = make_report(changes={**drifting(ENGINES[0]),
                                  ("pull-resume", ENGINES[2], "large"): {"outcome": "error", "message": "gone"}})
    tags = _parse(render_html(report, SUITE_CHECKS)).tags
    cells = {a["data-cell"]: a["class"] for t, a in tags if t == "td" and a.get("data-cell")}
    assert set(cells) == {cell_id(c, e) for c in CHECKS for e in ENGINES}
    assert cells[cell_id("save-determinism", ENGINES[0])] == "cell o-fail"
    assert cells[cell_id("save-determinism", ENGINES[1])] == "cell o-pass"
    assert cells[cell_id("pull-resume", ENGINES[2])] == "cell o-error"
    details = {a["id"] for t, a in tags if t == "section" and "cell-detail" in (a.get("class") or "")}
    assert details == set(cells)
    links = {a["href"] for t, a in tags if t == "a" and (a.get("href") or "").startswith("#cell=")}
    assert "#cell=save-determinism/docker-26.1.5-overlay2" in links


def test_a_cell_lists_its_findings_by_entry_field_and_both_values() -> None:
    report = make_report(changes={("reference-conformance", ENGINES[1], "basic"): {
        "outcome": "fail", "findings": CONFIG_DRIFT, "message": "AssertionError: config changed"}})
    page = render_html(report, SUITE_CHECKS)
    section = page.split(f'id="{cell_id("reference-conformance", ENGINES[1])}"', 1)[1].split("</section>", 1)[0]
    assert "AssertionError: config changed" in section
    assert "config (1)" in section and "mode (1)" in section
    assert "<td>image[0].config</td><td>$.config.Env[1]</td>" in section
    assert ">LANG=C<" in section and ">LANG=C.UTF-8<" in section
    assert "usr/bin/tool</td><td>mode</td>" in section


def test_many_findings_are_cut_with_a_count() -> None:
    many = [{"category": "mtime", "where": f"archive:blobs/sha256/{i:064x}", "a": 0, "b": 1} for i in range(55)]
    page = render_html(make_report(changes={("round-trip", ENGINES[0], "basic"): {"outcome": "fail", "findings": many}}),
                       SUITE_CHECKS)
    assert "… and 15 more (all are in report.json)" in page


@pytest.mark.parametrize("where, field", [
    ("archive:index.json:$.manifests[0].annotations['a:b']", ("archive › index.json", "$.manifests[0].annotations['a:b']")),
    ("image[0].layer[2](sha256:abc):etc/passwd", ("image[0].layer[2](sha256:abc) › etc/passwd", "mtime")),
    ("archive", ("archive", "mtime")),
    ("inspect.RepoDigests[push]:ns/img", ("inspect.RepoDigests[push] › ns/img", "mtime")),
])
def test_split_where(where: str, field: tuple[str, str]) -> None:
    assert split_where(where, "mtime") == field


def test_charts_show_each_measurement() -> None:
    report = make_report(changes={("pull-resume", ENGINES[1], "large"): {"metrics": {"wasted_bytes": 20_136_060}},
                                  ("concurrent-clients", ENGINES[2], "basic"): {"metrics": {"list_failed_pct": 13.3}}})
    page = render_html(report, SUITE_CHECKS)
    charts = page.split('id="charts"', 1)[1].split("</section>", 1)[0]
    for title in ("Archive size — basic", "Archive size — large", "Save time — large", "Bytes wasted — large",
                  "Failed listings — basic", "Update cost per engine"):
        assert title in charts
    assert "19.2 MiB" in charts  # the wasted bytes, labelled
    assert f"{ENGINES[2]} · basic: 13 %" in charts
    assert charts.count('class="bar k-layer"') == len(ENGINES) and charts.count('class="bar k-file"') == len(ENGINES)


def test_canonical_digests_group_equal_images() -> None:
    odd = "sha256:" + "0d" * 32
    page = render_html(make_report(changes={("reference-conformance", ENGINES[2], "large"): {
        "metrics": {"canonical_digest": odd}}}), SUITE_CHECKS)
    digests = page.split('id="digests"', 1)[1].split("</section>", 1)[0]
    assert digests.count('class="mono g0"') == 2 * len(ENGINES) - 1 and digests.count('class="mono g1"') == 1
    assert odd in digests


def test_report_command_renders_a_file(tmp_path: Path) -> None:
    src = write(make_report(), tmp_path / "run" / "report.json")
    proc = subprocess.run([sys.executable, "-m", "harness", "report", str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "index.html").read_text().startswith("<!DOCTYPE html>")
    proc = subprocess.run([sys.executable, "-m", "harness", "report", str(tmp_path / "nope.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "no such report" in proc.stderr
