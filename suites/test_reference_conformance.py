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
from pathlib import Path

import pytest

from harness.corpus import EPOCH
from harness.diff import diff_archives
from harness.engines.adapter import Engine
from harness.findings import changes_the_image
from harness.image import Archive, Image
from harness.pytest_plugin import Record
from harness.reference.writer import reference_digest
from harness.report.diff_text import render_text
from harness.subjects import RunSubjects

pytestmark = pytest.mark.check("reference-conformance")


def _canonical(archive: Archive, scratch: Path) -> str:
    """The digest of the canonical form of `archive` (the corpus' epoch), as `harness reference` writes it."""
    return reference_digest(archive, scratch, epoch=EPOCH)


def _platform_image(archive: Archive, image: Image) -> Archive:
    """`archive` holding just one of its platform images: what a platform is, alone (what attests it is the
    multi-platform check's to record)."""
    return dataclasses.replace(archive, images=(dataclasses.replace(image, index=None),), indexes=(), referrers=(),
                               unfollowed=(), unreferenced=())  # what an index names beside it is not this image


def test_save_conforms_to_the_canonical_archive(engine: Engine, loaded_image: str, image: str,
                                               subjects: RunSubjects, workdir: Path, record: Record) -> None:
    refs = subjects.tags(image)
    saved = workdir / "saved.tar"
    subjects.saves.save(engine, refs, saved)
    original, archive = subjects.archive(image), record.read(saved, f"save of {', '.join(refs)}")
    result = diff_archives(original, archive)
    record.add(*result.findings)
    record.measure("differences", dict(result.summary))
    record.measure("archive_format", str(archive.format))
    # under the image's own tags, not the run's: the same image is then the same bytes in every run, on every host
    archive = subjects.untagged(image, archive)
    origin = subjects.origin_archive(image)
    losses = [f for f in result.findings if changes_the_image(f)]
    # an image whose blobs the save names but lacks has no canonical form: the engine did not save it whole
    incomplete = {str(im.platform): ", ".join(im.lacking) for im in archive.images if not im.complete}
    record.measure("platforms_incomplete", sorted(incomplete))
    if not subjects.indexed(image):
        assert not incomplete, f"the save lacks blobs of the image it names: {'; '.join(incomplete.values())}"
        canonical_digest = _canonical(archive, workdir)
        identical = canonical_digest == subjects.remembered(
            f"canonical digest of {image}", lambda: _canonical(origin, workdir))
        # what compare and baseline match across hosts and upgrades: the image the engine kept, however it packed it
        record.measure("canonical_digest", canonical_digest)
        record.measure("canonical_identical", identical)
        record.measure("image_id", archive.images[0].id if archive.images else None)
        assert not losses, render_text(result, limit=15)
        assert identical, "the canonical form of the engine's save differs from the canonical original"
        return
    # a multi-platform image: each platform the engine saved against the same platform of the original
    by_platform = {str(im.platform): im for im in origin.images}
    digests: dict[str, str] = {}
    differing: list[str] = []
    for im in archive.images:
        platform = str(im.platform)
        if platform in incomplete:
            differing.append(f"{platform} (the save lacks its {incomplete[platform]})")
            continue
        digests[platform] = _canonical(_platform_image(archive, im), workdir)
        if platform not in by_platform or digests[platform] != subjects.remembered(
                f"canonical digest of {image} {platform}",
                lambda: _canonical(_platform_image(origin, by_platform[platform]), workdir)):
            differing.append(platform)
    record.measure("canonical_digests", digests)
    record.measure("platforms_saved", sorted(digests))
    own = engine.identity.platform
    assert own in digests or own in incomplete, \
        f"the save holds no image for the engine's own platform {own} (it holds {sorted(digests)})"
    assert not differing, f"platform(s) {', '.join(differing)}: not the original's canonical form"
