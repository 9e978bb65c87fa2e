"""reference-conformance: each engine's save against the canonical archive of the same image.

The corpus archive is written by our reference builder, so it is canonical.  An
engine's `docker save` of that image is diffed against it and every difference is
listed and classified (format, headers, compression … are how the engine encodes
the archive).  The verdict asks what users rely on: the engine kept the image —
the canonical form of its save is byte-identical to the canonical original, and
nothing of content, config or tags was lost.
"""

from __future__ import annotations

import dataclasses
import filecmp
import hashlib
from pathlib import Path

import pytest

from harness.archive import read_archive
from harness.corpus import EPOCH, RunCorpus, corpus_tag
from harness.diff import diff_archives
from harness.engines.adapter import Engine
from harness.findings import changes_the_image
from harness.pytest_plugin import Record
from harness.reference.writer import write_reference
from harness.report.diff_text import render_text

pytestmark = pytest.mark.check("reference-conformance")



def test_save_conforms_to_the_canonical_archive(engine: Engine, loaded_image: str, image: str,
                                               corpus: RunCorpus, workdir: Path, record: Record) -> None:
    saved = workdir / "saved.tar"
    engine.save(loaded_image, saved)
    canonical, archive = read_archive(corpus[image]), record.read(saved, f"save of {loaded_image}")
    result = diff_archives(canonical, archive)
    record.add(*result.findings)
    record.measure("differences", dict(result.summary))
    rewritten = workdir / "saved-canonical.tar"
    # under the cached corpus tag, not the run's: the same image is then the same bytes in every run, on every host
    unscoped = tuple(dataclasses.replace(i, repo_tags=tuple(t.replace(corpus.tag(image), corpus_tag(image))
                                                            for t in i.repo_tags)) for i in archive.images)
    write_reference(dataclasses.replace(archive, images=unscoped), rewritten, epoch=EPOCH)  # the corpus' epoch
    identical = filecmp.cmp(corpus.cached[image], rewritten, shallow=False)
    record.measure("canonical_identical", identical)
    # what compare and baseline match across hosts and upgrades: the image the engine kept, however it packed it
    with open(rewritten, "rb") as f:
        record.measure("canonical_digest", "sha256:" + hashlib.file_digest(f, "sha256").hexdigest())
    record.measure("archive_format", str(archive.format))
    record.measure("image_id", archive.images[0].id)
    losses = [f for f in result.findings if changes_the_image(f)]
    assert not losses, render_text(result, limit=15)
    assert identical, "the canonical form of the engine's save differs from the canonical original"
