"""The side-by-side walk of two layers gives exactly the findings of indexing both, only faster.

Each case runs both ways: `compare_files` (the walk, falling back to indexing)
and indexing alone. Cases that list the same paths in the same order must be
decided by the walk itself; the others must make it give up.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.memlayer import F, MemLayer, layer

from harness.diff import sort_findings
from harness.diff.layer_files import _compare_indexed, _encoding_only, compare_files
from harness.diff.walk import Diverged, SideBySide
from harness.image import Compression
from harness.tar.blocks import TarBlocks, Unusual

BIG = bytes(range(256)) * 6000  # 1.5 MB: more than one read chunk
BASE = [
    F("etc/", type=tarfile.DIRTYPE, mode=0o755),
    F("etc/hosts", b"127.0.0.1 localhost\n"),
    F("etc/big.bin", BIG),
    F("usr/bin/tool", b"\x7fELF" + b"x" * 3000, mode=0o755),
    F("usr/bin/link", type=tarfile.SYMTYPE, linkname="tool"),
    F("usr/share/" + "long/" * 30 + "name.txt", b"deep"),
    F("empty", b""),
]


def expected(a: MemLayer, b: MemLayer) -> list:
    return sort_findings(_compare_indexed("w", a, b) or [_encoding_only("w", a, b)])


def check(a_files: list[F], b_files: list[F], *, walked: bool, fmt: int = tarfile.PAX_FORMAT,
          compression: Compression = Compression.NONE) -> list:
    a, b = layer(a_files, compression, fmt=fmt), layer(b_files, compression, fmt=fmt)
    got = sort_findings(compare_files("w", a, b))
    assert got == expected(a, b)
    try:
        walk = sort_findings(SideBySide("w", a, b).findings() or [_encoding_only("w", a, b)])
    except (Diverged, Unusual):
        assert not walked, "the walk gave up on layers that list the same paths in the same order"
    else:
        assert walk == got
    return got


def edit(files: list[F], which: str, **changes: object) -> list[F]:
    return [F(**{**f.__dict__, **changes}) if f.path == which else f for f in files]


def sha256(data: bytes) -> str:
    """The digest hashlib gives, which every content finding must carry."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Counting(io.BytesIO):
    """A layer's bytes that count, per layer, how many of them were read."""

    def __init__(self, data: bytes, read: Counter[str], key: str) -> None:
        super().__init__(data)
        self._read, self._key = read, key

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = super().readinto(b)
        self._read[self._key] += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self._read[self._key] += len(data)
        return data


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("compression", [Compression.NONE, Compression.GZIP])
def test_one_changed_file_is_found_by_the_walk(fmt: int, compression: Compression) -> None:
    files = [f for f in BASE if fmt != tarfile.USTAR_FORMAT or len(f.path) < 100]
    got = check(files, edit(files, "etc/hosts", data=b"10.0.0.1 other\n"), walked=True, fmt=fmt,
                compression=compression)
    assert [(f.category.value, f.where) for f in got] == [("content", "w:etc/hosts")]


@pytest.mark.parametrize("data", [BIG[:-1] + b"!", b"!" + BIG[1:], BIG + b"more", b"short"])
def test_large_file_differences_have_true_digests(data: bytes) -> None:
    got = check(BASE, edit(BASE, "etc/big.bin", data=data), walked=True)
    assert [(f.category.value, f.where, f.a, f.b) for f in got] == [("content", "w:etc/big.bin", sha256(BIG),
                                                                    sha256(data))]


@pytest.mark.parametrize("compression", [Compression.NONE, Compression.GZIP])
def test_many_changed_large_files_have_true_digests_and_cost_one_extra_read(compression: Compression) -> None:
    """Large files differing in their first, a middle or their last chunk, equal ones between: true digests,
    and each layer opened at most twice (the walk, one fresh read), whatever the number of changed files."""
    big = [F(f"lib/{i:02}.so", BIG[i:] + BIG[:i]) for i in range(8)]
    changed = {1: lambda d: b"!" + d[1:], 3: lambda d: d[:700_000] + b"!" + d[700_001:],
               4: lambda d: d[:-1] + b"!", 6: lambda d: d[:-1] + b"!"}
    b_files = [F(f.path, changed[i](f.data)) if i in changed else f for i, f in enumerate(big)]
    opens: list[str] = []

    class Counted(MemLayer):
        def uncompressed(self) -> io.BytesIO:
            opens.append(self.diff_id)
            return io.BytesIO(self.tar)

    a, b = (Counted(layer(files, compression).tar, compression) for files in (big, b_files))
    got = sort_findings(SideBySide("w", a, b).findings())
    assert got == expected(a, b)
    assert [f.where for f in got] == [f"w:lib/{i:02}.so" for i in sorted(changed)]
    assert [(f.a, f.b) for f in got] == [(sha256(big[i].data), sha256(b_files[i].data)) for i in sorted(changed)]
    opens.clear()
    SideBySide("w", a, b).findings()
    assert opens.count(a.diff_id) <= 2 and opens.count(b.diff_id) <= 2


