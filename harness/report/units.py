"""How quantities read in the reports and views: bytes, seconds, percentages, a finding's values."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from harness.report.diff_text import value_text


def human_bytes(n: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def seconds(s: float) -> str:
    return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"


def percent(p: float) -> str:
    return f"{p:.0f} %" if p >= 10 or p == 0 else f"{p:.1f} %"


def finding_value(value: Any, category: str, width: int = 80) -> str:
    """A finding's value on one short line; an mtime also as a UTC time, which is what a person compares."""
    if category == "mtime" and isinstance(value, int) and not isinstance(value, bool):
        return f"{datetime.fromtimestamp(value, timezone.utc):%Y-%m-%d %H:%M:%S} ({value})"
    return value_text(value, width)
