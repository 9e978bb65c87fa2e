"""Structural JSON comparison with deepdiff, flattened to (JSON path, a, b) changes.

deepdiff aligns lists of strings with a sequence matcher, so one variable
inserted into ``Env`` is one change at ``$.config.Env[1]``, not a shift of
every later item. Lists of objects (``history``, a manifest's ``layers``) it
compares by position, so those are aligned here the same way (on canonical
JSON) and only the items paired up are handed back to deepdiff.  deepdiff
(with numpy) takes most of a second to import, so it is imported where two
documents really differ, not by every command that imports the differ.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, Iterator

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


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _object_list(value: Any) -> bool:
    return isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)


def _object_lists(a: Any, b: Any, keys: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any, Any]]:
    """Lists of objects at the same place on both sides, reached through objects only."""
    if _object_list(a) and _object_list(b):
        yield keys, a, b
    elif isinstance(a, dict) and isinstance(b, dict):
        for key in a.keys() & b.keys():
            yield from _object_lists(a[key], b[key], (*keys, key))


def _list_changes(a: list[Any], b: list[Any], keys: tuple[str | int, ...]) -> list[JsonChange]:
    changes = []
    matcher = SequenceMatcher(a=[_canonical(x) for x in a], b=[_canonical(y) for y in b], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        common = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(common):
            changes += _changes(a[i1 + k], b[j1 + k], (*keys, i1 + k))
        changes += [JsonChange((*keys, i), a[i], None) for i in range(i1 + common, i2)]
        changes += [JsonChange((*keys, j), None, b[j]) for j in range(j1 + common, j2)]
    return changes


def _changes(a: Any, b: Any, keys: tuple[str | int, ...]) -> list[JsonChange]:
    if _canonical(a) == _canonical(b):
        return []
    if _object_list(a) and _object_list(b):
        return _list_changes(a, b, keys)
    from deepdiff import DeepDiff
    from deepdiff.helper import notpresent

    tree = DeepDiff(a, b, view="tree", verbose_level=2, exclude_obj_callback_strict=lambda obj, _: _object_list(obj))
    changes = []
    for levels in tree.values():
        for level in levels:
            va = None if level.t1 is notpresent else level.t1
            vb = None if level.t2 is notpresent else level.t2
            changes.append(JsonChange((*keys, *level.path(output_format="list")), va, vb))
    for inner, la, lb in _object_lists(a, b):
        if inner:
            changes += _list_changes(la, lb, (*keys, *inner))
    return changes


def same_json(a: Any, b: Any) -> bool:
    """``not json_changes(a, b)``, without deepdiff when a plain difference settles it."""
    if _canonical(a) == _canonical(b):
        return True
    return not _plainly_differs(a, b) and not json_changes(a, b)


def _plainly_differs(a: Any, b: Any) -> bool:
    """A difference `json_changes` always reports: other keys, or another string, reached through objects
    and one-item lists (deepdiff reports those in objects; one-item lists pair their items).  False: unsure."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() != b.keys() or any(_plainly_differs(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b) == 1:
        return _plainly_differs(a[0], b[0])
    return isinstance(a, str) and isinstance(b, str) and a != b


def json_changes(a: Any, b: Any) -> list[JsonChange]:
    """Every leaf-most difference between `a` and `b`, in a stable order."""
    changes = _changes(a, b, ())
    return sorted(changes, key=lambda c: [(0, k, "") if isinstance(k, int) else (1, 0, k) for k in c.keys])
