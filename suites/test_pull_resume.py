"""pull-resume: a pull that fails mid-layer and is retried should fetch only what is missing.

The registry is reached through our fault-injecting proxy: the largest layer blob
of an image made for this run (48 MiB no engine can already hold) is cut after 40 % of its bytes and refused (503)
afterwards, so the pull fails; then the proxy heals and the pull is retried.  We
measure, from what the proxy served: bytes the retry downloaded, whether it sent
Range requests, the bytes wasted (downloaded more than once), and what partial
data the failure left in the engine's data root.
"""

from __future__ import annotations

import threading
import time

import pytest

from harness.corpus import RunCorpus
from harness.engines.adapter import Engine
from harness.engines.farm import Farm
from harness.errors import HarnessError
from harness.faults import FaultPlan, FaultProxy
from harness.pytest_plugin import Record
from harness.registry import Registry

pytestmark = pytest.mark.check("pull-resume")

CUT_FRACTION = 0.4
GIVE_UP_S = 240


def largest_layer(registry: Registry, repo: str, tag: str) -> tuple[str, int]:
    """The digest and size of the largest layer blob the registry serves for repo:tag."""
    doc = registry.manifest(repo, tag)
    if "manifests" in doc:  # an index: take the first image manifest
        doc = registry.manifest(repo, doc["manifests"][0]["digest"])
    layer = max(doc["layers"], key=lambda d: d["size"])
    return str(layer["digest"]), int(layer["size"])


def partial_bytes(engine: Engine) -> int | None:
    """Bytes of unfinished downloads left in a farm engine's data root (None where we cannot look)."""
    if not engine.spec.managed:
        return None
    data = Farm().root / engine.id / "data"
    places = [data / "tmp", data / "containerd" / "daemon" / "io.containerd.content.v1.content" / "ingest"]
    return sum(f.stat().st_size for place in places if place.exists() for f in place.rglob("*") if f.is_file())


def _range_start(header: str | None) -> int:
    if not header or not header.startswith("bytes="):
        return 0
    return int(header[len("bytes="):].split("-", 1)[0] or 0)


def test_retry_after_a_cut_layer_fetches_only_what_is_missing(
        engine: Engine, corpus: RunCorpus, registry: Registry, run_namespace: str, record: Record) -> None:
    record.image = "unique-48MiB"
    archive, source = corpus.unique(f"pull-resume-{engine.id}", 48 << 20)
    engine.load(archive)
    repo, tag = f"{run_namespace}/pull-resume-{engine.id}", "v1"
    engine.tag(source, f"{registry.host}/{repo}", tag)
    engine.push(f"{registry.host}/{repo}", tag)
    digest, size = largest_layer(registry, repo, tag)
    for ref in (f"{registry.host}/{repo}:{tag}", source):  # both ours: the pull must really download
        engine.remove(ref)

    plan = FaultPlan(digest, cut_after=int(size * CUT_FRACTION))
    # podman must be told the proxy is plain HTTP: the farm's registries.conf names the reserved port
    port = Farm().proxy_port if engine.identity.engine == "podman" else 0
    with FaultProxy(("127.0.0.1", registry.port), plan, port=port) as proxy:
        failing = Engine(engine.spec, timeout=GIVE_UP_S)
        error: list[Exception] = []

        def first_pull() -> None:
            try:
                failing.pull(f"{proxy.host}/{repo}", tag)
            except HarnessError as e:
                error.append(e)

        # the engine must give up by itself: a retry measured while its first pull still runs would
        # mix the two pulls' requests (graph drivers back off for a minute or more before they give up)
        worker = threading.Thread(target=first_pull)
        started = time.monotonic()
        worker.start()
        worker.join(timeout=GIVE_UP_S + 30)
        failing.close()
        record.measure("first_attempt_s", round(time.monotonic() - started, 1))
        if plan.cuts == 0:
            pytest.fail("the engine never requested the layer blob through the proxy", pytrace=False)
        if worker.is_alive():
            pytest.fail(f"the first pull did not give up within {GIVE_UP_S}s of the cut "
                        f"({len(plan.blob_requests())} blob requests)", pytrace=False)
        if not error:
            pytest.fail("the first pull succeeded although every request after the cut was refused",
                        pytrace=False)
        leftover = partial_bytes(engine)
        first_attempt = plan.blob_requests()
        first_bytes = sum(r.bytes_sent for r in first_attempt)
        plan.failing = False
        seen = len(plan.blob_requests())
        time.sleep(1)
        engine.pull(f"{proxy.host}/{repo}", tag)
        retry = plan.blob_requests()[seen:]
    try:
        pulled = engine.inspect(f"{proxy.host}/{repo}:{tag}")
    finally:
        for ref in (f"{proxy.host}/{repo}:{tag}",):
            try:
                engine.remove(ref)
            except HarnessError:
                pass
    retry_bytes = sum(r.bytes_sent for r in retry)
    ranged = [r for r in retry if _range_start(r.range) > 0]
    record.measure("layer_bytes", size)
    record.measure("cut_at", plan.cut_after)
    record.measure("first_attempt_bytes", first_bytes)
    record.measure("in_pull_retries", len(first_attempt) - 1)
    record.measure("in_pull_retry_used_range", any(_range_start(r.range) > 0 for r in first_attempt[1:]))
    record.measure("retry_bytes", retry_bytes)
    record.measure("retry_requests", len(retry))
    record.measure("retry_used_range", bool(ranged))
    record.measure("wasted_bytes", max(0, first_bytes + retry_bytes - size))
    record.measure("partial_bytes_left", leftover)
    assert pulled["RootFS"]["Layers"], "the retried pull left no image"
    assert retry_bytes < size, (
        f"the retry downloaded {retry_bytes} of {size} bytes again ({len(retry)} requests, "
        f"Range used: {bool(ranged)}); {first_bytes} bytes were fetched before the cut")
