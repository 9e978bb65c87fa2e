"""The suites' list of checks (`harness.plugins.checks`) names exactly the checks the suites mark their tests with."""

from __future__ import annotations

import ast
from pathlib import Path

from harness.plugins.checks import CHECKS

SUITES = Path(__file__).resolve().parents[1] / "suites"


def _marked_checks(path: Path) -> set[str]:
    """The names in ``pytest.mark.check(NAME)`` calls of a suite module."""
    return {node.args[0].value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "pytest.mark.check"
            and node.args and isinstance(node.args[0], ast.Constant)}


def test_every_suite_check_is_listed_and_every_listed_check_has_a_suite() -> None:
    marked = {name: path.name for path in sorted(SUITES.glob("test_*.py")) for name in _marked_checks(path)}
    assert len(marked) >= 9  # the scan found the suites' markers
    assert sorted(marked) == sorted(CHECKS)
