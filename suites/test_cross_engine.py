"""cross-engine: the same image from the registry is the same image on every engine.

The image is published to the registry with skopeo (no engine involved; every
platform of a multi-platform image, with its attestations), then each engine
pulls it, saves it and inspects it.  The save must be content-equivalent to the
published images it holds (no content, config, added or removed findings; a
multi-platform image is compared for the platforms the engine pulled, and a
blob the save lacks is a `missing` finding per blob), and `image inspect` must
agree with what the image itself says.  Fields that legitimately differ between
engines are listed in `ENGINE_FIELDS`, each with its reason; everything else is
compared.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from deepdiff import DeepDiff

from harness.subjects import RunSubjects
from harness.diff import diff_archives
from harness.engines.adapter import Engine
from harness.engines.registry import Registry
from harness.errors import HarnessError
from harness.findings import Category, Finding, changes_the_image
from harness.image import Archive
from harness.pytest_plugin import PUBLISHER, Record
from harness.report.diff_text import render_text
from harness.tools import Tools

pytestmark = [pytest.mark.check("cross-engine"),
              pytest.mark.corpus("basic", "features", "large", "zstd", "multiplatform")]  # a bundle is one image here


ENGINE_FIELDS = {
    "Id": "config digest on graph drivers and podman, manifest digest on the containerd store",
    "RepoTags": "names are the pulling engine's (podman qualifies them with docker.io/ or the registry)",
    "RepoDigests": "checked by the repodigests-unique check",
    "Size": "unpacked size as each storage driver counts it",
    "VirtualSize": "deprecated alias of Size, absent on newer API versions",
    "SharedSize": "storage accounting",
    "GraphDriver": "the storage driver's own data (paths, driver name)",
    "Metadata": "LastTagTime: when this engine last tagged the image",
    "Descriptor": "the containerd store exposes the manifest descriptor it keeps",
    "DockerVersion": "the version field of the builder, reported only by some engines",
    "Container": "legacy builder field, dropped by newer API versions",
    "ContainerConfig": "legacy builder field, dropped by newer API versions",
    "Parent": "local parent image ID, graph drivers only",
    "Comment": "podman reports the history comment; docker reports the image comment",
    "NamesHistory": "podman's record of names the image had",
    "Digest": "podman's manifest digest of its own copy",
    "Manifests": "containerd store: per-platform manifests it holds",
    "Author": "empty string vs absent",
    "Variant": "empty string vs absent",
}


def _expected_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """What `image inspect` should say about an image, from the image's own config."""
    inner = config.get("config") or {}
    return {
        "Architecture": config.get("architecture"), "Os": config.get("os"),
        "Created": config.get("created"), "RootFS": {"Type": "layers", "Layers": config["rootfs"]["diff_ids"]},
        "Config": {k: inner.get(k) for k in ("Env", "Entrypoint", "Cmd", "Labels", "WorkingDir", "User")},
    }


def _observed(inspect: dict[str, Any]) -> dict[str, Any]:
    config = inspect.get("Config") or {}
    created = str(inspect.get("Created", ""))
    return {
        "Architecture": inspect.get("Architecture"), "Os": inspect.get("Os"),
        "Created": created.replace(".000000000Z", "Z").replace("+00:00", "Z"),
        "RootFS": {"Type": (inspect.get("RootFS") or {}).get("Type"), "Layers": (inspect.get("RootFS") or {}).get("Layers")},
        "Config": {k: (config.get(k) or None) for k in ("Env", "Entrypoint", "Cmd", "Labels", "WorkingDir", "User")},
    }


@pytest.fixture
def published(image: str, subjects: RunSubjects, registry: Registry, run_namespace: str, tools: Tools,
              record: Record) -> str:
    """The image pushed to the registry by skopeo (every platform of a multi-platform image), once per run, in a
    repository of this check's: every engine pulls it fresh, whatever it already holds."""
    try:
        skopeo = record.use(tools[PUBLISHER])
        return subjects.publish(image, registry, skopeo, repository=f"{run_namespace}/cross-engine/{image}")
    except HarnessError as e:
        pytest.fail(str(e), pytrace=False)


def _published_part(original: Archive, saved: Archive) -> Archive:
    """The original's images that the engine saved: by image ID, else by platform (one engine pulls one
    platform of an index); all of them when neither matches, so that what differs is shown."""
    ids = {im.config_digest for im in saved.images}
    platforms = {str(im.platform) for im in saved.images}
    images = (tuple(im for im in original.images if im.config_digest in ids)
              or tuple(im for im in original.images if original.indexes and str(im.platform) in platforms)
              or original.images)
    return dataclasses.replace(original, images=images)


def test_pulled_image_is_the_same_on_every_engine(engine: Engine, image: str, published: str, subjects: RunSubjects,
                                                 workdir: Path, record: Record) -> None:
    repo, tag = published.rsplit(":", 1)
    engine.pull(repo, tag)
    try:
        inspect = engine.inspect(published)
        saved = workdir / "pulled.tar"
        engine.save(published, saved)
    finally:
        engine.remove_quietly(published)
    archive = record.read(saved, f"save of {published}")
    original = _published_part(subjects.archive(image), archive)
    result = diff_archives(original, archive)
    # the pulled image is named after the registry, not like the original: names are not content
    content = [f for f in result.findings if changes_the_image(f) and f.category is not Category.TAGS]
    record.add(*content)
    record.measure("platforms_saved", sorted(str(im.platform) for im in archive.images))
    pulled = f"{inspect.get('Os')}/{inspect.get('Architecture')}" + (f"/{inspect['Variant']}" if inspect.get("Variant") else "")
    config = next((im.config for im in original.images if str(im.platform) == pulled), original.images[0].config)
    expected = _expected_from_config(dict(config))
    drift = DeepDiff(expected, _observed(inspect), ignore_order=False, verbose_level=2)
    for kind, changes in drift.items():
        for path, change in (changes.items() if isinstance(changes, dict) else ((str(c), c) for c in changes)):
            a = change.get("old_value") if isinstance(change, dict) else None
            b = change.get("new_value") if isinstance(change, dict) else change
            record.add(Finding(Category.CONFIG, f"inspect:{path.replace('root', '$', 1)}", a, b, kind))
    unexplained = sorted(set(inspect) - set(expected) - set(ENGINE_FIELDS) - {"Config"})
    record.measure("unlisted_inspect_fields", unexplained)
    assert not content, render_text(result, limit=15)
    assert not drift, f"image inspect disagrees with the image's config: {drift}"
