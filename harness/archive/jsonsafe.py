"""Bounded JSON for archive metadata.

Metadata (index.json, manifests, configs, manifest.json) comes from untrusted
archives: cap its size before reading it into memory, the number of values
before parsing (parsed, ``[[],[],…]`` takes 25 times its bytes), and its
nesting depth before anything walks it recursively; reject what Go's decoder
would reject (invalid UTF-8, NaN), and turn every parse failure into one
`MalformedArchive`.  Real metadata is kilobytes: registries refuse manifests
over 4 MiB, and a config or manifest.json of many images stays far below the
caps.
"""

from __future__ import annotations

import json
from typing import Any

from harness.errors import MalformedArchive

MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_VALUES = 1_000_000
MAX_DEPTH = 200


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_json(data: bytes, what: str) -> Any:
    """Parse `data` (named `what` in errors) within the size and depth limits."""
    if len(data) > MAX_JSON_BYTES:
        raise MalformedArchive(f"{what}: {len(data)} bytes of JSON exceeds the {MAX_JSON_BYTES >> 20} MiB limit")
    if data.count(b",") + data.count(b"[") + data.count(b"{") >= MAX_VALUES:  # values <= commas + containers + 1
        raise MalformedArchive(f"{what}: more than {MAX_VALUES} JSON values")
    try:
        text = data.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as e:
        raise MalformedArchive(f"{what}: not UTF-8 ({e.reason} at byte {e.start})") from e
    except RecursionError as e:
        raise MalformedArchive(f"{what}: JSON nested deeper than {MAX_DEPTH}") from e
    except ValueError as e:
        raise MalformedArchive(f"{what}: invalid JSON: {e}") from e
    check_depth(value, what)
    return value


def check_depth(value: Any, what: str) -> None:
    """MalformedArchive when `value` nests deeper than `MAX_DEPTH` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise MalformedArchive(f"{what}: JSON nested deeper than {MAX_DEPTH}")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))


def expect(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """`value` when it is of `kind`, else MalformedArchive naming `what`."""
    if isinstance(value, bool) and kind in (int, (int,)):
        raise MalformedArchive(f"{what}: expected a number, found a boolean")
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise MalformedArchive(f"{what}: expected {_json_name(names)}, found {_json_name(type(value).__name__)}")
    return value


def _json_name(py: str) -> str:
    return py.replace("dict", "object").replace("list", "array").replace("str", "string").replace(
        "int", "number").replace("NoneType", "null")
