"""Where code may reach: one way into an engine.

Only `harness/engines/` talks to the Docker SDK: its low-level client (an adapter's
``.api``) and its exceptions (``docker.errors``, translated once into ours, in
`harness.engines.adapter`).  Everything else, suites and tests included, asks
`Engine`, so that an SDK error never reaches a check untranslated.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ROOT / "harness" / "engines"


def _python_files() -> list[Path]:
    return sorted(p for d in ("harness", "suites", "tests", "bench") for p in (ROOT / d).rglob("*.py"))


def _sdk_uses(path: Path, root: Path = ROOT) -> list[str]:
    """Each place in `path` that reaches an adapter's SDK client or imports the SDK, as ``file:line what``."""
    found = []
    for node in sorted(ast.walk(ast.parse(path.read_text(), str(path))), key=lambda n: getattr(n, "lineno", 0)):
        what = None
        if isinstance(node, ast.Attribute) and node.attr == "api":
            what = f"….api ({ast.unparse(node)})"
        elif isinstance(node, ast.Import):
            what = next((f"import {a.name}" for a in node.names if a.name.split(".")[0] == "docker"), None)
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "docker":
            what = f"from {node.module} import …"
        if what:
            found.append(f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')} {what}")
    return found


def test_only_the_engines_package_touches_the_docker_sdk() -> None:
    outside = [use for p in _python_files() if not p.is_relative_to(ENGINES) for use in _sdk_uses(p)]
    assert outside == []


def test_the_check_sees_sdk_uses(tmp_path: Path) -> None:
    """The scan above finds what it looks for (a check that cannot fail proves nothing)."""
    probe = tmp_path / "probe.py"
    probe.write_text("import docker.errors\nfrom docker import APIClient\n\ndef f(engine):\n    return engine.api.images()\n")
    assert _sdk_uses(probe, tmp_path) == [
        "probe.py:1 import docker.errors", "probe.py:2 from docker import …", "probe.py:5 ….api (engine.api)"]
