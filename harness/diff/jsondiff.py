"""Structural JSON comparison with deepdiff, flattened to (JSON path, a, b) changes.

deepdiff aligns lists with a sequence matcher, so one variable inserted into
``Env`` is one change at ``$.config.Env[1]``, not a shift of every later item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import notpresent

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class JsonChange:
    """One difference between two JSON documents; a side is None where the value is absent."""

    keys: tuple[str | int, ...]
    a: Any
    b: Any

    @property
    def path(self) -> str:
        return json_path(self.keys)

    def under(self, *prefix: str | int) -> bool:
        """Whether the change lies at or below `prefix`."""
        return self.keys[: len(prefix)] == prefix


def json_path(keys: tuple[str | int, ...]) -> str:
    """``('config', 'Env', 1)`` → ``$.config.Env[1]``; odd keys are quoted: ``$.Labels['a.b']``."""
    parts = ["$"]
    for key in keys:
        if isinstance(key, int):
            parts.append(f"[{key}]")
        elif _IDENTIFIER.match(key):
            parts.append(f".{key}")
        else:
            quoted = key.replace("\\", "\\\\").replace("'", "\\'")
            parts.append(f"['{quoted}']")
    return "".join(parts)


def json_changes(a: Any, b: Any) -> list[JsonChange]:
    """Every leaf-most difference between `a` and `b`, in a stable order."""
    if a == b:
        return []
    tree = DeepDiff(a, b, view="tree", verbose_level=2)
    changes = []
    for levels in tree.values():
        for level in levels:
            keys = tuple(level.path(output_format="list"))
            va = None if level.t1 is notpresent else level.t1
            vb = None if level.t2 is notpresent else level.t2
            changes.append(JsonChange(keys, va, vb))
    return sorted(changes, key=lambda c: [(0, k, "") if isinstance(k, int) else (1, 0, k) for k in c.keys])
