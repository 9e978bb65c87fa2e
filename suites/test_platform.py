"""platform: an image keeps its platform through load, inspect, save and pull, whatever the engine's own.

A CI fleet mixes amd64 and arm64 hosts, and images of one platform land on
engines of another (an amd64-only base image pulled on an arm64 runner, an
archive carried from one to the other).  Per operation the engine may keep the
image as it is, refuse it (in its own words: a measured `fail`, never an
`error`), or convert it (another platform, another image ID).  The corpus images
are single-platform linux/amd64, so on arm64 engines this measures what the
engine does with a foreign-platform image, and on amd64 engines that a native one
is left alone.  Timings of each operation are recorded: under emulation they
are the cost of emulation.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping

import pytest

from harness.subjects import RunSubjects
from harness.engines.adapter import Engine
from harness.errors import EngineError, EngineUnavailable, HarnessError
from harness.findings import Category, Finding
from harness.pytest_plugin import Record
from harness.engines.registry import Registry

pytestmark = pytest.mark.check("platform")

IMAGE = "large"  # one image keeps the check short; its 48 MiB layer makes the timings mean something


def platform_of(os_: Any, arch: Any, variant: Any = None) -> str:
    return "/".join(str(p) for p in (os_, arch, variant) if p)


def config_platform(config: Mapping[str, Any]) -> str:
    return platform_of(config.get("os"), config.get("architecture"), config.get("variant"))


def inspect_platform(inspect: Mapping[str, Any]) -> str:
    return platform_of(inspect.get("Os"), inspect.get("Architecture"), inspect.get("Variant"))


class Stages:
    """Each operation's verdict (kept, converted, refused) and duration, recorded as it is measured."""

    def __init__(self, record: Record, expected: str) -> None:
        self.record = record
        self.expected = expected
        self.refusals: dict[str, str] = {}

    def run(self, stage: str, action: Callable[[], Any]) -> bool:
        """Time `action`; False when the engine refused it (an engine error, not a lost engine)."""
        started = time.monotonic()
        try:
            action()
        except EngineUnavailable:
            raise
        except EngineError as e:
            self.refusals[stage] = str(e)
            self.record.measure(f"platform_{stage}", "refused")
            return False
        finally:
            self.record.measure(f"{stage}_s", round(time.monotonic() - started, 3))
        return True

    def judge(self, stage: str, seen: str, where: str) -> None:
        verdict = "kept" if seen == self.expected else "converted"
        self.record.measure(f"platform_{stage}", verdict)
        if verdict == "converted":
            self.record.add(Finding(Category.CONFIG, where, self.expected, seen, f"{stage} changed the image's platform"))


def test_image_keeps_its_platform_through_load_save_and_pull(engine: Engine, subjects: RunSubjects, registry: Registry,
                                                             run_namespace: str, workdir: Path,
                                                             record: Record) -> None:
    record.image = IMAGE
    original = subjects.archive(IMAGE).images[0]
    expected = config_platform(original.config)
    record.measure("image_platform", expected)
    record.measure("engine_platform", engine.identity.platform)
    stages = Stages(record, expected)
    tag = subjects.tag(IMAGE)
    remote = f"{registry.host}/{run_namespace}/platform-{engine.id}"
    try:
        engine.remove(tag)  # our corpus tag from an earlier check: the load below must really load
    except HarnessError:
        pass
    if stages.run("load", lambda: engine.load(subjects[IMAGE])):
        stages.judge("inspect", inspect_platform(engine.inspect(tag)), "inspect:Os/Architecture/Variant")
        saved = workdir / "saved.tar"
        if stages.run("save", lambda: engine.save(tag, saved)):
            image = record.read(saved, f"save of {tag}").images[0]
            stages.judge("save", config_platform(image.config), "archive:config:$.os/architecture/variant")
            if image.config_digest != original.config_digest:
                record.add(Finding(Category.CONFIG, "archive:config", original.config_digest, image.config_digest,
                                   "the saved image has another ID than the one loaded"))
        engine.tag(tag, remote, "v1")
        try:
            if stages.run("push", lambda: engine.push(remote, "v1")):
                engine.remove(f"{remote}:v1")
                engine.remove(tag)  # so that the pull fetches the layers (later checks load the corpus again)
                if stages.run("pull", lambda: engine.pull(remote, "v1")):
                    stages.judge("pull", inspect_platform(engine.inspect(f"{remote}:v1")), "inspect(pulled):Os/Architecture")
        finally:
            try:
                engine.remove(f"{remote}:v1")
            except HarnessError:
                pass
    refused = "; ".join(f"{stage} refused: {words}" for stage, words in stages.refusals.items())
    assert not stages.refusals, f"{expected} image on a {engine.identity.platform} engine: {refused}"
    assert not record.findings, "; ".join(f"{f.where}: {f.a} → {f.b} ({f.note})" for f in record.findings)
