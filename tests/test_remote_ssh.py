"""A remote engine over `ssh://`: the suites reach a real dockerd through a real sshd, host key verified.

sshd comes from Debian 12's openssh-server, unpacked like the engines (no
system service), and listens on 127.0.0.1 with a host key made here. The
client key's ``command=`` runs ``docker system dial-stdio`` against a dockerd
(the farm's Docker 28 binaries) on a socket of its own, which is what a remote
host does when ``DOCKER_HOST`` points there.  The ssh binary reads its keys
and known hosts from a config file of this test, given to it by a wrapper
first on PATH (users keep theirs in ~/.ssh/config).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from harness.engines import daemon
from harness.settings import default_home, package_cache
from harness.engines.packages import DebianSource, DebPackage
from tests.remotekit import dockerd_launch, free_port, run_round_trip

pytestmark = pytest.mark.engines  # a dockerd of its own behind sshd

SSHD = DebianSource("openssh-server-bookworm", (DebPackage("openssh-server", "bookworm"),
                                                 DebPackage("libwrap0", "bookworm")))
PRIVSEP = Path("/run/sshd")  # compiled into Debian's sshd


def _wait_for(check: object, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture(scope="module")
def ssh_engine() -> Iterator[tuple[str, Path]]:
    """(ssh endpoint, dir with the client's ssh wrapper and config) of a dockerd behind sshd."""
    d = Path(tempfile.mkdtemp(prefix="imgh-ssh-", dir="/tmp"))
    sshd_prefix = SSHD.provision(package_cache(default_home()))
    sock = d / "docker.sock"
    started: list[tuple[int, int | None]] = []

    def launch(launch: daemon.Launch) -> None:
        pid = daemon.start(launch)
        started.append((pid, daemon.start_time(pid)))

    launch(dockerd_launch(d))
    made_privsep = not PRIVSEP.exists()
    try:
        _wait_for(sock.exists, "dockerd's socket")
        port = free_port()
        host_key = _keygen(d / "host_ed25519")
        client_key = _keygen(d / "client_ed25519")
        (d / "authorized_keys").write_text(
            f'command="DOCKER_HOST=unix://{sock} exec docker system dial-stdio",no-pty,no-port-forwarding '
            f"{client_key}\n")
        (d / "sshd_config").write_text("\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_ed25519'}", f"PidFile {d / 'sshd.pid'}",
            f"AuthorizedKeysFile {d / 'authorized_keys'}", "StrictModes no", "UsePAM no",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
            "LogLevel ERROR", ""]))
        PRIVSEP.mkdir(mode=0o755, exist_ok=True)
        lib = ":".join(str(sshd_prefix / p) for p in ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"))
        sshd_env = dict(os.environ, LD_LIBRARY_PATH=lib)
        launch(daemon.Launch((str(sshd_prefix / "usr/sbin/sshd"), "-D", "-e", "-f", str(d / "sshd_config")),
                             sshd_env, d / "sshd.log", d))
        (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key}\n")
        _write_client(d, d / "known_hosts")
        try:
            _wait_for(lambda: _listening(port), "sshd listening")
        except TimeoutError:
            pytest.fail(f"sshd did not start: {(d / 'sshd.log').read_text()[-500:]!r}", pytrace=False)
        yield f"ssh://root@127.0.0.1:{port}", d
    finally:
        for pid, at in reversed(started):
            daemon.stop(pid, started=at)
        if made_privsep:
            PRIVSEP.rmdir()
        subprocess.run(["rm", "-rf", str(d)])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _write_client(d: Path, known_hosts: Path) -> None:
    """`d/bin/ssh`: the ssh binary with this test's config (keys, known hosts, strict host key checking)."""
    (d / "ssh_config").write_text("\n".join([
        "Host 127.0.0.1", f"  IdentityFile {d / 'client_ed25519'}", "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {known_hosts}", "  StrictHostKeyChecking yes", "  BatchMode yes", ""]))
    (d / "bin").mkdir(exist_ok=True)
    wrapper = d / "bin" / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {d / "ssh_config"} "$@"\n')
    wrapper.chmod(0o755)


def _run(endpoint: str, report: Path, client: Path) -> subprocess.CompletedProcess[str]:
    return run_round_trip(endpoint, report, {"PATH": f"{client / 'bin'}:{os.environ['PATH']}"})


def test_an_engine_over_ssh_is_tested(ssh_engine: tuple[str, Path], tmp_path: Path) -> None:
    endpoint, client = ssh_engine
    proc = _run(endpoint, tmp_path, client)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    [engine] = report["engines"]
    assert engine["endpoint"] == endpoint and engine["version"] == "28.5.2" and engine["storage"] == "overlay2"
    assert [r["outcome"] for r in report["results"]] == ["pass"]


def test_an_unknown_host_key_is_refused(ssh_engine: tuple[str, Path], tmp_path: Path) -> None:
    """The engine's host key must match the known one: with another key on record, nothing passes."""
    endpoint, client = ssh_engine
    wrong = tmp_path / "client"
    wrong.mkdir()
    (wrong / "client_ed25519").write_bytes((client / "client_ed25519").read_bytes())
    (wrong / "client_ed25519").chmod(0o600)
    port = endpoint.rsplit(":", 1)[1]
    (wrong / "known_hosts").write_text(f"[127.0.0.1]:{port} {_keygen(tmp_path / 'impostor')}\n")
    _write_client(wrong, wrong / "known_hosts")
    proc = _run(endpoint, tmp_path / "report", wrong)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["results"] and {r["outcome"] for r in report["results"]} == {"error"}
    assert "Traceback" not in proc.stderr
