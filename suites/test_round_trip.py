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
from harness.engines.received import Earlier
from harness.findings import changes_the_image
from harness.pytest_plugin import Record
from harness.report.diff_text import render_text
from harness.subjects import RunSubjects

pytestmark = pytest.mark.check("round-trip")


def test_save_load_save_preserves_the_image(engine: Engine, loaded_image: str, image: str, subjects: RunSubjects,
                                            workdir: Path, record: Record) -> None:
    refs = subjects.tags(image)  # every image and tag of a bundle, saved and loaded in one call
    before = {ref: engine.inspect(ref) for ref in refs}
    first, second = workdir / "first.tar", workdir / "second.tar"
    first_digest = subjects.saves.save(engine, refs, first)
    for ref in refs:
        engine.remove(ref)  # our own tags; the load below must bring them back
    engine.load(first)
    after = {ref: engine.inspect(ref) for ref in refs}
    read_first = read_archive(first)
    # the same bytes again are the same archive: read once (reading hashes every byte)
    same_bytes = engine.save(refs, second, earlier=Earlier(first, first_digest)) == first_digest
    result = diff_archives(read_first, read_first if same_bytes else read_archive(second))
    record.measure("same_bytes", same_bytes)
    record.add(*result.findings)
    losses = [f for f in result.findings if changes_the_image(f)]
    record.measure("findings", len(result.findings))
    record.measure("refs", len(refs))
    changed = [f"{ref}: {before[ref]['Id']} → {after[ref]['Id']}" for ref in refs if after[ref]["Id"] != before[ref]["Id"]]
    assert not changed, "image ID changed: " + "; ".join(changed)
    retagged = [ref for ref in refs if sorted(after[ref].get("RepoTags") or []) != sorted(before[ref].get("RepoTags") or [])]
    assert not retagged, f"RepoTags changed for {', '.join(retagged)}"
    assert not losses, render_text(result, limit=15)
