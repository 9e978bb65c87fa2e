"""Natural order, as people and docker number things: ``ctx2`` before ``ctx10``, ``layer[2]`` before ``layer[10]``."""

from __future__ import annotations

import re


def natural_key(text: str) -> list[tuple[int, int, str]]:
    """Sort key comparing runs of digits by their value and everything else as text, digits first
    (docker's sortorder.NaturalLess orders context names so)."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text) if p]
