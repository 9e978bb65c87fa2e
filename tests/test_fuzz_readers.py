"""Property: whatever bytes an archive holds, reading it gives an `Archive` or a `HarnessError`, nothing else.

Valid archives of every format are mutated (bytes flipped, cut, tar blocks
spliced, metadata JSON rewritten with odd values) and read; what reads is
then taken further the way the CLI does (layer listings, a diff against the
original), since a reader that returns a half-checked model only moves the
crash.  Derandomized and without an example database, so CI sees the same
examples on every run.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.archive import read_archive
from harness.diff import diff_archives
from harness.errors import HarnessError
from harness.image import Archive
from harness.report import inspect_text
from harness.report.diff_text import render_json, render_text
from tests import archives as A

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_IMAGE = A.TestImage([A.layer({"etc/a": b"a\n", "bin/b": b"b" * 700}), A.layer({"etc/c": b"c"})], tags=["f:1"])
_BUILDERS: dict[str, Callable[[Path], Path]] = {
    **A.writers([_IMAGE]),
    "oci-zstd-nested": lambda p: A.oci(p, [_IMAGE], how="zstd", nested=True),
}


def _build_bases() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        return {name: make(Path(tmp, f"{name}.tar")).read_bytes() for name, make in _BUILDERS.items()}


BASES = _build_bases()
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
    | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["sha256:" + "0" * 64, "../../etc/passwd", "/etc/passwd", "blobs/sha256/" + "f" * 64, ""]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)


def _consume(archive: Archive, original: Archive) -> None:
    """What the CLI does with an archive that reads: describe it with file counts, diff it, render both."""
    view = inspect_text.describe(archive, count_files=True)
    inspect_text.render_text(view).encode("utf-8", "backslashreplace")
    json.dumps(view)
    result = diff_archives(original, archive)
    render_text(result, limit=None).encode("utf-8", "backslashreplace")
    render_json(result)


class Mutant:
    """A mutated archive; its repr names the base and the mutation, not the bytes (failures stay readable)."""

    def __init__(self, base: str, how: str, data: bytes) -> None:
        self.base, self.how, self.data = base, how, data

    def __repr__(self) -> str:
        return f"Mutant({self.base!r}, {self.how!r}, {len(self.data)} bytes)"


@pytest.fixture(scope="module")
def check(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Mutant], None]:
    """Reads a mutant of base archive `base`; only `HarnessError`s may come out."""
    workdir = tmp_path_factory.mktemp("fuzz")
    originals = {}
    for name, data in BASES.items():
        (workdir / name).write_bytes(data)
        originals[name] = read_archive(workdir / name)

    def run(mutant: Mutant) -> None:
        path = workdir / "mutant.tar"
        path.write_bytes(mutant.data)
        try:
            _consume(read_archive(path), originals[mutant.base])
        except HarnessError as e:
            assert "\n" not in str(e), str(e)

    return run


@st.composite
def flipped(draw: st.DrawFn) -> Mutant:
    base = draw(st.sampled_from(sorted(BASES)))
    data = bytearray(BASES[base])
    changes = []
    for _ in range(draw(st.integers(1, 8))):
        at, value = draw(st.integers(0, len(data) - 1)), draw(st.integers(0, 255))
        data[at] = value
        changes.append(f"{at}={value}")
    return Mutant(base, "flip " + " ".join(changes), bytes(data))


@st.composite
def truncated(draw: st.DrawFn) -> Mutant:
    base = draw(st.sampled_from(sorted(BASES)))
    cut = draw(st.integers(0, len(BASES[base])))
    return Mutant(base, f"cut at {cut}", BASES[base][:cut])


@st.composite
def spliced(draw: st.DrawFn) -> Mutant:
    """Tar blocks moved, duplicated or dropped: headers land where data was and the reverse."""
    base = draw(st.sampled_from(sorted(BASES)))
    data = BASES[base]
    blocks = [data[i:i + 512] for i in range(0, len(data), 512)]
    ops = []
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(blocks) - 1))
        j = draw(st.integers(0, len(blocks)))
        op = draw(st.sampled_from(["copy", "move", "drop"]))
        ops.append(f"{op} {i}->{j}")
        block = blocks[i]
        if op != "copy":
            del blocks[i]
        if op != "drop":
            blocks.insert(min(j, len(blocks)), block)
    return Mutant(base, "blocks " + ", ".join(ops), b"".join(blocks))


# ustar header fields (offset, width) and values a hostile producer would put there.
_FIELDS = {"name": (0, 100), "mode": (100, 8), "uid": (108, 8), "size": (124, 12), "mtime": (136, 12),
           "type": (156, 1), "linkname": (157, 100), "prefix": (345, 155), "gnu-isextended": (482, 1)}
_FIELD_VALUES = st.sampled_from([
    b"", b"../../etc/passwd", b"/etc/passwd", b"a/../../b", b"\xff\xfe", b"77777777777", b"-1",
    b"\x80" + (2 ** 40).to_bytes(11, "big"), b"\xff" * 12, b"\x80" + b"\xff" * 11, b"1", b"2", b"5", b"7", b"L",
    b"x", b"K", b"g", b"S", b"manifest.json", b"blobs/sha256/",
]) | st.binary(max_size=12)


@st.composite
def header_mutated(draw: st.DrawFn) -> Mutant:
    """One field of a tar header (outer archive or an uncompressed layer) set to a hostile value, checksum fixed."""
    base = draw(st.sampled_from(sorted(BASES)))
    data = bytearray(BASES[base])
    headers = [i for i in range(0, len(data) - 511, 512) if data[i + 257:i + 262] == b"ustar"]
    at = draw(st.sampled_from(headers))
    field = draw(st.sampled_from(sorted(_FIELDS)))
    offset, width = _FIELDS[field]
    value = draw(_FIELD_VALUES)[:width].ljust(width, b"\0")
    data[at + offset:at + offset + width] = value
    data[at + 148:at + 156] = b" " * 8
    data[at + 148:at + 156] = b"%06o\0 " % sum(data[at:at + 512])
    return Mutant(base, f"header at {at}: {field}={value.rstrip(bytes(1))!r}", bytes(data))


def _mutate_json(draw: st.DrawFn, value: Any) -> Any:
    """`value` with one node replaced, deleted or duplicated."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        op = draw(st.sampled_from(["recurse", "delete", "replace"]))
        obj = dict(value)
        if op == "delete":
            del obj[key]
        else:
            obj[key] = _mutate_json(draw, value[key]) if op == "recurse" else draw(JSON_VALUES)
        return obj
    if isinstance(value, list) and value and draw(st.booleans()):
        i = draw(st.integers(0, len(value) - 1))
        op = draw(st.sampled_from(["recurse", "delete", "replace", "duplicate"]))
        items = list(value)
        if op == "delete":
            del items[i]
        elif op == "duplicate":
            items.insert(i, value[i])
        else:
            items[i] = _mutate_json(draw, value[i]) if op == "recurse" else draw(JSON_VALUES)
        return items
    return draw(JSON_VALUES)


