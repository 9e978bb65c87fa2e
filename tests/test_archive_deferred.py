"""Deferred layer checks: the same problems and errors as an eager read, and each compressed blob inflated once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import IO, Any

import pytest

from harness.archive import compression, inflated_digests, layers, read_archive, read_archives, read_context
from harness.diff import diff_archives
from harness.errors import MalformedArchive
from harness.findings import Category
from harness.tar.streams import ReadAhead
from tests import archives as A

BASE = A.layer({"usr/lib/base.txt": b"base " * 4000})
APP = A.layer({"app/one.txt": b"one", "app/two.txt": b"two " * 3000})
APP_B = A.layer({"app/one.txt": b"ONE", "app/two.txt": b"two " * 3000})


def _image(app: bytes, tag: str = "app:1") -> A.TestImage:
    return A.TestImage([BASE, app], tags=[tag])


@pytest.fixture
def inflations(monkeypatch: pytest.MonkeyPatch) -> Counter[int]:
    """How often each compressed size was inflated in this test, by any reader (the memo starts empty)."""
    monkeypatch.setattr(inflated_digests, "_known", {})
    counts: Counter[int] = Counter()
    real = compression.inflate

    def counting(stream: IO[bytes], comp: Any, *, size: int) -> IO[bytes]:
        counts[size] += 1
        return real(stream, comp, size=size)

    monkeypatch.setattr(read_context, "inflate", counting)
    monkeypatch.setattr(layers, "inflate", counting)
    return counts


@pytest.mark.parametrize("how", ["gzip", "zstd"])
def test_a_diff_inflates_every_blob_once(tmp_path: Path, inflations: Counter[int], how: str) -> None:
    a = A.oci(tmp_path / "a.tar", [_image(APP)], how=how)
    b = A.oci(tmp_path / "b.tar", [_image(APP_B)], how=how)
    result = diff_archives(*read_archives((a, None), (b, None), defer_checks=True))
    assert [(f.category, f.where) for f in result.findings] == [(Category.CONTENT, "image[0].layer[1]:app/one.txt")]
    sizes = {len(A.compress(x, how)) for x in (BASE, APP, APP_B)}
    assert len(sizes) == 3  # each blob told apart by its size
    assert dict(inflations) == {size: 1 for size in sizes}


def test_an_eager_read_inflates_every_blob_too(tmp_path: Path, inflations: Counter[int]) -> None:
    a = A.oci(tmp_path / "a.tar", [_image(APP)], how="gzip")
    read_archive(a)
    assert sorted(inflations.values()) == [1, 1]


def test_a_corrupt_layer_is_the_same_error_when_the_problems_are_looked_at(tmp_path: Path) -> None:
    path = A.oci(tmp_path / "a.tar", [_image(APP)], how="gzip")
    blob = A.compress(APP, "gzip")
    broken = blob[:10] + bytes(b ^ 0xFF for b in blob[10:30]) + blob[30:]
    out = A.rewrite(path, tmp_path / "b.tar", {f"blobs/sha256/{A.hexof(A.sha(blob))}": broken})
    with pytest.raises(MalformedArchive) as eager:
        read_archive(out)
    archive = read_archive(out, defer_checks=True)
    with pytest.raises(MalformedArchive) as deferred:
        list(archive.problems)
    assert str(deferred.value) == str(eager.value)
    assert "image[0].layer[1] (blobs/sha256/" in str(eager.value) and str(out) in str(eager.value)


def test_read_ahead_passes_every_byte_and_the_error_where_the_stream_broke() -> None:
    class Breaking:
        def __init__(self) -> None:
            self.given = 0
            self.closed = False

        def readinto(self, view: memoryview) -> int:
            if self.given >= 3 << 20:
                raise MalformedArchive("broken here")
            n = min(len(view), 700_000)
            view[:n] = bytes([self.given % 251]) * n
            self.given += n
            return n

        def close(self) -> None:
            self.closed = True

    raw = Breaking()
    stream = ReadAhead(raw)  # type: ignore[arg-type]
    got = 0
    buf = bytearray(300_000)
    with pytest.raises(MalformedArchive, match="broken here"):
        while n := stream.readinto(buf):
            got += n
    assert got == raw.given
    with pytest.raises(MalformedArchive, match="broken here"):  # again: never an end of stream
        stream.readinto(buf)
    stream.close()
    assert raw.closed
