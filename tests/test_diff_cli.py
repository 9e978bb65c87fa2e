"""`python -m harness diff`: exit codes, JSON shape, the text summary, ignores and engine sources."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from harness.cli import main
from harness.diff import DiffResult
from harness.findings import Category, Finding
from harness.report.diff_text import render_text, value_text
from tests import archives as A
from tests.test_diff_e2e import IMAGE, retar


@pytest.fixture
def drifted(tmp_path: Path) -> tuple[Path, Path]:
    """Two saves of one image whose only difference is an mtime in the outer archive."""
    a = A.docker_oci(tmp_path / "a.tar", [IMAGE])
    return a, retar(a, tmp_path / "b.tar", {"manifest.json": {"mtime": 1_730_000_000}})


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main(["diff", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_output_and_exit_code_1(capsys: pytest.CaptureFixture[str], drifted: tuple[Path, Path]) -> None:
    code, out, _ = run(capsys, *drifted, "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert set(data) == {"a", "b", "same_image", "equivalent", "summary", "findings"}
    assert (data["a"], data["b"], data["same_image"], data["equivalent"]) == (
        str(drifted[0]), str(drifted[1]), True, False)
    assert data["summary"] == {"mtime": 1}
    assert data["findings"] == [
        {"category": "mtime", "where": "archive:manifest.json", "a": 0, "b": 1_730_000_000, "note": "mtime"},
    ]


def test_ignore_mtime_exits_0(capsys: pytest.CaptureFixture[str], drifted: tuple[Path, Path]) -> None:
    code, out, _ = run(capsys, *drifted, "--ignore", "mtime", "--format", "json")
    assert code == 0
    assert json.loads(out) == {"a": str(drifted[0]), "b": str(drifted[1]), "same_image": True, "equivalent": True,
                               "summary": {}, "findings": []}


def test_ignore_path_exits_0(capsys: pytest.CaptureFixture[str], drifted: tuple[Path, Path]) -> None:
    assert run(capsys, *drifted, "--ignore-path", "manifest.json")[0] == 0
    assert run(capsys, *drifted, "--ignore-path", "archive:*.json")[0] == 0
    assert run(capsys, *drifted, "--ignore-path", "index.json")[0] == 1


def test_text_output_leads_with_the_verdict(capsys: pytest.CaptureFixture[str], drifted: tuple[Path, Path]) -> None:
    code, out, _ = run(capsys, *drifted)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "same image: yes; only the packaging differs (1 finding: mtime 1)"
    assert lines[3:] == [
        "", "mtime (1): timestamps only: the archive's digest changes, not what runs",
        "  archive:manifest.json  1970-01-01 00:00:00Z → 2024-10-27 03:33:20Z  (mtime)",
    ]
    code, out, _ = run(capsys, *drifted, "--ignore", "mtime")
    assert (code, out.splitlines()[0]) == (0, "same image: yes, and the same archive content (1 ignored)")


def test_semantic_judges_the_images_only(capsys: pytest.CaptureFixture[str], drifted: tuple[Path, Path],
                                         tmp_path: Path) -> None:
    assert run(capsys, *drifted, "--semantic")[0] == 0
    other = A.docker_oci(tmp_path / "other.tar", [A.sample_image("z:1", seed="other")])
    code, out, _ = run(capsys, drifted[0], other, "--semantic")
    assert code == 1 and out.startswith("same image: no (")
    code, out, _ = run(capsys, drifted[0], other, "--semantic", "--format", "json")
    assert code == 1 and json.loads(out)["same_image"] is False


def test_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = A.docker_oci(tmp_path / "a.tar", [IMAGE])
    code, out, err = run(capsys, a, tmp_path / "missing.tar")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "missing.tar: no such file" in err
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all")
    code, _, err = run(capsys, a, tmp_path / "junk.tar")
    assert code == 2 and err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["diff", str(a), str(a), "--ignore", "nonsense"])
    assert exit_info.value.code == 2


def test_engine_sources_are_materialized_in_a_removed_workdir(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    workdirs: list[Path] = []

    def materialize(source: str, workdir: Path) -> Path:
        assert source == "docker-28:test:latest"
        workdirs.append(workdir)
        return A.docker_oci(workdir / "saved.tar", [IMAGE])

    monkeypatch.setitem(sys.modules, "harness.engines.image_refs", types.SimpleNamespace(materialize=materialize))
    a = A.docker_oci(tmp_path / "a.tar", [IMAGE])
    code, out, _ = run(capsys, a, "docker-28:test:latest", "--format", "json")
    assert code == 0 and json.loads(out)["b"] == "docker-28:test:latest"
    assert len(workdirs) == 1 and not workdirs[0].exists()


def test_long_groups_are_cut_unless_all(tmp_path: Path) -> None:
    digest = "sha256:" + "a" * 64
    findings = tuple(Finding(Category.CONTENT, f"image[0].layer[0]:f{k}", digest, None) for k in range(15))
    result = DiffResult("a", "b", findings, False, {"content": 15})
    text = render_text(result)
    assert "  … and 5 more" in text and text.count("image[0].layer[0]:f") == 10
    assert "sha256:aaaaaaaaaaaa… → ∅" in text
    assert render_text(result, limit=None).count("image[0].layer[0]:f") == 15


def test_values_stay_on_one_short_line() -> None:
    stored = {"compression": "gzip", "digest": "sha256:" + "b" * 64}
    assert value_text(stored) == "compression=gzip digest=sha256:bbbbbbbbbbbb…"
    assert value_text("x" * 100, 10) == "x" * 9 + "…"
    assert value_text(["a", None]) == "[a, ∅]"


def test_module_entry_point(tmp_path: Path, drifted: tuple[Path, Path]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "diff", *map(str, drifted), "--format", "json"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["summary"] == {"mtime": 1}
