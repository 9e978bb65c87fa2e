"""The fault proxy the pull-resume check stands on: cuts, refusals, held transfers, and what it records."""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from harness.faults import FaultPlan, FaultProxy

BLOB = bytes(range(256)) * 4096  # 1 MiB
DIGEST = "sha256:" + "ab" * 32
PATH = f"/v2/r/blobs/{DIGEST}"


class _Registry(http.server.BaseHTTPRequestHandler):
    """Serves BLOB at PATH, honouring ``Range: bytes=N-`` as a registry does."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        start = int(self.headers.get("Range", "bytes=0-")[len("bytes="):].split("-")[0] or 0)
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(BLOB) - start))
        self.end_headers()
        self.wfile.write(BLOB[start:])


@pytest.fixture
def upstream() -> Iterator[tuple[str, int]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _get(port: int, start: int = 0, timeout: float = 10) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", PATH, headers={"Range": f"bytes={start}-"} if start else {})
        resp = conn.getresponse()
        data = b""
        try:
            while chunk := resp.read(65536):
                data += chunk
        except (http.client.IncompleteRead, ConnectionError) as e:
            data += getattr(e, "partial", b"")
        return resp.status, data
    finally:
        conn.close()


def test_a_cut_blob_is_refused_until_healed_and_every_request_is_recorded(upstream: tuple[str, int]) -> None:
    plan = FaultPlan(DIGEST, cut_after=300_000)
    with FaultProxy(upstream, plan) as proxy:
        status, data = _get(proxy.port)
        assert (status, data) == (200, BLOB[:300_000])
        assert _get(proxy.port, start=len(data))[0] == 503
        plan.heal()
        status, rest = _get(proxy.port, start=len(data))
        assert (status, data + rest) == (206, BLOB)
    assert [(r.status, r.bytes_sent, r.cut, r.range) for r in plan.blob_requests()] == [
        (200, 300_000, True, None), (503, 0, False, "bytes=300000-"), (206, len(BLOB) - 300_000, False, "bytes=300000-")]


def test_a_held_transfer_ends_when_the_client_hangs_up(upstream: tuple[str, int]) -> None:
    plan = FaultPlan(DIGEST, cut_after=200_000, stall=True)
    with FaultProxy(upstream, plan) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port))
        sock.sendall(f"GET {PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert plan.stalled.wait(10)
        received = b""
        sock.settimeout(0.5)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass  # held: nothing more comes, and the connection stays open
        assert received.endswith(BLOB[:200_000][-1000:]) and not plan.abandoned.is_set()
        sock.close()
        assert plan.abandoned.wait(10)
        plan.settle()
    [held] = plan.blob_requests()
    assert (held.bytes_sent, held.cut, held.abandoned) == (200_000, True, True)


def test_healing_cuts_a_held_transfer_the_client_kept_open(upstream: tuple[str, int]) -> None:
    plan = FaultPlan(DIGEST, cut_after=100_000, stall=True)
    with FaultProxy(upstream, plan) as proxy:
        result: list[tuple[int, bytes]] = []
        reader = threading.Thread(target=lambda: result.append(_get(proxy.port, timeout=30)))
        reader.start()
        assert plan.stalled.wait(10)
        time.sleep(0.5)
        assert reader.is_alive()  # still held
        plan.heal()
        reader.join(10)
        plan.settle()
    assert result == [(200, BLOB[:100_000])]
    [held] = plan.blob_requests()
    assert (held.cut, held.abandoned) == (True, False)
