"""repodigests-unique: one image in several repositories has each RepoDigest once, and each names
the manifest digest the registry actually serves.

The seed's scenario (moby/moby#48747): tag one image as ns1/img:latest, ns1/img:1.0.0,
ns2/img:latest and ns2/img:1.0.0, push all four, inspect; then remove the tags and pull
them back, inspect again.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterator

import pytest

from harness.engines.adapter import Engine
from harness.engines.registry import Registry
from harness.findings import Category, Finding
from harness.pytest_plugin import Record

pytestmark = [pytest.mark.check("repodigests-unique"),
              pytest.mark.corpus("basic", "features", "large", "zstd", "multiplatform")]  # a bundle: its first image

@pytest.fixture
def four_refs(engine: Engine, loaded_image: str, image: str, registry: Registry,
              run_namespace: str) -> Iterator[list[tuple[str, str]]]:
    """ns1/img and ns2/img, tags latest and 1.0.0, in a run-unique namespace; removed afterwards."""
    base = f"{registry.host}/{run_namespace}/{engine.id}-{image}"
    refs = [(f"{base}/{ns}/img", tag) for ns in ("ns1", "ns2") for tag in ("latest", "1.0.0")]
    created: list[str] = []
    try:
        for repo, tag in refs:
            engine.tag(loaded_image, repo, tag)
            created.append(f"{repo}:{tag}")
        yield refs
    finally:
        for ref in created:
            engine.remove_quietly(ref)


def check_repodigests(engine: Engine, image_ref: str, refs: list[tuple[str, str]], registry: Registry,
                      record: Record, phase: str) -> None:
    digests = list(engine.inspect(image_ref).get("RepoDigests") or [])
    record.measure(f"repodigests_after_{phase}", len(digests))
    for digest, count in Counter(digests).items():
        if count > 1:
            record.add(Finding(Category.TAGS, f"inspect.RepoDigests[{phase}]", 1, count,
                               f"{digest} listed {count} times"))
    prefix = registry.host + "/"
    for repo in sorted({repo for repo, _ in refs}):
        path = repo[len(prefix):]
        served = {registry.served_digest(path, tag) for r, tag in refs if r == repo}
        mine = sorted(d for d in digests if d.split("@", 1)[0] == repo)
        expected = sorted(f"{repo}@{s}" for s in served)
        if sorted(set(mine)) != expected:
            record.add(Finding(Category.TAGS, f"inspect.RepoDigests[{phase}]:{path}", expected, mine,
                               "RepoDigests for this repository do not name what the registry serves"))


def test_push_to_several_repositories(engine: Engine, loaded_image: str, four_refs: list[tuple[str, str]],
                                      registry: Registry, record: Record) -> None:
    for repo, tag in four_refs:
        engine.push(repo, tag)
    check_repodigests(engine, loaded_image, four_refs, registry, record, "push")
    assert not record.findings, "\n".join(f"{f.where}: {f.note} (expected {f.a}, got {f.b})" for f in record.findings)


def test_pull_from_several_repositories(engine: Engine, loaded_image: str, four_refs: list[tuple[str, str]],
                                        registry: Registry, record: Record) -> None:
    for repo, tag in four_refs:
        engine.push(repo, tag)
    image_id = engine.inspect(loaded_image)["Id"]
    for repo, tag in four_refs:
        engine.remove(f"{repo}:{tag}")
    for repo, tag in four_refs:
        engine.pull(repo, tag)
    check_repodigests(engine, image_id, four_refs, registry, record, "pull")
    assert not record.findings, "\n".join(f"{f.where}: {f.note} (expected {f.a}, got {f.b})" for f in record.findings)
