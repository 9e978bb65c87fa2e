"""A response body read a MiB at a time is the body the server sent, whatever its framing and however the
bytes arrive; a body cut short is a lost connection, a broken framing an error, and a reader never waits for
bytes a kept-alive connection will not send."""

from __future__ import annotations

import gzip
import random
import socket
import threading
import time
from typing import Iterator

import pytest
import requests

from harness.engines.body import BodyCut, BodyError, body_pieces

BODY = random.Random(11).randbytes(300_000)


def _chunked(body: bytes, sizes: list[int], *, extension: bytes = b"", trailer: bytes = b"") -> bytes:
    out, at = [], 0
    for size in sizes:
        piece = body[at:at + size]
        at += size
        out.append(b"%x%s\r\n%s\r\n" % (len(piece), extension, piece))
    assert at >= len(body)
    return b"".join(out) + b"0\r\n" + trailer + b"\r\n"


def _random_sizes(seed: int, total: int) -> list[int]:
    rng, sizes = random.Random(seed), []
    while sum(sizes) < total:
        sizes.append(rng.choice([1, 2, 7, 100, 4096, 32768, 70_000]))
    return sizes


class Server:
    """Answers each request on 127.0.0.1 with `head` and `body` as given, written in `splits`-sized sends,
    then hangs up, or keeps the connection open for `keep_open` seconds."""

    def __init__(self, head: bytes, body: bytes, *, splits: int = 0, keep_open: float = 0.0) -> None:
        self.head, self.body, self.splits, self.keep_open = head, body, splits, keep_open
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/images/get"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(self.head)
                data, step = self.body, self.splits or len(self.body) or 1
                for k, i in enumerate(range(0, len(data), step)):
                    conn.sendall(data[i:i + step])
                    if self.splits and k % 16 == 15:  # let the reader see the bytes so far on their own
                        time.sleep(0.0005)
                time.sleep(self.keep_open)

    def close(self) -> None:
        self._listener.close()


def _head(*headers: str) -> bytes:
    return ("HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\n" + "".join(h + "\r\n" for h in headers)
            + "\r\n").encode()


@pytest.fixture
def serve() -> Iterator[type[Server]]:
    made: list[Server] = []

    def make(head: bytes, body: bytes, **kw: float) -> Server:
        made.append(Server(head, body, **kw))  # type: ignore[arg-type]
        return made[-1]

    yield make  # type: ignore[misc]
    for s in made:
        s.close()


def _read(server: Server, size: int) -> tuple[bytes, list[int]]:
    with requests.get(server.url, stream=True, timeout=5) as resp:
        pieces = [bytes(p) for p in body_pieces(resp, size)]
    return b"".join(pieces), [len(p) for p in pieces]


@pytest.mark.parametrize("size", [64, 1000, 65536, 1 << 20])
@pytest.mark.parametrize("closes", [True, False], ids=["connection-close", "kept-alive"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chunked_bodies_come_out_whole(serve, size: int, closes: bool, seed: int) -> None:  # type: ignore[no-untyped-def]
    sizes = _random_sizes(seed, len(BODY))
    head = _head("Transfer-Encoding: chunked", *(["Connection: close"] if closes else []))
    server = serve(head, _chunked(BODY, sizes, extension=b";x=1" if seed == 2 else b"",
                                  trailer=b"X-Trailer: yes\r\n" if seed == 3 else b""),
                   splits=[0, 4999, 97][seed - 1] if size > 64 else 0, keep_open=0.0 if closes else 30.0)
    started = time.monotonic()
    body, lengths = _read(server, size)
    assert body == BODY
    assert max(lengths) <= size
    assert time.monotonic() - started < 20, "the reader waited for bytes after the body's end"


def test_a_mib_buffer_is_filled_per_piece_when_the_connection_closes(serve) -> None:  # type: ignore[no-untyped-def]
    """What makes it cheap: pieces of (nearly) the buffer's size, not one per chunk."""
    body = random.Random(5).randbytes(4 << 20)
    server = serve(_head("Transfer-Encoding: chunked", "Connection: close"), _chunked(body, [32768] * 128),
                   splits=65536)
    got, lengths = _read(server, 1 << 20)
    assert got == body
    assert len(lengths) <= 6 and min(lengths[:-1]) > (1 << 20) - 300


def test_a_sized_body_and_an_unframed_one(serve) -> None:  # type: ignore[no-untyped-def]
    sized = serve(_head(f"Content-Length: {len(BODY)}"), BODY, keep_open=30.0)
    assert _read(sized, 1000)[0] == BODY
    unframed = serve(_head("Connection: close"), BODY, splits=7000)
    assert _read(unframed, 1 << 20)[0] == BODY


def test_an_encoded_body_is_decoded(serve) -> None:  # type: ignore[no-untyped-def]
    packed = gzip.compress(BODY)
    server = serve(_head("Content-Encoding: gzip", f"Content-Length: {len(packed)}"), packed)
    assert _read(server, 1 << 20)[0] == BODY


@pytest.mark.parametrize("cut", [1, 3, 5, 100, 40_000, -8, -5, -3, -2, -1])
def test_a_chunked_body_cut_short_is_a_lost_connection(serve, cut: int) -> None:  # type: ignore[no-untyped-def]
    whole = _chunked(BODY, [32768] * 10)
    server = serve(_head("Transfer-Encoding: chunked", "Connection: close"), whole[:cut])
    with pytest.raises(BodyCut, match="the body ended"):
        _read(server, 1 << 20)


def test_a_sized_body_cut_short_is_a_lost_connection(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(_head(f"Content-Length: {len(BODY)}"), BODY[:1000])
    with pytest.raises(BodyCut, match=f"after 1000 of its {len(BODY)} bytes"):
        _read(server, 1 << 20)
    assert isinstance(BodyCut("x"), ConnectionError)


@pytest.mark.parametrize("framing, message", [
    (b"zz\r\nabc\r\n0\r\n\r\n", "not a chunk size"),
    (b"0x3\r\nabc\r\n0\r\n\r\n", "not a chunk size"),
    (b"-3\r\nabc\r\n0\r\n\r\n", "not a chunk size"),
    (b"\r\nabc\r\n0\r\n\r\n", "not a chunk size"),
    (b"3\r\nabcd\r\n0\r\n\r\n", "followed by"),
    (b"3;" + b"e" * 70_000 + b"\r\nabc\r\n0\r\n\r\n", "longer than"),
])
def test_broken_chunked_framing_is_an_error(serve, framing: bytes, message: str) -> None:  # type: ignore[no-untyped-def]
    server = serve(_head("Transfer-Encoding: chunked", "Connection: close"), framing)
    with pytest.raises(BodyError, match=message):
        _read(server, 1 << 20)