@pytest.mark.parametrize("changes", [
    {"mtime": 5}, {"mode": 0o600}, {"uid": 1000, "uname": "u"}, {"pax": {"SCHILY.xattr.user.k": "v"}},
    {"type": tarfile.DIRTYPE, "data": b""}, {"type": tarfile.SYMTYPE, "data": b"", "linkname": "x"},
    {"path": "./etc/hosts"},
])
def test_header_changes_match_indexing(changes: dict[str, object]) -> None:
    check(BASE, edit(BASE, "etc/hosts", **changes), walked=True)


def test_a_path_listed_twice_is_judged_by_its_last_pair() -> None:
    twice = BASE + [F("etc/hosts", b"final")]
    check(twice, edit(twice[:-1], "etc/hosts", data=b"first differs") + [F("etc/hosts", b"final")], walked=True)
    check(twice, twice[:-1] + [F("etc/hosts", b"final differs")], walked=True)


def test_only_encoding_differs_is_archive_format() -> None:
    a, b = layer(BASE[:2], fmt=tarfile.USTAR_FORMAT), layer(BASE[:2], fmt=tarfile.GNU_FORMAT)
    got = sort_findings(compare_files("w", a, b))
    assert got == expected(a, b)
    assert [f.category.value for f in got] == ["archive-format"]
    assert SideBySide("w", a, b).findings() == []  # the walk finds no file that differs: the encoding does


@pytest.mark.parametrize("b_files", [
    BASE + [F("new", b"n")], BASE[1:], [BASE[1], BASE[0], *BASE[2:]], edit(BASE, "etc/hosts", path="etc/hostz"),
])
def test_added_removed_or_moved_paths_agree_with_indexing(b_files: list[F]) -> None:
    check(BASE, b_files, walked=False)


@pytest.mark.parametrize("compression", [Compression.NONE, Compression.GZIP])
@pytest.mark.parametrize("where", [0, 300, 599])
@pytest.mark.parametrize("count", [1, 100])
def test_files_added_or_removed_are_merged_where_the_walk_parts(compression: Compression, where: int,
                                                                 count: int) -> None:
    """No start over: B read once, to its end; A at most once more (names only) to rule out repeated
    paths; one merge phase, which hands back to the walk right after the added or removed files."""
    read: Counter[str] = Counter()

    class Counted(MemLayer):
        def uncompressed(self) -> io.BytesIO:
            return Counting(self.tar, read, self.diff_id)

    new = [F(f"aaa/new{i}.txt", b"new %d" % i) for i in range(count)]
    with_new = MANY[:where] + new + MANY[where:]
    for a_files, b_files, kind in ((MANY, with_new, "added"), (with_new, MANY, "removed")):
        a, b = (Counted(layer(files, compression).tar, compression) for files in (a_files, b_files))
        read.clear()
        walk = SideBySide("w", a, b)
        got = walk.findings()
        assert read[b.diff_id] == len(b.tar) and read[a.diff_id] <= 2 * len(a.tar)
        assert sorted((f.category.value, f.where) for f in got) == sorted((kind, f"w:{f.path}") for f in new)
        assert sort_findings(got) == expected(a, b)
        [(start, end)] = walk.merged  # A's members the merge read: the new files and as many of the rest
        assert end - start <= 2 * count + 1  # (merging to the end would read all of A after `where`)


