"""`ENGINE_ID:IMAGE_REF` sources: an image saved on the fly from an engine, for diff, inspect and reference.

The engine part is a farm engine id (`docker-28.5.2-containerd`); the image
reference is everything after the first colon (it may hold a registry port and
a tag).  The archive is streamed to a file in the caller's work directory.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness import progress
from harness.engines.farm import Farm
from harness.errors import UsageError


def split_source(source: str) -> tuple[str, str]:
    engine_id, _, ref = source.partition(":")
    if not engine_id or not ref:
        raise UsageError(f"{source}: expected an archive path or ENGINE_ID:IMAGE_REF")
    return engine_id, ref


def materialize(source: str, workdir: Path) -> Path:
    """Save `source` from its engine into `workdir`; returns the archive's path."""
    engine_id, ref = split_source(source)
    farm = Farm()
    if engine_id not in farm.engines:
        raise UsageError(f"{source}: no such file, and {engine_id!r} is no farm engine",
                         hint=f"farm engines: {', '.join(farm.engines)}")
    engine = farm.running(engine_id)
    try:
        out = workdir / (re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{engine_id}_{ref}") + ".tar")
        with progress.watching(out, f"saving {source}"):  # a large image takes a while
            engine.save(ref, out)
        return out
    finally:
        engine.close()
