"""Who an engine is and what it can do, read from the engine itself.

The id `<engine>-<version>-<storage>` (e.g. `docker-28.5.2-containerd`) comes from
`/version` and `/info`; capabilities such as the containerd image store are
detected from what `docker info` reports, never guessed from a version string.
An engine on any platform but linux/amd64 (the platform of every id before
arm64 engines joined) carries it at the end: `docker-28.5.2-containerd-arm64`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

SNAPSHOTTER_DRIVER_TYPE = "io.containerd.snapshotter.v1"
UNSUFFIXED_PLATFORM = "linux/amd64"
# `uname -m` (what /info's Architecture says) → the OCI architecture (what /version's Arch says, GOARCH)
UNAME_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
              "s390x": "s390x", "riscv64": "riscv64", "armv6l": "arm"}
UNAME_VARIANT = {"armv7l": "v7", "armv6l": "v6"}


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
    variant: str = ""    # the CPU variant where the engine names one (arm/v7); empty otherwise

    @property
    def platform(self) -> str:
        """The engine's own platform as OCI writes it: ``linux/arm64``, ``linux/arm/v7``."""
        return "/".join(p for p in (self.os, self.arch, self.variant) if p)

    @property
    def id(self) -> str:
        base = f"{self.engine}-{self.version}-{self.storage}"
        if not self.arch or self.platform == UNSUFFIXED_PLATFORM:
            return base
        return f"{base}-{'-'.join(p for p in (self.os if self.os != 'linux' else '', self.arch, self.variant) if p)}"

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
        os=str(version.get("Os") or info.get("OSType") or ""),
        arch=str(version.get("Arch") or UNAME_ARCH.get(str(info.get("Architecture", "")), info.get("Architecture") or "")),
        raw_version=raw,
        driver=driver,
        variant=UNAME_VARIANT.get(str(info.get("Architecture", "")), ""),
    )
