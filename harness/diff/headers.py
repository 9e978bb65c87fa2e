"""Tar header comparison, shared by outer archive entries and files inside layers.

Each header field belongs to exactly one category, so that a file whose only
change is its mtime is reported as `mtime` and ``--ignore mtime`` removes it
without hiding anything else:

    mtime, PAX atime/ctime          → mtime
    uid, gid, uname, gname          → ownership
    mode bits, entry type, device   → mode
    other PAX records (xattrs …)    → xattr
    size, linkname, content digest  → content
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.findings import Category, Finding
from harness.image import EntryType, TarHeader

TIME_RECORDS = frozenset({"atime", "ctime", "mtime"})


@dataclass(frozen=True)
class Change:
    """One category of difference between two headers: the fields involved and their values."""

    category: Category
    a: Any
    b: Any
    note: str


def normalize_name(name: str) -> str:
    """The path a tar entry stands for: ``./etc/`` and ``etc`` name the same file."""
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/") or "."


def describe(header: TarHeader, digest: str | None) -> str:
    """What a person needs to recognise an entry that exists on one side only."""
    if digest:
        return f"{header.type} {header.size} bytes {digest}"
    if (device := _device(header)) is not None:
        return f"{header.type} {device}"
    return f"{header.type} → {header.linkname}" if header.linkname else str(header.type)


def _mtime(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _mode(value: int) -> str:
    return f"{value:04o}"


def _device(header: TarHeader) -> str | None:
    """``major,minor`` of a char or block device: /dev/null (1,3) turned into /dev/mem (1,1) is a change
    of what the file is, like its type."""
    return f"{header.devmajor},{header.devminor}" if header.type in (EntryType.CHAR, EntryType.BLOCK) else None


def _pax(header: TarHeader, times: bool) -> dict[str, str]:
    return {k: v for k, v in header.pax if (k in TIME_RECORDS) == times}


def _records(a: dict[str, str], b: dict[str, str]) -> list[tuple[str, Any, Any]]:
    return [(f"pax:{k}", a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys())]


def header_changes(
    a: TarHeader, b: TarHeader, *, digests: tuple[str | None, str | None] | None = None
) -> list[Change]:
    """Differences between two headers, one `Change` per category.

    With `digests` (the content digests of both sides) size, linkname and
    content are compared too, as `content`; without, the caller compares
    content elsewhere (outer blobs are compared at the image level).
    """
    compared: list[tuple[Category, list[tuple[str, Any, Any]]]] = [
        (Category.MTIME, [("mtime", _mtime(a.mtime), _mtime(b.mtime))]
         + _records(_pax(a, True), _pax(b, True))),
        (Category.OWNERSHIP, [
            ("uid", a.uid, b.uid), ("gid", a.gid, b.gid),
            ("uname", a.uname, b.uname), ("gname", a.gname, b.gname),
        ]),
        (Category.MODE, [("type", str(a.type), str(b.type)), ("mode", _mode(a.mode), _mode(b.mode)),
                         ("device", _device(a), _device(b))]),
        (Category.XATTR, _records(_pax(a, False), _pax(b, False))),
    ]
    if digests is not None:
        compared.append((Category.CONTENT, [
            ("digest", digests[0], digests[1]),
            ("size", a.size, b.size),
            ("linkname", a.linkname, b.linkname),
        ]))
    changes = []
    for category, values in compared:
        differing = [(name, va, vb) for name, va, vb in values if va != vb]
        if category is Category.CONTENT and len(differing) > 1 and differing[0][0] == "digest":
            differing = differing[:1]  # the size follows from the bytes; the digest says it all
        if len(differing) == 1:
            name, va, vb = differing[0]
            changes.append(Change(category, va, vb, name))
        elif differing:
            changes.append(Change(
                category,
                {name: va for name, va, _ in differing},
                {name: vb for name, _, vb in differing},
                ", ".join(name for name, _, _ in differing),
            ))
    return changes


def file_findings(where: str, a: TarHeader, b: TarHeader, digests: tuple[str | None, str | None]
                  ) -> list[Finding]:
    """The findings at `where` for a file both layers hold: one per category of `header_changes`."""
    return [Finding(c.category, where, c.a, c.b, c.note) for c in header_changes(a, b, digests=digests)]


def one_sided(side: int, where: str, header: TarHeader, digest: str | None) -> Finding:
    """A path only A (side 0: removed) or only B (side 1: added) lists."""
    if side == 0:
        return Finding(Category.REMOVED, where, describe(header, digest), None)
    return Finding(Category.ADDED, where, None, describe(header, digest))
