"""A check's save compared with another check's kept save is still the engine's bytes and their digest: the first
save of an image on an engine is kept for the next, the next repeats it as a link, a kept save that is not what
the engine sends (or is gone) changes nothing but the cost, and a session removes what it kept."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from harness.engines.adapter import Engine
from harness.engines.kept import KeptSaves
from harness.subjects import RunSubjects


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def test_kept_saves_are_compared_with_and_never_change_what_a_save_is(engine: Engine, subjects: RunSubjects,
                                                                     tmp_path: Path) -> None:
    tag = subjects.ensure(engine, "basic")
    kept = KeptSaves(tmp_path / "kept")
    first = kept.save(engine, [tag], tmp_path / "first.tar")
    assert first == _sha256(tmp_path / "first.tar")
    (slot,) = (tmp_path / "kept").iterdir()
    assert [p.name for p in slot.iterdir()] == [first.removeprefix("sha256:") + ".tar"]

    again = kept.save(engine, [tag], tmp_path / "again.tar")
    assert again == _sha256(tmp_path / "again.tar")
    if again == first:  # the engine repeated itself: the repeat is the kept file, not a copy
        assert os.path.samefile(tmp_path / "again.tar", tmp_path / "first.tar")

    # a kept save that is not what the engine sends: the save is the engine's bytes, hashed as they came
    (kept_file,) = slot.iterdir()
    kept_file.unlink()
    (slot / ("0" * 64 + ".tar")).write_bytes(b"not the engine's save" * 1000)
    other = kept.save(engine, [tag], tmp_path / "other.tar")
    assert other == _sha256(tmp_path / "other.tar") and other != "sha256:" + "0" * 64
    assert (tmp_path / "other.tar").stat().st_size == (tmp_path / "first.tar").stat().st_size

    kept.forget()
    assert not slot.exists()
    gone = KeptSaves(tmp_path / "kept")
    assert gone.save(engine, [tag], tmp_path / "after.tar") == _sha256(tmp_path / "after.tar")
    gone.forget()
    assert list((tmp_path / "kept").iterdir()) == []
