"""pull-resume: a pull that fails mid-layer and is retried should fetch only what is missing.

The registry is reached through our fault-injecting proxy, and the largest layer
blob of an image made for this run (48 MiB no engine can already hold) is broken
after 40 % of its bytes, in one of two ways users meet:

* ``registry-error``: the connection is cut and the blob refused (503) afterwards,
  so the engine's own retries fail too and the pull errors out (a flaky registry
  or network);
* ``client-cancel``: the transfer stalls and the client gives up (a Ctrl-C, a
  CI step's timeout), hanging up on the engine mid-layer.

Then the proxy heals and the pull is retried.  We measure, from what the proxy
served: bytes the retry downloaded, whether it sent Range requests, the bytes
wasted (downloaded more than once), what partial data the interruption left in
the engine's data root, and (client-cancel) whether the engine stopped
downloading when its client left.
"""

from __future__ import annotations

import time

import pytest

from harness.subjects import RunSubjects
from harness.engines.adapter import Engine
from harness.engines.farm import Farm
from harness.engines.registry import Registry
from harness.faults import FaultPlan, FaultProxy
from harness.pytest_plugin import Record

pytestmark = pytest.mark.check("pull-resume")

CUT_FRACTION = 0.4
GIVE_UP_S = 240
STALL_S = 5            # how long the layer stalls before the client hangs up
HANG_UP_S = 30         # how long the engine may take to stop downloading once its client has left


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


@pytest.mark.parametrize("interruption", ["registry-error", "client-cancel"])
def test_retry_after_a_cut_layer_fetches_only_what_is_missing(
        engine: Engine, subjects: RunSubjects, registry: Registry, run_namespace: str, record: Record,
        interruption: str) -> None:
    record.image = "unique-48MiB"
    archive, source = subjects.unique(f"pull-resume-{engine.id}-{interruption}", 48 << 20)
    engine.load(archive)
    repo, tag = f"{run_namespace}/pull-resume-{engine.id}-{interruption}", "v1"
    engine.tag(source, f"{registry.host}/{repo}", tag)
    engine.push(f"{registry.host}/{repo}", tag)
    digest, size = largest_layer(registry, repo, tag)
    for ref in (f"{registry.host}/{repo}:{tag}", source):  # both ours: the pull must really download
        engine.remove(ref)

    plan = FaultPlan(digest, cut_after=int(size * CUT_FRACTION), stall=interruption == "client-cancel")
    # podman must be told the proxy is plain HTTP: the farm's registries.conf names the reserved port
    port = Farm().proxy_port(engine.id) if engine.identity.engine == "podman" else 0
    with FaultProxy(("127.0.0.1", registry.port), plan, port=port) as proxy:
        started = time.monotonic()
        if interruption == "client-cancel":
            _cancel_mid_layer(engine, plan, f"{proxy.host}/{repo}", tag, record)
        else:
            _fail_mid_layer(engine, plan, f"{proxy.host}/{repo}", tag)
        record.measure("first_attempt_s", round(time.monotonic() - started, 1))
        leftover = partial_bytes(engine)
        plan.heal()
        plan.settle()  # a transfer the engine kept open is cut now, and counts in the first attempt
        first_attempt = plan.blob_requests()
        first_bytes = sum(r.bytes_sent for r in first_attempt)
        seen = len(first_attempt)
        time.sleep(1)
        engine.pull(f"{proxy.host}/{repo}", tag)
        retry = plan.blob_requests()[seen:]
    try:
        pulled = engine.inspect(f"{proxy.host}/{repo}:{tag}")
    finally:
        engine.remove_quietly(f"{proxy.host}/{repo}:{tag}")
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


def _fail_mid_layer(engine: Engine, plan: FaultPlan, repository: str, tag: str) -> None:
    """The registry cuts the layer and refuses it from then on, until the engine's pull fails by itself.

    A retry measured while the first pull still runs would mix the two pulls'
    requests (graph drivers back off for a minute or more before they give up).
    """
    pull = engine.start_pull(repository, tag)
    ended = pull.wait(GIVE_UP_S + 30)
    if not ended:
        pull.hang_up()
    if plan.cuts == 0:
        pytest.fail("the engine never requested the layer blob through the proxy", pytrace=False)
    if not ended:
        pytest.fail(f"the first pull did not give up within {GIVE_UP_S}s of the cut "
                    f"({len(plan.blob_requests())} blob requests)", pytrace=False)
    if pull.error is None:
        pytest.fail("the first pull succeeded although every request after the cut was refused", pytrace=False)


def _cancel_mid_layer(engine: Engine, plan: FaultPlan, repository: str, tag: str, record: Record) -> None:
    """The layer stalls mid-way and the client hangs up; the engine should stop downloading."""
    pull = engine.start_pull(repository, tag)
    if not plan.stalled.wait(GIVE_UP_S):
        pull.hang_up()
        pytest.fail("the engine never requested the layer blob through the proxy", pytrace=False)
    if pull.wait(STALL_S):
        pytest.fail(f"the pull ended while the layer stalled ({pull.error or 'no error'})", pytrace=False)
    pull.hang_up()
    stopped = plan.abandoned.wait(HANG_UP_S)
    record.measure("engine_stopped_download_after_cancel", stopped)
    time.sleep(1)  # what the engine received before it stopped is on disk
