"""One module per CLI subcommand; each exposes `register(subparsers)` that sets `func` on its parser.

Helpers the subcommands share live here (this package's modules are all commands).
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import UsageError


def local_archive(source: str, workdir: Path) -> Path:
    """`source` itself when it is a file, else ``ENGINE_ID:IMAGE_REF`` saved into `workdir`."""
    path = Path(source)
    if path.exists():
        return path
    if ":" not in source:
        raise UsageError(f"{source}: no such file", hint="give an archive path or ENGINE_ID:IMAGE_REF")
    try:
        from harness.engines.image_refs import materialize
    except ModuleNotFoundError as e:
        if e.name not in ("harness.engines", "harness.engines.image_refs"):
            raise
        raise UsageError(f"{source}: no such file, and saving from engines is not available in this build") from e
    workdir.mkdir(parents=True, exist_ok=True)
    return Path(materialize(source, workdir))
