"""Where code may reach: one way into an engine, and no import circles.

Only `harness/engines/` talks to the Docker SDK: its low-level client (an adapter's
``api`` attribute) and its exceptions (the SDK's ``errors`` module, translated once
into ours, in `harness.engines.adapter`).  Everything else, suites and tests included, asks
`Engine`, so that an SDK error never reaches a check untranslated.

The modules of `harness/` import each other without a circle, and so do its
packages (`engines/`, `archive/`, … each taken as one node, the top-level modules
as nodes of their own): data flows one way, engine → archive → model → diff →
finding → report.  Imports inside functions count: a late import is still a
dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ROOT / "harness" / "engines"
Graph = dict[str, set[str]]


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
    sdk, client = "docker", "engine.api"  # spelled apart, so that a grep of the tree finds only real uses
    probe = tmp_path / "probe.py"
    probe.write_text(f"import {sdk}.errors\nfrom {sdk} import APIClient\n\ndef f(engine):\n    return {client}.images()\n")
    assert _sdk_uses(probe, tmp_path) == [
        f"probe.py:1 import {sdk}.errors", f"probe.py:2 from {sdk} import …", f"probe.py:5 ….api ({client})"]


def import_graph(root: Path, package: str) -> Graph:
    """Module → the modules of `package` it imports (below `root`).  ``from pkg import sub`` is an import
    of the submodule; ``from pkg import name`` one of the package's ``__init__``."""
    modules = {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (root / package).rglob("*.py")}
    graph: Graph = {}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*here.split(".")[: len(here.split(".")) - node.level + 1], *filter(None, [base])])
                found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def by_package(graph: Graph, package: str, root: Path) -> Graph:
    """The same graph with each subpackage of `package` taken as one node."""
    def node(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:2]) if len(parts) > 1 and (root / package / parts[1]).is_dir() else module

    merged: Graph = {}
    for module, imported in graph.items():
        merged.setdefault(node(module), set()).update(node(m) for m in imported if node(m) != node(module))
    return merged


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_harness_modules_and_packages_import_without_a_circle() -> None:
    graph = import_graph(ROOT, "harness")
    assert len(graph) > 50 and graph["harness.cli"]  # the graph is the real one
    assert cycles(graph) == []
    assert cycles(by_package(graph, "harness", ROOT)) == []


def test_a_circle_is_found(tmp_path: Path) -> None:
    """Two modules importing each other are a circle; so are two packages whose modules do, in a line."""
    for name, text in {"pkg/__init__.py": "", "pkg/a.py": "from pkg import b\n",
                       "pkg/b.py": "def f():\n    from pkg.a import g\n", "pkg/top.py": "from pkg.sub.x import y\n",
                       "pkg/sub/__init__.py": "", "pkg/sub/x.py": "y = 1\n",
                       "pkg/sub/z.py": "from . import x\nimport pkg.top\n"}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.sub.z"] == {"pkg.sub.x", "pkg.top"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]
    assert cycles(by_package(graph, "pkg", tmp_path)) == [["pkg.a", "pkg.b"], ["pkg.sub", "pkg.top"]]
