"""delta: what an update between two close versions costs, at layer and at file granularity.

Two versions of one image differ in four small files of a 16 MiB layer.  Per
engine we save both and measure the bytes an update moves when whole layers are
the unit (every layer of v2 whose digest v1 lacks, as the engine stores it) and
when files are the unit (changed and added files), and whether saving the same
version twice gives the same archive digest — without that, no delta between two
saves can be trusted.  The costs are measurements for the report; the verdict is
the re-save digest.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.engines.adapter import Engine
from harness.subjects import RunSubjects
from harness.image import Archive, Layer
from harness.pytest_plugin import Record

pytestmark = pytest.mark.check("delta")


def _file_cost(old: Layer | None, new: Layer) -> int:
    """Bytes of files in `new` that are absent from, or different in, `old`."""
    before = {f.path: f.digest for f in old.files()} if old is not None else {}
    return sum(f.header.size for f in new.files() if before.get(f.path, "") != f.digest)


def costs(v1: Archive, v2: Archive) -> tuple[int, int, int]:
    """(layer-granularity bytes, file-granularity bytes, changed layers) of updating v1 to v2."""
    old = v1.images[0].layers
    have = {layer.digest for layer in old}
    layer_bytes = file_bytes = changed = 0
    for position, layer in enumerate(v2.images[0].layers):
        if layer.digest in have:
            continue
        changed += 1
        layer_bytes += layer.size
        file_bytes += _file_cost(old[position] if position < len(old) else None, layer)
    return layer_bytes, file_bytes, changed


def test_update_cost_and_stable_resave(engine: Engine, subjects: RunSubjects, workdir: Path,
                                       record: Record) -> None:
    record.image = "delta-v1→v2"
    saves = {}
    for name in ("delta-v1", "delta-v2"):
        path = workdir / f"{name}.tar"
        saves[name] = (path, engine.save(subjects.ensure(engine, name), path))
    time.sleep(1.02 - time.time() % 1.0)  # another wall-clock second: save-time mtimes must be able to show
    again = workdir / "delta-v2-again.tar"
    digest_again = engine.save(subjects.tag("delta-v2"), again)
    v1 = record.read(saves["delta-v1"][0], "save of delta-v1")
    v2 = record.read(saves["delta-v2"][0], "save of delta-v2")
    layer_bytes, file_bytes, changed = costs(v1, v2)
    record.measure("update_layer_bytes", layer_bytes)
    record.measure("update_file_bytes", file_bytes)
    record.measure("changed_layers", changed)
    record.measure("layer_to_file_ratio", round(layer_bytes / file_bytes, 1) if file_bytes else None)
    record.measure("archive_bytes_v2", saves["delta-v2"][0].stat().st_size)
    stable = digest_again == saves["delta-v2"][1]
    record.measure("resave_keeps_digest", stable)
    assert stable, (f"saving the same version twice changed the archive digest "
                    f"({saves['delta-v2'][1][:19]} → {digest_again[:19]}): a delta between saves cannot be trusted")