@st.composite
def json_mutated(draw: st.DrawFn) -> Mutant:
    """One metadata document (manifest.json, index.json, a manifest or config blob) rewritten."""
    base = draw(st.sampled_from(sorted(BASES)))
    with tarfile.open(fileobj=io.BytesIO(BASES[base])) as tf:
        members = [(m, tf.extractfile(m).read() if m.isreg() else None) for m in tf.getmembers()]  # type: ignore[union-attr]
    docs = [k for k, (m, data) in enumerate(members) if data is not None and data[:1] in (b"{", b"[")]
    k = draw(st.sampled_from(docs))
    member, data = members[k]
    assert data is not None
    new = json.dumps(_mutate_json(draw, json.loads(data))).encode()
    member.size = len(new)
    members[k] = (member, new)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as out:
        for m, content in members:
            out.addfile(m, io.BytesIO(content) if content is not None else None)
    return Mutant(base, f"{member.name}: {new[:200]!r}", buf.getvalue())


@SETTINGS
@given(case=flipped())
def test_flipped_bytes(check: Callable[[Mutant], None], case: Mutant) -> None:
    check(case)


@SETTINGS
@given(case=truncated())
def test_truncated(check: Callable[[Mutant], None], case: Mutant) -> None:
    check(case)


@SETTINGS
@given(case=spliced())
def test_spliced_blocks(check: Callable[[Mutant], None], case: Mutant) -> None:
    check(case)


@SETTINGS
@given(case=json_mutated())
def test_mutated_metadata(check: Callable[[Mutant], None], case: Mutant) -> None:
    check(case)


@SETTINGS
@given(case=header_mutated())
def test_mutated_headers(check: Callable[[Mutant], None], case: Mutant) -> None:
    check(case)
