"""How quantities read in the reports and views: bytes, seconds, percentages."""

from __future__ import annotations


def human_bytes(n: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def seconds(s: float) -> str:
    return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"


def percent(p: float) -> str:
    return f"{p:.0f} %" if p >= 10 or p == 0 else f"{p:.1f} %"
