"""The local farm against real daemons: identities, the docker CLI's agreement, and a clean `down`
(emulated arm64 daemons and podman 5 from the package cache included)."""

from __future__ import annotations

import json
import shutil
import tempfile
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.engines import daemon
from harness.engines.adapter import Engine
from harness.engines.farm import Farm
from harness.settings import default_home, package_cache


def _cli(endpoint: str, *args: str) -> str:
    proc = subprocess.run(["docker", "-H", endpoint, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_status_json_and_docker_cli_agree_with_the_engine_id(engine: Engine) -> None:
    """`engines status --format json` lists the engine healthy; `docker version`/`info` say the same id."""
    out = subprocess.run([sys.executable, "-m", "harness", "engines", "status", "--format", "json"],
                         capture_output=True, text=True, timeout=120)
    entries = {e["id"]: e for e in json.loads(out.stdout)}
    if engine.spec.managed:
        entry = entries[engine.id]
        assert entry["healthy"] is True
        assert entry["endpoint"] == engine.spec.endpoint
        assert daemon.alive(entry["pid"])
        assert {"id", "endpoint", "version", "storage", "pid", "healthy"} <= entry.keys()

    version = _cli(engine.spec.endpoint, "version", "--format", "{{json .Server}}")
    server = json.loads(version)
    names = [c["Name"] for c in server.get("Components") or []]
    kind = "podman" if any("Podman" in n for n in names) else "docker"
    raw = server["Version"] if kind == "docker" else next(
        c["Version"] for c in server["Components"] if "Podman" in c["Name"])
    driver = _cli(engine.spec.endpoint, "info", "--format", "{{.Driver}}")
    status = _cli(engine.spec.endpoint, "info", "--format", "{{json .DriverStatus}}")
    storage = "containerd" if "io.containerd.snapshotter.v1" in status else driver
    machine = _cli(engine.spec.endpoint, "info", "--format", "{{.Architecture}}")
    # Docker says `uname -m` of its (emulated) kernel view, podman Go's name for it
    suffix = {"x86_64": "", "amd64": "", "aarch64": "-arm64", "arm64": "-arm64"}[machine]
    cli_id = f"{kind}-{re.match(r'[0-9.]+', raw).group(0).rstrip('.')}-{storage}{suffix}"  # type: ignore[union-attr]
    assert cli_id == engine.id


def _processes_naming(text: str) -> list[int]:
    """Pids whose command line mentions `text` (to find leftovers of one farm home; nothing is signalled)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.engines  # a farm of its own
@pytest.mark.parametrize(("engine_id", "machine", "tree_size"), [
    ("docker-28.5.2-containerd", "x86_64", 2),        # dockerd and its own containerd
    ("docker-28.5.2-containerd-arm64", "aarch64", 2),  # both under qemu-aarch64-static
    ("podman-5.4.2-overlay", "amd64", 1),              # podman from the package cache, patched onto its sysroot
])
def test_down_stops_exactly_the_processes_it_started(engine_id: str, machine: str, tree_size: int) -> None:
    """A second farm in its own home: the engine is what it says (`docker info`), and `down` ends its daemon
    and the daemon's children (the emulator processes of an arm64 daemon too), nothing else."""
    shared = Farm()
    before = {s.id: s.pid for s in shared.status() if s.healthy}
    home = Path(tempfile.mkdtemp(prefix="imgh-", dir="/tmp"))  # short: unix socket paths stop at 108 bytes
    farm = Farm(home=home, cache=package_cache(default_home()))
    [st] = farm.up([engine_id])
    assert st.healthy, st.error
    assert st.pid is not None
    assert _cli(st.endpoint, "info", "--format", "{{.Architecture}}") == machine
    tree = [st.pid, *daemon.descendants(st.pid)]
    assert len(tree) >= tree_size, f"expected the daemon and its helpers, found {tree}"
    if machine == "aarch64":  # every process of the tree is the emulator running an arm64 binary
        assert all("qemu-aarch64-static" in Path(f"/proc/{p}/exe").resolve().name for p in tree)
    assert farm.down([engine_id]) == [engine_id]
    assert [p for p in tree if daemon.alive(p)] == []
    assert [p for p in _processes_naming(str(home)) if daemon.alive(p)] == []
    assert farm.status([engine_id])[0].pid is None
    shutil.rmtree(home, ignore_errors=True)
    after = {s.id: s.pid for s in shared.status() if s.healthy}
    assert {k: v for k, v in after.items() if k in before} == before, "another farm's daemons were touched"
