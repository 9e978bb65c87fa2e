"""The tools a user would otherwise reach for, provisioned by the benchmark itself.

diffoscope comes from Debian (``apt-get install diffoscope``, without the
hundred recommended format tools: tar and JSON are all it needs here);
crane from Debian sid, unpacked by the harness's own package machinery into
the shared package cache, as the engine farm gets its engines.  A peer that
cannot be had is skipped with the reason, never silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.settings import default_home, package_cache
from harness.engines.packages import DebianSource, DebPackage
from harness.errors import HarnessError


@dataclass(frozen=True)
class Peer:
    """A peer's command, or why there is none."""

    name: str
    binary: str | None
    reason: str = ""


def diffoscope() -> Peer:
    found = shutil.which("diffoscope")
    if found:
        return Peer("diffoscope", found)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return Peer("diffoscope", None, "not installed, and apt-get needs root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", "diffoscope"]
    proc = subprocess.run(install, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env)
        proc = subprocess.run(install, capture_output=True, text=True, env=env)
    found = shutil.which("diffoscope")
    if found is None:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return Peer("diffoscope", None, f"apt-get install diffoscope failed: {last}")
    return Peer("diffoscope", found)


def crane() -> Peer:
    source = DebianSource("crane", (DebPackage("crane", "sid"),))
    try:
        prefix = source.provision(package_cache(default_home()))
    except HarnessError as e:
        return Peer("crane", None, f"cannot provision crane from Debian sid: {e}")
    binary = Path(prefix, "usr", "bin", "crane")
    if not binary.is_file():
        return Peer("crane", None, f"no usr/bin/crane in {prefix}")
    return Peer("crane", str(binary))
