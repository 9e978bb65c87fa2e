"""digest-preservation: an image copied into the engine by a third-party tool keeps its registry digest.

Users mirror images with skopeo and load archives; the RepoDigest is what pins a
deployment.  For each route — skopeo straight into the daemon, skopeo to a
docker-archive then `docker load`, skopeo to an oci-archive then `docker load` —
we measure whether the engine's RepoDigests still name the manifest digest the
registry serves: kept, lost or changed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.engines.adapter import Engine
from harness.engines.registry import Registry
from harness.errors import HarnessError
from harness.findings import Category, Finding
from harness.pytest_plugin import Record

pytestmark = pytest.mark.check("digest-preservation")

ROUTES = ("skopeo-docker-daemon", "skopeo-docker-archive", "skopeo-oci-archive")


class ToolFailed(HarnessError):
    """The third-party tool itself failed (e.g. Debian 12's skopeo 1.9 speaks Docker API 1.22, which
    Docker 25+ refuses): the check could not measure the engine, which makes the result an *error*."""


def skopeo(*args: str) -> None:
    if shutil.which("skopeo") is None:
        raise ToolFailed("skopeo is not installed (apt-get install skopeo)")
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ToolFailed(f"skopeo {args[0]} failed: {last}")


@pytest.mark.parametrize("route", ROUTES)
def test_copied_image_keeps_its_registry_digest(engine: Engine, loaded_image: str, image: str, route: str,
                                               registry: Registry, run_namespace: str, workdir: Path,
                                               record: Record) -> None:
    repo = f"{run_namespace}/digest-{engine.id}-{image}-{route}"
    source = f"{registry.host}/{repo}"
    engine.tag(loaded_image, source, "v1")
    engine.push(source, "v1")
    engine.remove(f"{source}:v1")
    served = registry.served_digest(repo, "v1")
    src = f"docker://{source}:v1"
    try:
        if route == "skopeo-docker-daemon":
            skopeo("copy", "--src-tls-verify=false", "--dest-daemon-host", engine.spec.endpoint, src,
                   f"docker-daemon:{source}:v1")
        else:
            kind = route.removeprefix("skopeo-")
            archive = workdir / f"{kind}.tar"
            skopeo("copy", "--src-tls-verify=false", src, f"{kind}:{archive}:{source}:v1")
            engine.load(archive)
        digests = list(engine.inspect(f"{source}:v1").get("RepoDigests") or [])
    except ToolFailed:
        record.measure("digest", "not measured")
        raise
    except HarnessError as e:  # the engine refused what the tool made: the user's route is broken
        record.measure("digest", "load failed")
        pytest.fail(f"{route} into {engine.id} did not work: {e}", pytrace=False)
    finally:
        engine.remove_quietly(f"{source}:v1")
    mine = sorted(d for d in digests if d.split("@", 1)[0] == source)
    expected = f"{source}@{served}"
    verdict = "kept" if expected in mine else "changed" if mine else "lost"
    record.measure("digest", verdict)
    if verdict != "kept":
        record.add(Finding(Category.TAGS, f"inspect.RepoDigests:{route}", expected, mine or None,
                           f"registry digest {verdict} on the way through {route}"))
    assert verdict == "kept", f"{route}: the registry digest was {verdict} (expected {expected}, got {mine or 'none'})"
