"""Another client at work on the same engine, for the concurrent-clients check: loading and removing
throwaway images in a loop.

CI jobs share daemons.  What one job reads (a listing, an inspect) must not break
because another job removes its own, unrelated images.  `Churn` is that other
job: over its own connection it loads an image of fresh content, removes the
previous one, and again, with every tag inside the run's namespace, so the
run's clean-up covers whatever it leaves.
"""

from __future__ import annotations

import io
import os
import tarfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Callable

from harness.engines.adapter import Engine
from harness.engines.spec import EngineSpec
from harness.errors import HarnessError
from harness.reference.build import build_from_layers


class Churn:
    """Background load/remove cycles on an engine; `cycles` counts the completed ones."""

    def __init__(self, spec: EngineSpec, namespace: str, workdir: Path) -> None:
        self._engine = Engine(spec, timeout=120)
        self._repo = f"{namespace}/churn-{os.urandom(4).hex()}"
        self._workdir = workdir
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="churn", daemon=True)
        self.cycles = 0
        self.error: HarnessError | None = None

    def __enter__(self) -> Churn:
        self._workdir.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=180)
        for tag in range(max(0, self.cycles - 1), self.cycles + 1):
            self._engine.remove_quietly(f"{self._repo}:{tag}")  # never created, or already gone
        self._engine.close()

    def _run(self) -> None:
        archive = self._workdir / f"{self._repo.rsplit('/', 1)[1]}.tar"
        try:
            while not self._stop.is_set():
                build_from_layers([_fresh_layer()], archive, tag=f"{self._repo}:{self.cycles}", epoch=0)
                self._engine.load(archive)
                if self.cycles:
                    self._engine.remove(f"{self._repo}:{self.cycles - 1}")
                self.cycles += 1
        except HarnessError as e:
            self.error = e
        finally:
            archive.unlink(missing_ok=True)


def _fresh_layer() -> Callable[[tarfile.TarFile], None]:
    """A layer no other image shares, so removing its image frees content the engine must collect."""
    data = os.urandom(4096)

    def write(tf: tarfile.TarFile) -> None:  # called twice (measured, then written): same bytes each time
        info = tarfile.TarInfo("churn.bin")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return write