def test_unusual_tars_fall_back_to_tarfile() -> None:
    a = layer(BASE)
    g = io.BytesIO()
    with tarfile.open(fileobj=g, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "global"}) as tar:
        info = tarfile.TarInfo("etc/hosts")
        tar.addfile(info)
    b = MemLayer(g.getvalue())
    assert sort_findings(compare_files("w", a, b)) == expected(a, b)
    with pytest.raises(Unusual):
        TarBlocks(b.uncompressed()).next()


def test_truncated_layer_is_reported_as_indexing_reports_it() -> None:
    a, b = layer(BASE), MemLayer(layer(BASE).tar[:5000])
    with pytest.raises(Exception) as walked:
        compare_files("w", a, b)
    with pytest.raises(Exception) as indexed:
        _compare_indexed("w", a, b)
    assert (type(walked.value), str(walked.value)) == (type(indexed.value), str(indexed.value))


_EDITS = st.sampled_from(["data", "grow", "mtime", "mode", "dup", "xattr"])


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.integers(0, len(BASE) - 1), _EDITS), max_size=4))
def test_random_edits_agree_with_indexing(edits: list[tuple[int, str]]) -> None:
    b_files = list(BASE)
    for i, kind in edits:
        f = b_files[i]
        if kind == "dup":
            b_files.append(f)
            continue
        options: dict[str, dict[str, object]] = {
            "data": {"data": bytes(reversed(f.data))}, "grow": {"data": f.data + b"+"},
            "mtime": {"mtime": f.mtime + 1}, "mode": {"mode": 0o600},
            "xattr": {"pax": {"SCHILY.xattr.user.k": "v"}},
        }
        changes = options[kind]
        if f.type != tarfile.REGTYPE and "data" in changes:
            continue
        b_files[i] = F(**{**f.__dict__, **changes})
    a, b = layer(BASE + [f for f in b_files[len(BASE):]]), layer(b_files)
    assert sort_findings(compare_files("w", a, b)) == expected(a, b)


MANY = [F(f"lib/d{i // 50}/f{i}.so", bytes([i % 251]) * (700 + 37 * (i % 23))) for i in range(600)]


@pytest.mark.parametrize("b_files", [
    edit(MANY, "lib/d3/f170.so", data=b"changed"),                       # one change far into the layer
    edit(edit(MANY, "lib/d0/f2.so", mtime=9), "lib/d11/f599.so", data=b"last"),  # near both ends
    MANY + [F("lib/d0/f2.so", b"again")],                                # a path repeated after the runs
])
def test_runs_of_identical_members_are_passed_over_exactly(b_files: list[F]) -> None:
    """Layers larger than the shared-bytes step: identical runs are skipped on one side's headers."""
    a_files = MANY + [F("lib/d0/f2.so", b"again")] if len(b_files) > len(MANY) else MANY
    check(a_files, b_files, walked=True)
    check(a_files + [F("lib/d0/f2.so", MANY[2].data)], b_files + [F("lib/d0/f2.so", MANY[2].data)], walked=True)


_MOVES = st.sampled_from(["insert", "remove", "move", "dup-early", "dup-late", "swap", "change"])


@settings(max_examples=120, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.integers(0, 29), st.integers(0, 29), _MOVES), min_size=1, max_size=5))
def test_layers_that_diverge_agree_with_indexing(edits: list[tuple[int, int, str]]) -> None:
    """Paths added, removed, moved, swapped or listed twice: the in-step merge finds what indexing finds."""
    a_files = MANY[:30]
    b_files = list(a_files)
    for n, (i, j, kind) in enumerate(edits):
        i, j = i % len(b_files), j % len(b_files)
        f = b_files[i]
        if kind == "insert":
            b_files.insert(j, F(f"new/{n}.txt", b"new %d" % n))
        elif kind == "remove" and len(b_files) > 1:
            del b_files[i]
        elif kind == "move":
            b_files.insert(j, b_files.pop(i))
        elif kind == "swap":
            b_files[i], b_files[j] = b_files[j], b_files[i]
        elif kind == "dup-early":
            b_files.insert(min(i, j), F(f.path, b"shadowed"))
        elif kind == "dup-late":
            b_files.insert(max(i, j) + 1, F(f.path, b"wins"))
        elif kind == "change":
            b_files[i] = F(f.path, f.data + b"!")
    walked = [f.path for f in a_files] == [f.path for f in b_files]
    check(a_files, b_files, walked=walked)
    check(b_files, a_files, walked=walked)

