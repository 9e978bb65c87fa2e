"""A save is received whole or not at all: a connection cut in the middle of the body is a lost engine
(`EngineUnavailable`), never a shorter archive with a digest; through the same relay uncut, the bytes and
the digest are the engine's own."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest

from harness.engines.adapter import Engine
from harness.engines.spec import EngineSpec
from harness.errors import EngineUnavailable
from harness.subjects import RunSubjects


class CuttingRelay:
    """A unix socket in front of an engine's that relays every exchange, and hangs up on a save's response
    after `cut_after` bytes of it (headers included) when `cut_after` is set."""

    def __init__(self, upstream: str, path: Path, cut_after: int | None) -> None:
        self.upstream, self.path, self.cut_after = upstream, path, cut_after
        self._listener = socket.socket(socket.AF_UNIX)
        self._listener.bind(str(path))
        self._listener.listen(8)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        engine = socket.socket(socket.AF_UNIX)
        engine.connect(self.upstream)
        saving = threading.Event()  # the client asked for a save on this connection: what follows is its answer
        threading.Thread(target=self._requests, args=(client, engine, saving), daemon=True).start()
        sent = 0
        try:
            while data := engine.recv(65536):
                if saving.is_set() and self.cut_after is not None and sent + len(data) >= self.cut_after:
                    client.sendall(data[:self.cut_after - sent])
                    break
                client.sendall(data)
                sent += len(data) if saving.is_set() else 0
        except OSError:
            pass
        for s in (client, engine):  # shutdown wakes the other thread's recv; close alone would not hang up
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    @staticmethod
    def _requests(client: socket.socket, engine: socket.socket, saving: threading.Event) -> None:
        try:
            while data := client.recv(65536):
                if b"/images/get" in data:
                    saving.set()
                engine.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def relay(engine: Engine, tmp_path: Path) -> Iterator[type[CuttingRelay]]:
    if not engine.spec.endpoint.startswith("unix://"):
        pytest.skip("the relay stands in front of a unix socket")
    made: list[CuttingRelay] = []

    def make(cut_after: int | None) -> CuttingRelay:
        made.append(CuttingRelay(engine.spec.endpoint[len("unix://"):], tmp_path / f"relay-{len(made)}.sock",
                                 cut_after))
        return made[-1]

    yield make  # type: ignore[misc]
    for r in made:
        r.close()


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def test_a_save_cut_short_is_a_lost_connection_and_an_uncut_one_is_the_engines_bytes(
        engine: Engine, subjects: RunSubjects, relay, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tag = subjects.ensure(engine, "basic")
    direct = tmp_path / "direct.tar"
    digest = engine.save(tag, direct)
    assert digest == _sha256(direct)

    relayed = tmp_path / "relayed.tar"
    through = Engine(EngineSpec(f"unix://{relay(None).path}"), timeout=60)
    assert through.save(tag, relayed) == _sha256(relayed)
    assert relayed.stat().st_size == direct.stat().st_size

    cut = Engine(EngineSpec(f"unix://{relay(direct.stat().st_size // 2).path}"), timeout=60)
    with pytest.raises(EngineUnavailable, match="connection lost"):
        cut.save(tag, tmp_path / "cut.tar")
