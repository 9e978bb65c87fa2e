"""multi-platform: what an engine keeps of a multi-platform image, through pull → save → load → save.

Official and most users' images are indexes of several platforms, each with a provenance attestation.
The image (linux/amd64 and linux/arm64, each attested by BuildKit-style provenance) is pushed to the
run's registry by skopeo and pulled; the engine's save is read for the platforms, the index and the
attestations it kept, and inspect for the RepoDigests; the save is loaded back (after the pulled name
is removed) and saved again.  ``--platform`` is asked of save and load on every engine: what the engine
saved or loaded says whether it honoured, ignored or refused it (Docker's API has it since 1.48).

What must hold: the engine's own platform survives pull, save and load with the original's image ID,
its save carries that platform's blobs, and saving what was loaded gives the same images again.  What
else it keeps (other platforms, the index, attestations, blobs a save names but lacks) is recorded, not
judged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.archive import read_archive
from harness.diff import diff_archives
from harness.engines.adapter import Engine
from harness.engines.registry import Registry
from harness.errors import EngineError, EngineUnavailable
from harness.findings import Category, Finding, changes_the_image
from harness.image import Archive
from harness.pytest_plugin import PUBLISHER, Record
from harness.report.diff_text import render_text
from harness.subjects import RunSubjects
from harness.tools import Tools

pytestmark = [pytest.mark.check("multi-platform"), pytest.mark.corpus("multiplatform")]


def kept(archive: Archive, origin: Archive, index_digest: str) -> dict[str, Any]:
    """What a save holds of the original: platforms (with whether each is the original's image), the index,
    attestations, and blobs it names but lacks."""
    ids = {str(im.platform): im.id for im in origin.images}
    return {
        "platforms": sorted(str(im.platform) for im in archive.images),
        "same_ids": sorted(str(im.platform) for im in archive.images if ids.get(str(im.platform)) == im.id),
        "index_kept": any(ix.descriptor.digest == index_digest for ix in archive.indexes),
        "attestations": len(archive.attestations),
        "missing_blobs": sum(1 for p in archive.problems if p.category is Category.MISSING),
    }


def _assert_own_platform_whole(saved: Archive, own: str) -> None:
    lacking = [blob for im in saved.images if str(im.platform) == own for blob in im.lacking]
    assert not lacking, f"the save after the pull names the engine's own platform {own} but lacks its " \
                        f"{', '.join(lacking)}"


def _words(engine: Engine, error: EngineError) -> str:
    """What the engine answered, without our prefix naming it."""
    return error.message.removeprefix(f"{engine.id}: ")[:200]


def _platforms_saved(engine: Engine, ref: str, platform: str, out: Path) -> str:
    """What `save --platform` did: honoured (that platform alone), ignored, or refused in the engine's words."""
    try:
        engine.save(ref, out, platform=platform)
    except EngineUnavailable:
        raise
    except EngineError as e:
        return f"refused: {_words(engine, e)}"
    platforms = sorted(str(im.platform) for im in read_archive(out).images)
    return "honoured" if platforms == [platform] else f"ignored (saved {', '.join(platforms) or 'no image'})"


def test_what_an_engine_keeps_of_a_multi_platform_image(engine: Engine, image: str, subjects: RunSubjects,
                                                        registry: Registry, tools: Tools, run_namespace: str,
                                                        workdir: Path, record: Record) -> None:
    if not subjects.indexed(image):
        pytest.skip(f"{image} is a single-platform image: this check takes images an index holds")
    repository = f"{run_namespace}/multi-platform/{engine.id}"
    ref = subjects.publish(image, registry, record.use(tools[PUBLISHER]), repository=repository)
    tag = ref.rpartition(":")[2]
    index_digest = registry.served_digest(repository, tag)
    origin = subjects.archive(image)
    own = engine.identity.platform
    own_id = next((im.id for im in origin.images if str(im.platform) == own), None)
    record.measure("engine_platform", own)
    try:
        engine.pull(ref.rpartition(":")[0], tag)
    except EngineUnavailable:
        raise
    except EngineError as e:
        pytest.fail(f"{engine.id} could not pull {image}: {e.message}", pytrace=False)
    try:
        _measure(engine, ref, own, own_id, origin, index_digest, workdir, record)
    finally:
        engine.remove_quietly(ref)


def _measure(engine: Engine, ref: str, own: str, own_id: str | None, origin: Archive, index_digest: str,
             workdir: Path, record: Record) -> None:
    pulled = engine.inspect(ref)
    digests = list(pulled.get("RepoDigests") or [])
    record.measure("repodigests", len(digests))
    record.measure("repodigest_names_index", f"{ref.rpartition(':')[0]}@{index_digest}" in digests)
    first, second = workdir / "first.tar", workdir / "second.tar"
    engine.save(ref, first)
    saved = record.read(first, f"save of {ref}")
    record.measure("after_pull_save", kept(saved, origin, index_digest))
    record.measure("save_platform_own", _platforms_saved(engine, ref, own, workdir / "own.tar"))
    other = next(str(im.platform) for im in origin.images if str(im.platform) != own)
    record.measure("save_platform_other", _platforms_saved(engine, ref, other, workdir / "other.tar"))

    engine.remove(ref)
    try:
        engine.load(first)
    except EngineUnavailable:
        raise
    except EngineError as e:
        pytest.fail(f"{engine.id} did not load its own save of {ref}: {e.message}", pytrace=False)
    try:
        loaded = engine.inspect(ref)
    except EngineUnavailable:
        raise
    except EngineError as e:
        record.measure("after_load", f"no image: {_words(engine, e)}")
        _assert_own_platform_whole(saved, own)  # the cause, when it is one
        pytest.fail(f"{engine.id} loaded its own save of {ref} without an error, and then: {e.message}", pytrace=False)
    engine.save(ref, second)
    again = record.read(second, f"save of {ref} after load")
    record.measure("after_load_save", kept(again, origin, index_digest))
    result = diff_archives(saved, again)
    record.add(*result.findings)
    engine.remove(ref)
    try:
        engine.load(first, platform=own)
        record.measure("load_platform_own", "loaded" if engine.inspect(ref) else "not loaded")
    except EngineUnavailable:
        raise
    except EngineError as e:
        record.measure("load_platform_own", f"refused: {_words(engine, e)}")

    ids = {str(im.platform): im.id for im in saved.images}
    if ids.get(own) != own_id:
        record.add(Finding(Category.CONFIG, f"save:{own}", own_id, ids.get(own),
                           "the engine's own platform is not the original's image after the pull"))
    assert ids.get(own) == own_id, (
        f"the save after the pull holds {sorted(ids)}; the engine's own platform {own} should be image {own_id}")
    _assert_own_platform_whole(saved, own)
    assert loaded["Id"] == pulled["Id"], f"loading the save gave image {loaded['Id']}, the pull gave {pulled['Id']}"
    # blobs a save lacks of other platforms (the engine did not pull them) are recorded above, on both sides alike
    changed = [f for f in result.findings if changes_the_image(f) and f.category is not Category.MISSING]
    assert not changed, render_text(result, limit=15)
