"""Views of a `DiffResult`: JSON for machines, a grouped summary for people.

The text view answers "same image?" on its first lines (verdict and counts
per category), then lists findings grouped by category, `where` aligned,
values as ``a → b`` with digests shortened, each group cut after `limit`
lines with "… and N more" so a drifting save of a big image stays readable.
"""

from __future__ import annotations

import json
import re
from typing import Any

from harness.diff import DiffResult
from harness.findings import Category, Finding

DEFAULT_LIMIT = 10
ABSENT = "∅"
_HEX = re.compile(r"(?<![0-9a-f])([0-9a-f]{12})[0-9a-f]{52,}(?![0-9a-f])")


def to_json(result: DiffResult) -> dict[str, Any]:
    return {
        "a": result.a,
        "b": result.b,
        "equivalent": result.equivalent,
        "summary": dict(result.summary),
        "findings": [f.to_json() for f in result.findings],
    }


def render_json(result: DiffResult) -> str:
    return json.dumps(to_json(result), indent=2, ensure_ascii=False) + "\n"


def value_text(value: Any, width: int = 60) -> str:
    """A value on one short line: digests cut to 12 hex digits, long text elided."""
    if value is None:
        return ABSENT
    if isinstance(value, dict):
        text = " ".join(f"{k}={value_text(v, width)}" for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(value_text(v, width) for v in value) + "]"
    else:
        text = str(value)
    text = _HEX.sub(r"\1…", text.replace("\n", "\\n"))
    return text if len(text) <= width else text[: width - 1] + "…"


def _line(finding: Finding, where_width: int) -> str:
    line = f"  {finding.where:<{where_width}}  {value_text(finding.a)} → {value_text(finding.b)}"
    if finding.note:
        line += f"  ({finding.note})"
    return line


def render_text(result: DiffResult, *, limit: int | None = DEFAULT_LIMIT) -> str:
    """The grouped summary; `limit` findings per category (None: all)."""
    lines = [f"A: {result.a}", f"B: {result.b}"]
    ignored = f"; {result.ignored} ignored" if result.ignored else ""
    if result.equivalent:
        lines.append(f"equivalent{ignored}")
        return "\n".join(lines) + "\n"
    counts = ", ".join(f"{category} {n}" for category, n in result.summary.items())
    total = len(result.findings)
    lines.append(f"different: {total} finding{'s' if total != 1 else ''} ({counts}){ignored}")
    for category in Category:
        group = [f for f in result.findings if f.category is category]
        if not group:
            continue
        shown = group if limit is None else group[:limit]
        width = min(max(len(f.where) for f in shown), 60)
        lines += ["", f"{category} ({len(group)})"]
        lines += [_line(f, width) for f in shown]
        if len(group) > len(shown):
            lines.append(f"  … and {len(group) - len(shown)} more")
    return "\n".join(lines) + "\n"
