"""save-determinism: saving the same image again must give the same bytes.

Users diff, sign and cache `docker save` archives; an archive that changes on
every save breaks all three.  Each engine saves each image `--repeat` times,
each save in another wall-clock second (save-time mtimes must be able to
show); a bundle (several images, several tags each, as air-gapped sites move
them) is saved in one call `BUNDLE_SAVES` times, since an order that comes
out of a map changes from save to save at random.  Any difference is diffed
structurally so the failure names the entries and header fields that drift;
the share of saves that differ from the most common archive is recorded.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from harness.archive import read_archive
from harness.diff import diff_archives
from harness.engines.adapter import Engine
from harness.engines.received import Earlier
from harness.pytest_plugin import EngineSession, HarnessConfig, Record
from harness.report.diff_text import render_text
from harness.subjects import RunSubjects

pytestmark = pytest.mark.check("save-determinism")

BUNDLE_SAVES = 12
"""Saves of a bundle: a drift that shows in one save of three shows in 12 saves with probability
1 - (2/3)^12 - (1/3)^12 = 99.2 %."""


def _next_second() -> None:
    """Start the next save in another wall-clock second: drift from save-time mtimes must be able to show."""
    time.sleep(1.02 - (time.time() % 1.0))


def test_repeated_saves_are_byte_identical(engine: Engine, loaded_image: str, image: str, subjects: RunSubjects,
                                           harness_config: HarnessConfig, workdir: Path, record: Record) -> None:
    refs = subjects.tags(image)
    count = max(harness_config.repeat, BUNDLE_SAVES if len(refs) > 1 else 0)
    saves: list[tuple[Path, str]] = []
    seconds = []
    for i in range(count):
        if 0 < i < harness_config.repeat:
            _next_second()
        path = workdir / f"save-{i}.tar"
        start = time.monotonic()
        saves.append((path, subjects.saves.save(engine, refs, path, Earlier(*saves[0]) if saves else None)))
        seconds.append(time.monotonic() - start)
    record.measure("save_s", round(sum(seconds) / len(seconds), 3))
    record.measure("archive_bytes", saves[0][0].stat().st_size)
    record.measure("saves", count)
    record.measure("refs_per_save", len(refs))
    counts = Counter(digest for _, digest in saves)
    record.measure("distinct_archives", len(counts))
    record.measure("drift_rate", round(1 - counts.most_common(1)[0][1] / count, 3))
    first = next(((path, d) for path, d in saves[1:] if d != saves[0][1]), None)
    result = diff_archives(read_archive(saves[0][0]), read_archive(first[0])) if first else None
    if result is not None:
        record.add(*result.findings)
    assert result is None, (
        f"{len(counts)} different archives from {count} saves of {', '.join(refs)}; first vs the first that "
        f"differs:\n" + render_text(result, limit=15))


def test_saves_across_a_daemon_restart_are_byte_identical(engine: Engine, loaded_image: str, image: str,
                                                          subjects: RunSubjects, engine_session: EngineSession,
                                                          workdir: Path, record: Record) -> None:
    """Only where the harness manages the daemon: it never restarts an engine it did not start.  A bundle
    is saved `BUNDLE_SAVES` times on each side of the restart: one save on each side would see an order
    drawn at random as the same or not by chance, and the verdict would flip from run to run."""
    if not engine.spec.managed:
        pytest.skip("the harness restarts only daemons it started")
    refs = subjects.tags(image)
    count = BUNDLE_SAVES if len(refs) > 1 else 1
    before: list[tuple[Path, str]] = []
    for path in (workdir / f"before-{i}.tar" for i in range(count)):
        before.append((path, subjects.saves.save(engine, refs, path, Earlier(*before[0]) if before else None)))
    engine = engine_session.restart(engine)
    after = [(path, engine.save(refs, path, earlier=Earlier(*before[0])))
             for path in (workdir / f"after-{i}.tar" for i in range(count))]
    seen, after_digests = {digest for _, digest in before}, {digest for _, digest in after}
    record.measure("saves_around_restart", 2 * count)
    record.measure("distinct_before", len(seen))
    record.measure("distinct_after", len(after_digests))
    record.measure("after_unlike_any_before", sum(1 for _, digest in after if digest not in seen))
    changed = next(((path, d) for path, d in after if d not in seen), None)
    differs = changed or next(((path, d) for path, d in [*before, *after] if d != before[0][1]), None)
    if differs is None:
        return
    result = diff_archives(read_archive(before[0][0]), read_archive(differs[0]))
    record.add(*result.findings)
    what = "the archive changed across a daemon restart" if count == 1 else (
        f"{len(seen | after_digests)} different archives from {count} saves before and {count} after a "
        f"daemon restart of {', '.join(refs)}")
    pytest.fail(f"{what}:\n{render_text(result, limit=15)}", pytrace=False)
