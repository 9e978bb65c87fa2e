"""An engine's HTTP response body read a MiB at a time, its chunked framing undone here.

dockerd sends a save as HTTP chunks of 32 KiB.  Through requests' ``iter_content``,
urllib3 and http.client parse each chunk with a dozen Python calls and hand it over as
new bytes: 1.0 s of CPU per GiB, as much as the kernel takes to deliver it (a 1.06 GiB
save of docker 28.5.2 on a 2-vCPU VM: 2.0 s read that way, 0.8-1.2 s with raw reads
of 1 MiB).  Here the response's buffered file fills a 1 MiB buffer per call (its loop
over the socket runs in C), the framing is parsed in that buffer and the data moved
together, and the caller gets pieces of up to 1 MiB.

The file is the one http.client read the headers from (``resp.raw._fp.fp``, as
docker-py reaches it for attach streams), so what it buffered of the body comes out
first.  A call may only ask for bytes the body is sure to hold: a buffer is filled in
one call only when the engine says it closes the connection after the response (the
request asks it to); otherwise each read stops where the current chunk's framing
ends at the earliest.  A response whose body is encoded (gzip) goes through requests,
which decodes it, and so does any response the caller does not ask to read directly
(the adapter reads unix sockets directly, and asks for the connection to close
only there: over ssh's stdio bridge, docker 28.5.2, a save asked for that way
ended 64 KiB in).
"""

from __future__ import annotations

from typing import Iterator, Protocol

import requests

from harness.tar.streams import CHUNK

MAX_LINE = 64 << 10  # a chunk-size or trailer line longer than this is not HTTP
SMALLEST_TAIL = 7  # what must follow a chunk's data: CRLF, a size line ("0" CRLF) and at least a CRLF


class BodyError(Exception):
    """The engine's response body is not valid HTTP/1.1 framing."""


class BodyCut(BodyError, ConnectionError):
    """The connection ended before the body did."""


class _Readable(Protocol):
    def readinto(self, b: memoryview, /) -> int | None: ...


def body_pieces(resp: requests.Response, size: int = CHUNK, *, direct: bool = True) -> Iterator[memoryview]:
    """The body of `resp` (requested with ``stream=True``) in pieces of at most `size` bytes, each valid until
    the next is asked for; its end is checked (a body cut short raises `BodyCut`).  Not `direct` (a transport
    this was not measured on: ssh's stdio bridge, TLS), through requests as it comes."""
    fp = getattr(getattr(resp.raw, "_fp", None), "fp", None)
    if not direct or fp is None or resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
        for data in resp.iter_content(size):
            yield memoryview(data)
        return
    closes = "close" in resp.headers.get("Connection", "").lower()
    if "chunked" in resp.headers.get("Transfer-Encoding", "").lower():
        yield from _Chunked(fp, size, closes).pieces()
    elif resp.headers.get("Content-Length") is not None:
        yield from _sized(fp, size, _length(resp.headers["Content-Length"]))
    else:  # no framing: the body ends with the connection
        yield from _sized(fp, size, None)


def _length(value: str) -> int:
    try:
        length = int(value.strip())
    except ValueError:
        length = -1
    if length < 0:
        raise BodyError(f"Content-Length {value[:40]!r} is not a length")
    return length


def _sized(fp: _Readable, size: int, length: int | None) -> Iterator[memoryview]:
    """`length` bytes (None: up to the end of the connection)."""
    view = memoryview(bytearray(size))
    got = 0
    while length is None or got < length:
        n = fp.readinto(view if length is None else view[:min(size, length - got)]) or 0
        if not n:
            if length is None:
                return
            raise BodyCut(f"the body ended after {got} of its {length} bytes")
        got += n
        yield view[:n]


class _Chunked:
    """Chunked transfer coding (RFC 9112 §7.1) undone in one buffer: chunk data is moved to the buffer's start
    as it is parsed, framing dropped; extensions and trailers are read and ignored."""

    def __init__(self, fp: _Readable, size: int, fill: bool) -> None:
        self._fp = fp
        self._fill = fill  # whole buffers may be asked for: the connection ends with the body
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._start = self._end = 0  # the bytes read and not parsed yet
        self._left = 0  # data bytes of the current chunk still to come
        self._expect = "size"  # the next line: "size", "crlf" (after a chunk's data), "trailer" or "" (done)
        self._received = 0  # data bytes so far, for messages

    def pieces(self) -> Iterator[memoryview]:
        while self._expect:
            self._read()
            out = self._parse()
            if out:
                self._received += out
                yield self._view[:out]
            rest = self._end - self._start  # framing cut by the buffer's end: to the start, before reading on
            self._view[:rest] = self._view[self._start:self._end]
            self._start, self._end = 0, rest

    def _read(self) -> None:
        room = len(self._buf) - self._end
        if not room:
            raise BodyError(f"a chunk line is longer than {len(self._buf)} bytes")
        # not filling: the current chunk's data and the least framing that must follow it, or a byte of a line
        want = room if self._fill else min(room, self._left + SMALLEST_TAIL if self._left else 1)
        n = self._fp.readinto(self._view[self._end:self._end + want]) or 0
        if not n:
            raise BodyCut(f"the body ended after {self._received} bytes, inside its chunked framing")
        self._end += n

    def _parse(self) -> int:
        """Parse what was read; returns how many data bytes now lie at the buffer's start."""
        buf, view, out = self._buf, self._view, 0
        while self._start < self._end and self._expect:
            if self._left:
                n = min(self._left, self._end - self._start)
                if out != self._start:
                    view[out:out + n] = view[self._start:self._start + n]  # memmove
                out += n
                self._start += n
                self._left -= n
                continue
            eol = buf.find(b"\n", self._start, min(self._end, self._start + MAX_LINE + 1))
            if eol < 0:
                if self._end - self._start > MAX_LINE:
                    raise BodyError(f"a chunk line is longer than {MAX_LINE} bytes")
                break
            line = bytes(view[self._start:eol]).rstrip(b"\r")
            self._start = eol + 1
            self._line(line)
        return out

    def _line(self, line: bytes) -> None:
        if self._expect == "crlf":
            if line:
                raise BodyError(f"chunk data is followed by {line[:20]!r}, not CRLF")
            self._expect = "size"
        elif self._expect == "size":
            text = line.split(b";", 1)[0].strip(b" \t")
            if not text or text.strip(b"0123456789abcdefABCDEF"):
                raise BodyError(f"{line[:40]!r} is not a chunk size")
            self._left = int(text, 16)
            self._expect = "crlf" if self._left else "trailer"
        elif not line:  # the empty line that ends the trailer section
            self._expect = ""
