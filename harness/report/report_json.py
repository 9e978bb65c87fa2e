"""The report document (report.json, schema 1) as the report views read it.

`render_html`, `compare` and `baseline` work from report.json alone, never from
a live run, so a report can be re-rendered, merged or compared anywhere.  This
module holds what they share: loading with a clear error, writing atomically, run ids, the check order of the
matrix (the checks themselves are the suites', `harness.plugins.checks`), outcome ranking, and a result's
*variant* (what tells two results of one check, engine and image apart, such as a digest-preservation route).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any, Iterable

from harness.errors import UsageError

SCHEMA_FILE = Path(__file__).with_name("schema") / "report-v1.json"
SCHEMA_VERSION = 1


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a partial file, so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


OUTCOMES = ("pass", "skipped", "fail", "error")
"""Outcomes from best to worst: a cell shows the worst of its results."""

_NODE = re.compile(r"^[^:]*::(?P<func>[^\[@]+)(?:\[(?P<params>.*)\])?(?:@[^\]]*)?$")


def load_report(path: str | Path) -> dict[str, Any]:
    """A report.json read and checked enough that the views can trust its shape (the tests validate
    the full JSON Schema); anything else is a `UsageError` naming the file."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise UsageError(f"{path}: no such report") from e
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: not a readable report.json ({e})") from e
    if not isinstance(doc, dict) or doc.get("schema") != 1:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise UsageError(f"{path}: not a schema-1 report (schema: {found!r})",
                         hint="reports are written by `imgharness run`")
    for key, kind in (("run", dict), ("engines", list), ("results", list)):
        if not isinstance(doc.get(key), kind):
            raise UsageError(f"{path}: report without {key!r}")
    return doc


def check_order(results: Iterable[dict[str, Any]], known: Iterable[str]) -> list[str]:
    """The checks present, the `known` ones in their order first (the suites' matrix order), unknown ones
    after (sorted)."""
    present = {r["check"] for r in results}
    ordered = [c for c in known if c in present]
    return ordered + sorted(present - set(ordered))


def worst(outcomes: Iterable[str]) -> str:
    rank = {o: i for i, o in enumerate(OUTCOMES)}
    return max(outcomes, key=lambda o: rank.get(o, len(OUTCOMES)), default="")


def variant(result: dict[str, Any], engine_id: str) -> str:
    """The test within its check, without engine and image: ``push_to_several_repositories`` or
    ``copied_image_keeps_its_registry_digest[skopeo-oci-archive]``.  `engine_id` is the id as
    the test's own run named it (compare prefixes engine ids with the host)."""
    m = _NODE.match(result.get("test", ""))
    if not m:
        return str(result.get("test", ""))
    params = m.group("params") or ""
    for part in (engine_id, result.get("image", "")):
        if part and (params == part or params.startswith(part + "-")):
            params = params[len(part) + 1:]
    func = m.group("func").removeprefix("test_")
    return f"{func}[{params}]" if params else func


def engine_ids(report: dict[str, Any]) -> dict[str, str]:
    """Engine key in this report → the id its own run gave it (they differ in merged reports)."""
    return {e["id"]: e.get("engine", e["id"]) for e in report["engines"]}
