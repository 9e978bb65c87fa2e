"""Layer listings read as raw blocks equal tarfile's, member for member, whatever the tar looks like."""

from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import MalformedArchive
from harness.image import FileEntry
from harness.tar.listing import _with_tarfile, iter_layer_files

NAMES = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), min_size=1, max_size=40),
    st.builds(lambda parts: "/".join(parts), st.lists(st.text("abcdef", min_size=1, max_size=30), min_size=2,
                                                     max_size=9)),  # long names: ustar prefix, GNU or PAX
    st.sampled_from(["./etc/", "etc//x", "dir/", "\udcff\udcfe-latin1", "a" * 101]),
)
TYPES = st.sampled_from([tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                         tarfile.CHRTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE])
MEMBERS = st.tuples(NAMES, TYPES, st.integers(0, 0o7777), st.integers(0, 2**21), st.integers(-1, 2**34),
                    st.text(max_size=12), st.binary(max_size=3000), st.text(max_size=30),
                    st.dictionaries(st.sampled_from(["SCHILY.xattr.user.a", "comment"]), st.text(max_size=5),
                                    max_size=1))


def tar_of(members: list[tuple], fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
        for name, kind, mode, uid, mtime, uname, data, link, pax in members:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.mtime, info.uname, info.linkname = kind, mode, uid, mtime, uname, link
            info.pax_headers = dict(pax) if fmt == tarfile.PAX_FORMAT else {}
            regular = kind in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE) and not name.endswith("/")
            info.size = len(data) if regular else 0
            tar.addfile(info, io.BytesIO(data) if info.size else None)
    return buf.getvalue()


def both(data: bytes) -> tuple[list[FileEntry], list[FileEntry]]:
    opener = lambda: io.BytesIO(data)  # noqa: E731
    return list(iter_layer_files(opener, "layer")), list(_with_tarfile(opener, "layer", None, skip=0))


@settings(max_examples=150, deadline=None)
@given(st.lists(MEMBERS, max_size=6), st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]))
def test_raw_blocks_list_what_tarfile_lists(members: list[tuple], fmt: int) -> None:
    try:
        data = tar_of(members, fmt)
    except (ValueError, UnicodeError):
        return  # not representable in this format
    fast, slow = both(data)
    assert fast == slow


@pytest.mark.parametrize("cut", [0, 100, 700, 1500, 2560])
def test_broken_layers_fail_as_with_tarfile(cut: int) -> None:
    data = tar_of([("a", tarfile.REGTYPE, 0o644, 0, 0, "", b"x" * 2000, "", {})] * 2, tarfile.PAX_FORMAT)[:cut]
    results = []
    for read in (lambda o: list(iter_layer_files(o, "layer")), lambda o: list(_with_tarfile(o, "layer", None, skip=0))):
        try:
            results.append(read(lambda: io.BytesIO(data)))
        except MalformedArchive as e:
            results.append(str(e))
    assert results[0] == results[1]


def test_a_member_only_tarfile_reads_hands_over_midway() -> None:
    head = tar_of([("a", tarfile.REGTYPE, 0o644, 0, 0, "", b"1", "", {})], tarfile.USTAR_FORMAT)[:1024]
    sparse = bytearray(tar_of([("b", tarfile.REGTYPE, 0o644, 0, 0, "", b"2", "", {})], tarfile.USTAR_FORMAT))
    sparse[156:157] = b"V"  # a type the raw reader leaves to tarfile
    sparse[148:156] = b"%06o\0 " % (sum(sparse[:148]) + 256 + sum(sparse[156:512]))
    fast, slow = both(head + bytes(sparse))
    assert fast == slow and [e.path for e in fast] == ["a", "b"]
