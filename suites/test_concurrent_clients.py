"""concurrent-clients: what one client reads keeps working while another removes its own images.

CI jobs share daemons.  While a second client (`Churn`, over its own connection)
loads images of fresh content and removes them again, this client lists images
and inspects a loaded corpus image, round after round, and saves it every
tenth round, until at least 150 listings were made.  Each request is made
once, with no retry: the engine is what is measured.  Every kind of
request that failed is a finding, and so is an image ID that changed.
Listing latency with and without the other client is recorded, not judged.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest

from harness.subjects import RunSubjects
from harness.engines.adapter import Engine
from harness.errors import EngineUnavailable, HarnessError
from harness.findings import Category, Finding
from harness.pytest_plugin import Record
from suites.churn import Churn

pytestmark = pytest.mark.check("concurrent-clients")

MIN_S, MAX_S = 8.0, 60.0  # how long both clients work side by side
MIN_CYCLES = 5         # fewer removals by the other client than this measure nothing
MIN_LISTINGS = 150     # a race lost by 4 % of listings shows in 150 with 99.8 % probability
SAVE_EVERY = 10        # a save per this many listings: saves hold the daemon, listings are the probe
IDLE_LISTINGS = 5
IMAGE = "basic"      # what is read does not matter, only that another client removes images meanwhile


def _timed(call: Callable[[], Any]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def _ms(seconds: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(seconds) * 1000, 1), "max_ms": round(max(seconds) * 1000, 1)}


def test_reads_while_another_client_removes_images(engine: Engine, subjects: RunSubjects, run_namespace: str,
                                                   workdir: Path, record: Record) -> None:
    record.image = IMAGE
    loaded_image = subjects.ensure(engine, IMAGE)
    idle = [_timed(lambda: engine.images(retry=False)) for _ in range(IDLE_LISTINGS)]
    image_id = engine.inspect(loaded_image)["Id"]
    saved = workdir / "save.tar"
    requests_made: Counter[str] = Counter()
    failures: dict[str, list[str]] = {}
    listing: list[float] = []
    save_digests: set[str] = set()

    def attempt(kind: str, call: Callable[[], Any]) -> None:
        requests_made[kind] += 1
        try:
            call()
        except HarnessError as e:
            if isinstance(e, EngineUnavailable) and kind != "save":
                raise  # an engine that cannot be reached answered nothing to count (a save cut short counts)
            failures.setdefault(kind, []).append(str(e).splitlines()[0][:300])

    with Churn(engine.spec, run_namespace, workdir / "churn") as churn:
        started = time.monotonic()
        while not churn.error and time.monotonic() - started < MAX_S and (
                time.monotonic() - started < MIN_S or churn.cycles < MIN_CYCLES or requests_made["list"] < MIN_LISTINGS):
            attempt("list", lambda: listing.append(_timed(lambda: engine.images(retry=False))))
            attempt("inspect", lambda: engine.inspect(loaded_image))
            if requests_made["list"] % SAVE_EVERY == 1:
                attempt("save", lambda: save_digests.add(engine.save(loaded_image, saved)))
    if churn.error:
        raise churn.error
    if churn.cycles < MIN_CYCLES:
        raise HarnessError(f"the other client removed {churn.cycles} images in {MAX_S:.0f} s: nothing was measured")
    after = engine.inspect(loaded_image)["Id"]

    record.measure("other_client_removals", churn.cycles)
    record.measure("requests", dict(requests_made))
    record.measure("failed", {kind: len(errors) for kind, errors in failures.items()})
    record.measure("list_failed_pct", round(100 * len(failures.get("list", [])) / max(1, requests_made["list"]), 1))
    record.measure("listing_idle", _ms(idle))
    if listing:
        record.measure("listing_during_churn", _ms(listing))
    record.measure("distinct_saves", len(save_digests))
    for kind, errors in sorted(failures.items()):
        record.add(Finding(Category.REQUEST_FAILED, f"api:{kind}", requests_made[kind], len(errors),
                           f"{len(errors)} of {requests_made[kind]} failed while another client removed images; "
                           f"first: {errors[0]}"))
    if after != image_id:
        record.add(Finding(Category.CONFIG, "inspect.Id", image_id, after, "the image changed under the other client"))
    assert not record.findings, "\n".join(f"{f.where}: {f.note}" for f in record.findings)
