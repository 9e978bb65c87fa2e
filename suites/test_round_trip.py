"""round-trip: save → load → save keeps the image: its ID, its RepoTags and its content.

Users move images between hosts with `docker save | docker load`; what comes back
must be the same image.  Header-level drift (mtimes, ordering) is recorded as
evidence but is the save-determinism check's verdict, not this one's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.archive import read_archive
from harness.diff import diff_archives
from harness.engines.adapter import Engine
from harness.findings import changes_the_image
from harness.pytest_plugin import Record
from harness.report.diff_text import render_text

pytestmark = pytest.mark.check("round-trip")



def test_save_load_save_preserves_the_image(engine: Engine, loaded_image: str, workdir: Path, record: Record) -> None:
    before = engine.inspect(loaded_image)
    first, second = workdir / "first.tar", workdir / "second.tar"
    engine.save(loaded_image, first)
    engine.remove(loaded_image)  # our own corpus tag; the load below must bring it back
    engine.load(first)
    after = engine.inspect(loaded_image)
    engine.save(loaded_image, second)
    result = diff_archives(read_archive(first), read_archive(second))
    record.add(*result.findings)
    losses = [f for f in result.findings if changes_the_image(f)]
    record.measure("findings", len(result.findings))
    assert after["Id"] == before["Id"], f"image ID changed: {before['Id']} → {after['Id']}"
    assert sorted(after.get("RepoTags") or []) == sorted(before.get("RepoTags") or []), "RepoTags changed"
    assert not losses, render_text(result, limit=15)
