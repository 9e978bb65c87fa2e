"""The core against real engine output: drifting saves diff as mtime only, every engine's save
canonicalizes to the same bytes, and a reference archive loads into every engine and saves back."""

from __future__ import annotations

import filecmp
import subprocess
import sys
import time
from pathlib import Path

from harness.archive import read_archive
from harness.corpus import EPOCH
from harness.subjects import RunSubjects
from harness.diff import diff_archives
from harness.engines.adapter import Engine
from harness.errors import HarnessError
from harness.findings import Category
from harness.reference.writer import write_reference

HEADER_ONLY = {Category.MTIME}


def test_two_saves_differ_only_in_mtimes_and_ignore_mtime_makes_them_equivalent(
        engine: Engine, subjects: RunSubjects, tmp_path: Path) -> None:
    tag = subjects.ensure(engine, "basic")
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    first = engine.save(tag, a)
    time.sleep(1.02 - time.time() % 1.0)
    second = engine.save(tag, b)
    result = diff_archives(read_archive(a), read_archive(b))
    if first == second:
        assert result.equivalent and not result.findings
        return
    assert result.findings, "different bytes must show as findings"
    assert {f.category for f in result.findings} <= HEADER_ONLY, result.findings
    assert all(f.where.startswith("archive:") for f in result.findings)
    cli = subprocess.run([sys.executable, "-m", "harness", "diff", str(a), str(b), "--ignore", "mtime"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stdout + cli.stderr


def test_every_engines_save_canonicalizes_to_the_original(engine: Engine, subjects: RunSubjects,
                                                          tmp_path: Path) -> None:
    saved, canonical = tmp_path / "saved.tar", tmp_path / "canonical.tar"
    engine.save(subjects.ensure(engine, "basic"), saved)
    write_reference(read_archive(saved), canonical, epoch=EPOCH)
    assert filecmp.cmp(canonical, subjects["basic"], shallow=False)


def test_reference_archive_loads_and_saves_back_to_the_same_image(engine: Engine, subjects: RunSubjects,
                                                                  tmp_path: Path) -> None:
    reference = tmp_path / "reference.tar"
    write_reference(read_archive(subjects["basic"]), reference, epoch=0)
    tag = subjects.tag("basic")
    if _present(engine, tag):
        engine.remove(tag)  # our own corpus tag: the load below must create it
    engine.load(reference)
    inspected = engine.inspect(tag)
    original = read_archive(reference).images[0]
    assert inspected["RootFS"]["Layers"] == list(original.diff_ids)
    back, again = tmp_path / "back.tar", tmp_path / "again.tar"
    engine.save(tag, back)
    saved_back = read_archive(back)
    assert saved_back.images[0].config_digest == original.config_digest, "the image ID changed"
    write_reference(saved_back, again, epoch=0)
    assert filecmp.cmp(reference, again, shallow=False)


def _present(engine: Engine, ref: str) -> bool:
    try:
        engine.inspect(ref)
        return True
    except HarnessError:
        return False
