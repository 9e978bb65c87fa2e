"""A remote engine over `tcp://` with TLS: verified by default, and no key material in reports or logs.

A real dockerd (the farm's Docker 28 binaries) listens on 127.0.0.1 with a
server certificate from a CA made here; the run reaches it with client
certificates given inline in the `--engine` URL.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from harness.engines import daemon
from tests.remotekit import dockerd_launch, free_port, run_round_trip

pytestmark = pytest.mark.engines  # a dockerd of its own behind TLS


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _pki(d: Path, name: str) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all under `d` prefixed `name`."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}-ca",
             "-keyout", f"{name}-ca-key.pem", "-out", f"{name}-ca.pem", cwd=d)
    for role, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (d / f"{role}.ext").write_text(ext + "\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={role}", "-keyout",
                 f"{name}-{role}-key.pem", "-out", f"{role}.csr", cwd=d)
        _openssl("x509", "-req", "-in", f"{role}.csr", "-CA", f"{name}-ca.pem", "-CAkey", f"{name}-ca-key.pem",
                 "-CAcreateserial", "-days", "2", "-extfile", f"{role}.ext", "-out", f"{name}-{role}.pem", cwd=d)


@pytest.fixture(scope="module")
def tls_engine() -> Iterator[tuple[str, Path]]:
    """(tcp endpoint, pki dir) of a dockerd that demands client certificates from our CA."""
    d = Path(tempfile.mkdtemp(prefix="imgh-tls-", dir="/tmp"))
    _pki(d, "good")
    _pki(d, "other")
    port = free_port()
    pid = daemon.start(dockerd_launch(
        d, "-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(d / "good-ca.pem"),
        "--tlscert", str(d / "good-server.pem"), "--tlskey", str(d / "good-server-key.pem")))
    started = daemon.start_time(pid)
    try:
        deadline = time.monotonic() + 60
        while not (d / "docker.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        yield f"tcp://127.0.0.1:{port}", d
    finally:
        daemon.stop(pid, started=started)
        subprocess.run(["rm", "-rf", str(d)])


def test_tls_engine_is_tested_and_no_key_material_leaks(tls_engine: tuple[str, Path], tmp_path: Path) -> None:
    endpoint, pki = tls_engine
    url = (f"remote={endpoint}?ca={pki / 'good-ca.pem'}&cert={pki / 'good-client.pem'}"
           f"&key={pki / 'good-client-key.pem'}")
    proc = run_round_trip(url, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = (tmp_path / "report.json").read_text()
    assert '"outcome": "pass"' in report
    secret = (pki / "good-client-key.pem").read_text().splitlines()[1]  # a line of the key's body
    for text in (report, (tmp_path / "junit.xml").read_text(), proc.stdout, proc.stderr):
        assert secret not in text and "PRIVATE KEY" not in text


def test_verification_is_on_by_default(tls_engine: tuple[str, Path], tmp_path: Path) -> None:
    """A client that trusts another CA must not talk to the engine: the engine's tests error, none pass."""
    endpoint, pki = tls_engine
    url = (f"{endpoint}?ca={pki / 'other-ca.pem'}&cert={pki / 'good-client.pem'}"
           f"&key={pki / 'good-client-key.pem'}")
    proc = run_round_trip(url, tmp_path)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = (tmp_path / "report.json").read_text()
    assert '"outcome": "error"' in report and '"outcome": "pass"' not in report
    assert "Traceback" not in proc.stderr
