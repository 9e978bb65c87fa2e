"""The harness's settings from the environment: every ``IMGHARNESS_*`` variable is read here, and only here.

    IMGHARNESS_HOME               where the farm, the corpus and the package cache live
                                  (default ``~/.cache/imgharness``); a second home is a second farm
    IMGHARNESS_PACKAGES           the engine package cache, which several homes may share
                                  (default ``<home>/packages``)
    IMGHARNESS_MAX_INFLATE_RATIO  how many times its size a compressed blob may inflate to
                                  (`harness.archive.compression`; 0: no limit)
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import UsageError

MAX_INFLATE_RATIO = "IMGHARNESS_MAX_INFLATE_RATIO"


def default_home() -> Path:
    return Path(os.environ.get("IMGHARNESS_HOME") or Path.home() / ".cache" / "imgharness")


def package_cache(home: Path) -> Path:
    """Where engine packages are cached: IMGHARNESS_PACKAGES lets several homes share one download."""
    return Path(os.environ.get("IMGHARNESS_PACKAGES") or home / "packages")


def max_inflate_ratio(default: int) -> int:
    """The ratio the user set in IMGHARNESS_MAX_INFLATE_RATIO, else `default`; a `UsageError` when it is no number."""
    value = os.environ.get(MAX_INFLATE_RATIO, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        raise UsageError(f"{MAX_INFLATE_RATIO}={value!r} is not a whole number") from None
