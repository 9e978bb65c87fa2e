"""A save compared with an earlier one as it arrives is the engine's bytes and their digest, whatever it
repeats: all of the earlier save, part of it, more, less, or nothing."""

from __future__ import annotations

import hashlib
import itertools
import os
import random
from pathlib import Path

import pytest

from harness.engines.received import Earlier, Received

EARLIER = random.Random(7).randbytes(3 * (1 << 20) + 12345)


VARYING = 0
"""Pieces of changing sizes, larger and smaller than the one before, as a body read a MiB at a time gives them."""


def _receive(dest: Path, data: bytes, earlier: Earlier | None, piece: int) -> str:
    sizes = itertools.cycle([1 << 20, 1000, (1 << 20) - 77, 1, 70_000] if piece == VARYING else [piece])
    with Received(dest, earlier) as out:
        i = 0
        while i < len(data):
            size = next(sizes)
            out.write(memoryview(data)[i:i + size])
            i += size
        return out.close()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def earlier(tmp_path: Path) -> Earlier:
    path = tmp_path / "earlier.tar"
    path.write_bytes(EARLIER)
    return Earlier(path, _sha(EARLIER))


@pytest.mark.parametrize("piece", [1 << 20, 32768, 1000003, VARYING])
@pytest.mark.parametrize("name, data", [
    ("the same", EARLIER),
    ("a byte changed in the middle", EARLIER[:2_000_000] + b"X" + EARLIER[2_000_001:]),
    ("the first byte changed", b"\0" + EARLIER[1:]),
    ("the last byte changed", EARLIER[:-1] + b"\1"),
    ("shorter", EARLIER[:-100]),
    ("longer", EARLIER + b"more"),
    ("empty", b""),
])
def test_the_file_and_digest_are_the_bytes_received(tmp_path: Path, earlier: Earlier, piece: int, name: str,
                                                     data: bytes) -> None:
    dest = tmp_path / "save.tar"
    assert _receive(dest, data, earlier, piece) == _sha(data), name
    assert dest.read_bytes() == data, name
    assert earlier.path.read_bytes() == EARLIER  # the earlier save is never touched


def test_a_repeat_is_a_link_to_the_earlier_save_under_its_digest(tmp_path: Path, earlier: Earlier) -> None:
    dest = tmp_path / "again.tar"
    assert _receive(dest, EARLIER, earlier, 1 << 20) == earlier.digest
    assert os.path.samefile(dest, earlier.path)


def test_without_an_earlier_save_every_byte_is_written_and_hashed(tmp_path: Path) -> None:
    dest = tmp_path / "first.tar"
    assert _receive(dest, EARLIER, None, 32768) == _sha(EARLIER)
    assert dest.read_bytes() == EARLIER


def test_an_earlier_save_removed_meanwhile_is_no_earlier_save(tmp_path: Path) -> None:
    """A save another process kept may be gone by the time a save is compared with it."""
    dest = tmp_path / "save.tar"
    gone = Earlier(tmp_path / "removed.tar", _sha(b"what it held"))
    assert _receive(dest, EARLIER, gone, 32768) == _sha(EARLIER)
    assert dest.read_bytes() == EARLIER
