"""cross-engine: the same image from the registry is the same image on every engine.

The corpus image is published to the registry with skopeo (no engine involved),
then each engine pulls it, saves it and inspects it.  The save must be
content-equivalent to the published archive (no content, config, added or
removed findings), and `image inspect` must agree with what the image itself
says.  Fields that legitimately differ between engines are listed in
`ENGINE_FIELDS`, each with its reason; everything else is compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from deepdiff import DeepDiff
from filelock import FileLock

from harness.archive import read_archive
from harness.corpus import RunCorpus
from harness.diff import diff_archives
from harness.engines.adapter import Engine
from harness.engines.registry import Registry
from harness.errors import HarnessError
from harness.findings import Category, Finding, changes_the_image
from harness.pytest_plugin import Record
from harness.report.diff_text import render_text
from harness.tools import SKOPEO, ToolFailed, Tools, failure_words

pytestmark = pytest.mark.check("cross-engine")


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
def published(image: str, corpus: RunCorpus, registry: Registry, run_namespace: str,
              run_tmp: Path, tools: Tools, record: Record) -> str:
    """The corpus image pushed to the registry by skopeo (Debian 12's), once per run (shared by xdist workers)."""
    ref = f"{registry.host}/{run_namespace}/cross-engine/{image}:v1"
    marker = run_tmp / f"published-{image}"
    try:
        skopeo = record.use(tools[SKOPEO[0].id])
        with FileLock(str(marker) + ".lock"):
            if not marker.exists():
                proc = skopeo.run("--insecure-policy", "copy", "--dest-tls-verify=false",
                                  f"docker-archive:{corpus[image]}", f"docker://{ref}")
                if proc.returncode != 0:
                    raise ToolFailed(f"{skopeo.id} could not publish {image}: {failure_words(proc.stderr)}")
                marker.write_text(ref)
    except HarnessError as e:
        pytest.fail(str(e), pytrace=False)
    return ref


def test_pulled_image_is_the_same_on_every_engine(engine: Engine, image: str, published: str, corpus: RunCorpus,
                                                 workdir: Path, record: Record) -> None:
    repo, tag = published.rsplit(":", 1)
    engine.pull(repo, tag)
    try:
        inspect = engine.inspect(published)
        saved = workdir / "pulled.tar"
        engine.save(published, saved)
    finally:
        engine.remove_quietly(published)
    original = read_archive(corpus[image])
    result = diff_archives(original, record.read(saved, f"save of {published}"))
    # the pulled image is named after the registry, not like the original: names are not content
    content = [f for f in result.findings if changes_the_image(f) and f.category is not Category.TAGS]
    record.add(*content)
    expected = _expected_from_config(dict(original.images[0].config))
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
