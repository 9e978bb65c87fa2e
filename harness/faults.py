"""A fault-injecting HTTP proxy of our own, in front of the registry, on 127.0.0.1.

It cuts the connection after K bytes of one blob, then keeps answering 503 for
that blob while `failing` is set (so the engine's own in-pull retries fail too and
the pull errors out), and records every request: method, path, Range header,
status and bytes sent.  The record is what the pull-resume check measures.
With `stall`, it holds the blob's connection open after K bytes instead, sending
nothing, until the engine hangs up (`abandoned`: the pull was cancelled) or the
plan is released: the state an engine is in when its client gives up mid-layer.

Docker engines try TLS first on a `localhost:PORT` registry and fall back to HTTP
only when the server answers a TLS ClientHello with an HTTP status line, as Go's
server does; the proxy does that (first byte 0x16 → ``HTTP/1.0 400``).  Repeated
request headers (several ``Accept``) are joined, or the registry answers
"manifest unknown".
"""

from __future__ import annotations

import http.client
import select
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

RELAY_CHUNK = 64 * 1024  # what the proxy passes on per read
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


@dataclass
class Request:
    """One request the proxy saw."""

    method: str
    path: str
    range: str | None
    status: int
    bytes_sent: int
    cut: bool = False
    abandoned: bool = False  # a stalled transfer the engine hung up on
    at: float = field(default_factory=time.monotonic)


class FaultPlan:
    """What to break: the blob `digest` is cut (or, with `stall`, held) after `cut_after` bytes, then refused
    while `failing`."""

    def __init__(self, digest: str | None = None, cut_after: int = 0, *, stall: bool = False) -> None:
        self.digest = digest
        self.cut_after = cut_after
        self.stall = stall
        self.failing = digest is not None
        self.cuts = 0
        self.stalled = threading.Event()    # a transfer of the blob is being held
        self.abandoned = threading.Event()  # the engine hung up on a held transfer
        self._released = threading.Event()
        self.lock = threading.Lock()
        self.requests: list[Request] = []

    def heal(self) -> None:
        """From now on the blob is served whole; a transfer still held is cut."""
        self.failing = False
        self._released.set()

    def settle(self, timeout: float = 10) -> None:
        """Wait until every cut or held transfer has ended and been recorded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if sum(r.cut for r in self.requests) >= self.cuts:
                    return
            time.sleep(0.05)

    def hold(self, conn: socket.socket) -> bool:
        """Send nothing on `conn` until the engine hangs up (True) or the plan is healed (False)."""
        self.stalled.set()
        while not self._released.is_set():
            readable, _, _ = select.select([conn], [], [], 0.2)
            if readable:
                try:
                    gone = conn.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    gone = True
                if gone:
                    self.abandoned.set()
                    return True
                time.sleep(0.2)  # bytes from the engine while held: not a hang-up, keep holding
        return False

    def record(self, req: Request) -> None:
        with self.lock:
            self.requests.append(req)

    def blob_requests(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if self.digest and r.path.endswith(f"/blobs/{self.digest}")]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: the record is the log
        pass

    def _forward(self) -> None:
        plan = self.server.plan
        is_target = bool(plan.digest) and self.path.endswith(f"/blobs/{plan.digest}") and self.command == "GET"
        if is_target and plan.failing and plan.cuts > 0:
            self._refuse(503)
            return
        headers: dict[str, str] = {}
        for key in self.headers.keys():
            if key.lower() in HOP_BY_HOP or key.lower() == "host":
                continue
            headers[key] = ", ".join(self.headers.get_all(key) or [])
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            resp = upstream.getresponse()
            self._relay(resp, cut_at=plan.cut_after if is_target and plan.failing else None)
        finally:
            upstream.close()

    def _relay(self, resp: http.client.HTTPResponse, cut_at: int | None) -> None:
        plan = self.server.plan
        self.send_response_only(resp.status, resp.reason)
        chunked = resp.getheader("Transfer-Encoding", "").lower() == "chunked"
        for key, value in resp.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        cut = False
        if self.command != "HEAD":
            while True:
                data = resp.read(RELAY_CHUNK)
                if not data:
                    break
                if cut_at is not None and sent + len(data) >= cut_at:
                    data = data[: cut_at - sent]
                    cut = True
                if chunked:
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                else:
                    self.wfile.write(data)
                sent += len(data)
                if cut:
                    break
            if chunked and not cut:
                self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        abandoned = False
        if cut:
            plan.cuts += 1
            if plan.stall:
                abandoned = plan.hold(self.connection)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:  # the engine closed it first
                pass
        plan.record(Request(self.command, self.path, self.headers.get("Range"), resp.status, sent, cut, abandoned))

    def _refuse(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.plan.record(Request(self.command, self.path, self.headers.get("Range"), status, 0))

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: tuple[str, int], plan: FaultPlan, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.upstream = upstream
        self.plan = plan

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            first = request.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if first == b"\x16":  # a TLS ClientHello: answer like Go's HTTP server so the client falls back
            request.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
            return
        super().finish_request(request, client_address)


class FaultProxy:
    """Context manager: a proxy at 127.0.0.1:`port` in front of `upstream` applying `plan`."""

    def __init__(self, upstream: tuple[str, int], plan: FaultPlan, port: int = 0) -> None:
        self.plan = plan
        self._server = _Server(upstream, plan, port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
