"""Every engine loads an offline-built image, tags it, pushes it to the registry and pulls it back."""

from __future__ import annotations

import json
import tarfile
import uuid
from pathlib import Path

import pytest

from harness.subjects import RunSubjects
from harness.engines.adapter import Engine
from harness.engines.registry import Registry
from harness.errors import ImageNotFound

def _diff_ids(archive: Path) -> list[str]:
    """diff_ids from the archive's own config, read with tarfile: independent of the harness's readers."""
    with tarfile.open(archive) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(tf.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
    return list(config["rootfs"]["diff_ids"])


def test_load_tag_push_pull(engine: Engine, registry: Registry, subjects: RunSubjects, run_namespace: str) -> None:
    archive = subjects["basic"]
    assert engine.load(archive), "the engine reported nothing loaded"
    source = engine.inspect(subjects.tag("basic"))
    assert source["RootFS"]["Layers"] == _diff_ids(archive), "the loaded image has other layers than the archive"
    repo = f"{run_namespace}/push-pull-{engine.id}"
    tag = uuid.uuid4().hex[:8]
    ref = f"{registry.host}/{repo}:{tag}"
    engine.tag(subjects.tag("basic"), f"{registry.host}/{repo}", tag)
    try:
        engine.push(f"{registry.host}/{repo}", tag)
        served = registry.served_digest(repo, tag)
        engine.remove(ref)
        with pytest.raises(ImageNotFound):
            engine.inspect(ref)
        engine.pull(f"{registry.host}/{repo}", tag)
        pulled = engine.inspect(ref)
        assert pulled["RootFS"]["Layers"] == source["RootFS"]["Layers"]
        assert pulled["Id"] == source["Id"], "the image ID changed through the registry"
        assert f"{registry.host}/{repo}@{served}" in pulled.get("RepoDigests", [])
    finally:
        try:
            engine.remove(ref)
        except ImageNotFound:
            pass
