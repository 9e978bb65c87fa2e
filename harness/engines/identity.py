"""Who an engine is and what it can do, read from the engine itself.

The id `<engine>-<version>-<storage>` (e.g. `docker-28.5.2-containerd`) comes from
`/version` and `/info`; capabilities such as the containerd image store are
detected from what `docker info` reports, never guessed from a version string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

SNAPSHOTTER_DRIVER_TYPE = "io.containerd.snapshotter.v1"


@dataclass(frozen=True)
class Identity:
    """An engine's self-description, as far as image behaviour depends on it."""

    engine: str          # docker | podman
    version: str         # upstream version, distribution suffixes stripped (20.10.24, not 20.10.24+dfsg1)
    storage: str         # overlay2, overlay, vfs … or "containerd" for the containerd image store
    api_version: str
    os: str
    arch: str
    raw_version: str     # as the engine reports it
    driver: str          # the storage driver as reported, e.g. overlayfs under the containerd store

    @property
    def id(self) -> str:
        return f"{self.engine}-{self.version}-{self.storage}"

    @property
    def containerd_store(self) -> bool:
        return self.storage == "containerd"


def _driver_status(info: Mapping[str, Any]) -> dict[str, str]:
    status = info.get("DriverStatus") or []
    return {str(pair[0]): str(pair[1]) for pair in status if isinstance(pair, (list, tuple)) and len(pair) == 2}


def identify(version: Mapping[str, Any], info: Mapping[str, Any]) -> Identity:
    """Build the identity from the `/version` and `/info` API answers."""
    components = {c.get("Name", ""): c for c in version.get("Components") or [] if isinstance(c, dict)}
    engine = "podman" if any("podman" in name.lower() for name in components) else "docker"
    raw = str(version.get("Version", ""))
    if engine == "podman":
        raw = str(components.get("Podman Engine", {}).get("Version", raw))
    m = re.match(r"v?(\d+(?:\.\d+)*)", raw)
    driver = str(info.get("Driver", "unknown"))
    storage = "containerd" if _driver_status(info).get("driver-type") == SNAPSHOTTER_DRIVER_TYPE else driver
    return Identity(
        engine=engine,
        version=m.group(1) if m else raw or "unknown",
        storage=storage,
        api_version=str(version.get("ApiVersion", "")),
        os=str(version.get("Os", info.get("OSType", ""))),
        arch=str(version.get("Arch", info.get("Architecture", ""))),
        raw_version=raw,
        driver=driver,
    )
