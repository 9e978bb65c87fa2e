"""save-determinism: saving the same image again must give the same bytes.

Users diff, sign and cache `docker save` archives; an archive that changes on
every save breaks all three.  Each engine saves each corpus image `--repeat`
times; any difference is diffed structurally so the failure names the entries
and header fields that drift.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.archive import read_archive
from harness.diff import diff_archives
from harness.engines.adapter import Engine
from harness.pytest_plugin import EngineSession, HarnessConfig, Record
from harness.report.diff_text import render_text

pytestmark = pytest.mark.check("save-determinism")


def _next_second() -> None:
    """Start the next save in another wall-clock second: drift from save-time mtimes must be able to show."""
    time.sleep(1.02 - (time.time() % 1.0))


def test_repeated_saves_are_byte_identical(engine: Engine, loaded_image: str, harness_config: HarnessConfig,
                                           workdir: Path, record: Record) -> None:
    saves: list[tuple[Path, str]] = []
    seconds = []
    for i in range(harness_config.repeat):
        if i:
            _next_second()
        path = workdir / f"save-{i}.tar"
        start = time.monotonic()
        saves.append((path, engine.save(loaded_image, path)))
        seconds.append(time.monotonic() - start)
    record.measure("save_s", round(sum(seconds) / len(seconds), 3))
    record.measure("archive_bytes", saves[0][0].stat().st_size)
    distinct = {digest for _, digest in saves}
    record.measure("distinct_archives", len(distinct))
    results = []
    for path, digest in saves[1:]:
        if digest != saves[0][1]:
            results.append(diff_archives(read_archive(saves[0][0]), read_archive(path)))
            record.add(*results[-1].findings)
    assert len(distinct) == 1, (
        f"{len(distinct)} different archives from {len(saves)} saves of {loaded_image}; first vs second:\n"
        + render_text(results[0], limit=15))


def test_saves_across_a_daemon_restart_are_byte_identical(engine: Engine, loaded_image: str,
                                                          engine_session: EngineSession, workdir: Path,
                                                          record: Record) -> None:
    """Only where the harness manages the daemon: it never restarts an engine it did not start."""
    if not engine.spec.managed:
        pytest.skip("the harness restarts only daemons it started")
    before, after = workdir / "before.tar", workdir / "after.tar"
    digest_before = engine.save(loaded_image, before)
    engine = engine_session.restart(engine)
    digest_after = engine.save(loaded_image, after)
    if digest_before != digest_after:
        result = diff_archives(read_archive(before), read_archive(after))
        record.add(*result.findings)
        pytest.fail(f"the archive changed across a daemon restart:\n{render_text(result, limit=15)}", pytrace=False)
