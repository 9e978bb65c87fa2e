"""The first save of each image on each engine in a run, kept for the checks that save it again.

Several checks save the same image from the same engine (save-determinism,
its restart check, round-trip, reference-conformance), each for its own
verdict.  A save received with an earlier one to compare against is neither
hashed nor written while it repeats it (`received`): 1.8 s of CPU per GiB
here instead of 3.0-3.8 s.  So the first save of `refs` on an engine is kept
(a hard link, no copy) under the run's directory, and any later save of the
same refs on that engine, in any check and any xdist worker, is compared with
it.  Which save is kept changes no verdict: a save that differs from it is
written whole and hashed, as without one.

A kept save is published by renaming a directory into place, so a worker
never sees half of one; it is kept only while the disk keeps `KEEP_FREE`
bytes free besides, and the process that kept it removes it when its session
ends (a worker that finds it gone meanwhile saves as without it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from harness.engines.received import Earlier

if TYPE_CHECKING:
    from harness.engines.adapter import Engine

KEEP_FREE = 8 << 30


class KeptSaves:
    """Saves made through `save`, the first of each (engine, refs) kept under `root`."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._mine: list[Path] = []

    def save(self, engine: Engine, refs: list[str], dest: Path, earlier: Earlier | None = None) -> str:
        """`engine.save(refs, dest)`, compared as it arrives with `earlier`, else with the save of `refs` on
        `engine` kept in this run; returns its digest."""
        slot = self._root / hashlib.sha256("\0".join([engine.id, *refs]).encode()).hexdigest()[:24]
        digest = engine.save(refs, dest, earlier=earlier or _kept(slot))
        if not slot.exists():
            self._keep(slot, dest, digest)
        return digest

    def _keep(self, slot: Path, dest: Path, digest: str) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        if shutil.disk_usage(self._root).free - dest.stat().st_size < KEEP_FREE:
            return
        staging = self._root / f".{slot.name}-{os.getpid()}"
        staging.mkdir()
        try:
            os.link(dest, staging / (digest.removeprefix("sha256:") + ".tar"))
            os.rename(staging, slot)  # fails when another process kept one first
            self._mine.append(slot)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)

    def forget(self) -> None:
        """Remove the saves this process kept."""
        for slot in self._mine:
            shutil.rmtree(slot, ignore_errors=True)
        self._mine.clear()


def _kept(slot: Path) -> Earlier | None:
    for path in slot.glob("*.tar"):
        return Earlier(path, "sha256:" + path.stem)
    return None
