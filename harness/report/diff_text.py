"""Views of a `DiffResult`: JSON for machines, a grouped summary for people.

The text view answers "same image?" on its first line (``same_image`` in
JSON), then counts per category, then lists findings grouped by category,
each group headed by what that kind of difference means to a user, `where`
aligned, values as ``a → b`` with digests shortened and times in UTC, each
group cut after `limit` lines with "… and N more" so a drifting save of a
big image stays readable.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from harness.diff import DiffResult
from harness.findings import Category, Finding

DEFAULT_LIMIT = 10
ABSENT = "∅"
_HEX = re.compile(r"(?<![0-9a-f])([0-9a-f]{12})[0-9a-f]{52,}(?![0-9a-f])")

MEANING = {
    Category.ARCHIVE_FORMAT: "another archive layout or tar encoding of the same content",
    Category.ORDER: "the same entries in another order: the archive's digest changes, not what runs",
    Category.MTIME: "timestamps only: the archive's digest changes, not what runs",
    Category.OWNERSHIP: "file owners: who may read or write the file in a container",
    Category.MODE: "permissions, file types or device numbers: what a file is and who may use it",
    Category.XATTR: "extended attributes: capabilities, security labels",
    Category.COMPRESSION: "the same layer compressed otherwise: registries store and serve another blob",
    Category.CONTENT: "other bytes: what runs is not the same",
    Category.ADDED: "only in B",
    Category.REMOVED: "only in A",
    Category.CONFIG: "the image configuration: how containers start; the image ID changes with it",
    Category.MANIFEST: "manifests, indexes and the archive's metadata files: what engines and registries resolve",
    Category.TAGS: "image names",
    Category.DIGEST_MISMATCH: "bytes that do not hash to the digest naming them: a corrupt or altered archive",
    Category.MISSING: "blobs the archive names but does not carry: no engine can load it whole",
    Category.REQUEST_FAILED: "requests an engine failed",
}
"""Why each kind of difference matters, one line each: the heading of its group in the text view."""


def to_json(result: DiffResult) -> dict[str, Any]:
    return {
        "a": result.a,
        "b": result.b,
        "same_image": result.same_image,
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


def utc(seconds: float) -> str:
    """An mtime as a person reads it (UTC); the epoch seconds stay in JSON."""
    try:
        return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(seconds)


def _values(finding: Finding) -> tuple[str, str]:
    if finding.category is Category.MTIME and all(isinstance(v, (int, float)) for v in (finding.a, finding.b)):
        return utc(finding.a), utc(finding.b)
    return value_text(finding.a), value_text(finding.b)


def _line(finding: Finding, where_width: int) -> str:
    a, b = _values(finding)
    line = f"  {finding.where:<{where_width}}  {a} → {b}"
    if finding.note:
        line += f"  ({finding.note})"
    return line


def verdict(result: DiffResult) -> str:
    """The first line: same image or not, then how many findings of each kind."""
    if result.equivalent:
        return "same image: yes, and the same archive content" + (f" ({result.ignored} ignored)" if result.ignored else "")
    if result.same_image:
        return f"same image: yes; only the packaging differs ({_counts(result.findings)})"
    return f"same image: no ({_counts(result.findings)})"


def _counts(findings: tuple[Finding, ...]) -> str:
    counts = {c: sum(1 for f in findings if f.category is c) for c in Category}
    total = len(findings)
    return f"{total} finding{'s' if total != 1 else ''}: " + ", ".join(f"{c} {n}" for c, n in counts.items() if n)


def render_text(result: DiffResult, *, limit: int | None = DEFAULT_LIMIT) -> str:
    """The grouped summary; `limit` findings per category (None: all)."""
    lines = [verdict(result), f"A: {result.a}", f"B: {result.b}"]
    if result.ignored and not result.equivalent:
        lines.append(f"{result.ignored} finding{'s' if result.ignored != 1 else ''} ignored")
    for category in Category:
        group = [f for f in result.findings if f.category is category]
        if not group:
            continue
        shown = group if limit is None else group[:limit]
        width = min(max(len(f.where) for f in shown), 60)
        lines += ["", f"{category} ({len(group)}): {MEANING[category]}"]
        lines += [_line(f, width) for f in shown]
        if len(group) > len(shown):
            lines.append(f"  … and {len(group) - len(shown)} more")
    return "\n".join(lines) + "\n"
