"""digest-preservation: an image copied into the engine by a third-party tool keeps its registry digest.

Users mirror images with skopeo and load archives; the RepoDigest is what pins a
deployment.  For each route — skopeo straight into the daemon, skopeo to a
docker-archive then `docker load`, skopeo to an oci-archive then `docker load` —
and each skopeo the harness provisions (Debian 12's 1.9.3, trixie's 1.18), we
measure whether the engine's RepoDigests still name the manifest digest the
registry serves: kept, lost or changed.  A tool the engine refuses (skopeo 1.9.3
speaks Docker API 1.22; Docker 25+ wants 1.24) is a measured `fail` in the
engine's own words, as is an archive the engine does not load.  A multi-platform
image is published whole (every platform, its attestations) and copied to the
oci-archive with every platform, the way moby/moby#49386 says the containerd
store keeps the registry's digest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engines.adapter import Engine
from harness.engines.registry import Registry
from harness.errors import EngineError, EngineUnavailable
from harness.findings import Category, Finding
from harness.pytest_plugin import PUBLISHER, Record
from harness.subjects import RunSubjects
from harness.tools import SKOPEO, Tool, ToolFailed, ToolRefused, Tools, failure_words

pytestmark = [pytest.mark.check("digest-preservation"),
              pytest.mark.corpus("basic", "multiplatform")]  # the routes do not depend on what is in an image

ROUTES = ("docker-daemon", "docker-archive", "oci-archive")


def copy(tool: Tool, *args: str, into_engine: bool) -> None:
    """`skopeo copy`; with the engine as destination a failure is the engine's (or the pair's) refusal,
    measured; from the registry to a file no engine is involved, and a failure means nothing was measured."""
    proc = tool.run("--insecure-policy", *(["--debug"] if into_engine else []), "copy", "--src-tls-verify=false", *args)
    if proc.returncode != 0:
        if into_engine:
            raise ToolRefused(tool, failure_words(proc.stderr))
        raise ToolFailed(f"{tool.id} copy failed: {failure_words(proc.stderr)}")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("skopeo", [s.id for s in SKOPEO])
def test_copied_image_keeps_its_registry_digest(engine: Engine, loaded_image: str, image: str, skopeo: str, route: str,
                                               registry: Registry, run_namespace: str, workdir: Path, tools: Tools,
                                               subjects: RunSubjects, record: Record) -> None:
    tool = record.use(tools[skopeo])
    record.measure("skopeo_version", tool.version)
    repo = f"{run_namespace}/digest-{engine.id}-{image}-{skopeo}-{route}"
    source = f"{registry.host}/{repo}"
    if subjects.indexed(image):  # the registry holds the whole index, as users' registries do
        subjects.publish(image, registry, record.use(tools[PUBLISHER]), repository=repo, tag="v1")
    else:
        engine.tag(loaded_image, source, "v1")
        engine.push(source, "v1")
        engine.remove(f"{source}:v1")
    served = registry.served_digest(repo, "v1")
    src = f"docker://{source}:v1"
    try:
        if route == "docker-daemon":
            copy(tool, "--dest-daemon-host", engine.spec.endpoint, src, f"docker-daemon:{source}:v1", into_engine=True)
        else:
            archive = workdir / f"{route}.tar"
            every = ["--multi-arch", "all"] if route == "oci-archive" and subjects.indexed(image) else []
            copy(tool, *every, src, f"{route}:{archive}:{source}:v1", into_engine=False)
            engine.load(archive)
        digests = list(engine.inspect(f"{source}:v1").get("RepoDigests") or [])
    except ToolRefused as e:
        record.measure("digest", "refused")
        pytest.fail(f"{route} into {engine.id}: {e}", pytrace=False)
    except ToolFailed:
        record.measure("digest", "not measured")
        raise
    except EngineUnavailable:
        raise
    except EngineError as e:  # the engine refused what the tool made: the user's route is broken
        record.measure("digest", "load failed")
        pytest.fail(f"{route} by {tool.id} into {engine.id} did not work: {e}", pytrace=False)
    finally:
        engine.remove_quietly(f"{source}:v1")
    mine = sorted(d for d in digests if d.split("@", 1)[0] == source)
    expected = f"{source}@{served}"
    verdict = "kept" if expected in mine else "changed" if mine else "lost"
    record.measure("digest", verdict)
    if verdict != "kept":
        record.add(Finding(Category.TAGS, f"inspect.RepoDigests:{route}", expected, mine or None,
                           f"registry digest {verdict} on the way through {route} by {tool.id}"))
    assert verdict == "kept", f"{route} by {tool.id}: the registry digest was {verdict} (expected {expected}, got {mine or 'none'})"
