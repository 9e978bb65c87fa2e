"""Progress lines on stderr for long work: farm start, saves of large images, the suite matrix.

One switch for the process: the CLI's global ``-q`` calls `set_quiet`; the rest
calls `say`.  Lines go to stderr so stdout stays the command's answer (a path, a
verdict) for scripts.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def say(message: str) -> None:
    if not _quiet:
        print(f"· {message}", file=sys.stderr, flush=True)


@contextmanager
def watching(path: Path, what: str, every: float = 5.0) -> Iterator[None]:
    """While the block runs (a save streaming into `path`), say every `every` seconds how far it got;
    a block done sooner says nothing."""
    done = threading.Event()

    def tick() -> None:
        while not done.wait(every):
            size = path.stat().st_size if path.exists() else 0
            say(f"{what}: {size / (1 << 20):.0f} MiB so far")

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()

