"""The command line starts without importing what only some commands need (pytest, docker, the HTML views).

Each command module imports its heavy dependencies inside the function that
runs it: building the parser for `diff` must not cost pytest's and docker's
import time (about half a second here before this was so).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import archives as A

HEAVY = ("pytest", "docker", "requests", "jinja2", "deepdiff", "harness.report.html", "harness.engines.farm")


def _imported_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nimport json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_building_the_parser_imports_no_command_dependencies() -> None:
    modules = _imported_after("from harness.cli import build_parser; build_parser()")
    assert "harness.commands.run" in modules  # every command registered, so the probe is real
    assert not modules & set(HEAVY)


@pytest.mark.parametrize("argv", [["diff", "{a}", "{b}"], ["inspect", "{a}"], ["reference", "{a}", "-o", "{out}"]])
def test_archive_commands_import_no_engine_or_test_machinery(tmp_path: Path, argv: list[str]) -> None:
    image = A.sample_image("i:1", seed="i")
    names = {"a": A.oci(tmp_path / "a.tar", [image]), "b": A.docker_oci(tmp_path / "b.tar", [image]),
             "out": tmp_path / "ref.tar"}
    args = [a.format(**names) for a in argv]
    modules = _imported_after(f"from harness.cli import main\nmain({args!r})")
    assert "harness.diff" in modules or "harness.archive" in modules  # the command did run
    assert not modules & {"pytest", "docker", "harness.engines.farm", "harness.report.html"}
