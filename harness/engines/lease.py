"""Sharing one farm (and one registry) between pytest processes.

Under `pytest -n 2` every xdist worker needs the same engines.  Each process
holds a *lease* (a file named after it) on the farm, taken and given back under
one file lock: the first lease starts what is not running, the last one stops
what leases started, and a farm that was already up (`engines up` by hand) is
left running.  Leases of processes that died are ignored.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from filelock import FileLock

from harness.engines import daemon
from harness.engines.adapter import Engine
from harness.engines.farm import REGISTRY_HOST, EngineStatus, Farm
from harness.engines.registry import IMAGE_REPO, Registry, start_registry, stop_registry
from harness.errors import EngineUnavailable, HarnessError


class FarmLease:
    """One process's claim on the farm; `acquire` brings engines up, `release` may bring them down."""

    def __init__(self, farm: Farm, token: str | None = None) -> None:
        self.farm = farm
        self.token = token or f"{os.getpid()}"
        self.leases = farm.root / "leases"
        self.owned = farm.root / "owned-by-leases.json"
        self.registry_file = farm.root / "registry.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.farm.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.farm.root / ".lock"), timeout=900):
            yield

    def _live_leases(self) -> list[Path]:
        live = []
        for f in self.leases.glob("*") if self.leases.exists() else []:
            try:
                pid, started = json.loads(f.read_text())
            except (ValueError, OSError):
                continue
            if daemon.alive(pid) and daemon.start_time(pid) == started:
                live.append(f)
            else:
                f.unlink(missing_ok=True)
        return live

    def _owned(self) -> dict:
        try:
            return json.loads(self.owned.read_text())
        except (FileNotFoundError, ValueError):
            return {"engines": [], "registry": False}

    def acquire(self, ids: Sequence[str] | None = None, progress=lambda s: None) -> list[EngineStatus]:
        with self._locked():
            statuses = self.farm.status(ids)
            down = [s.id for s in statuses if not s.healthy]
            if down:
                started = {s.id: s for s in self.farm.up(down, progress)}
                owned = self._owned()
                owned["engines"] = sorted(set(owned["engines"]) | {i for i, s in started.items() if s.healthy})
                self.owned.write_text(json.dumps(owned))
                statuses = [started.get(s.id, s) for s in statuses]
            self._hold()
            return statuses

    def join(self) -> None:
        """Hold a lease without starting an engine: a process that shares only the registry (on the user's
        own engine) keeps it running for as long as it needs it."""
        with self._locked():
            self._hold()

    def _hold(self) -> None:
        self.leases.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        (self.leases / self.token).write_text(json.dumps([pid, daemon.start_time(pid)]))

    @property
    def holds(self) -> bool:
        """True while this process's lease file exists."""
        return (self.leases / self.token).exists()

    def registry(self, host: Engine | None = None, image_repo: str | None = None, label: str | None = None) -> Registry:
        """The shared registry, started by the first process that needs it: on `host` if given
        (the user's own engines), else on the farm's registry-host daemon, which no test restarts.  Its container
        is labelled ``imgharness.run=<label>`` (default: this lease's token)."""
        with self._locked():
            try:
                reg = Registry(**json.loads(self.registry_file.read_text()))
                if reg.ready():
                    return reg
            except (FileNotFoundError, ValueError, TypeError):
                pass
            owned = self._owned()
            own: Engine | None = None  # an adapter opened here is closed here
            if host is None:
                [st] = self.farm.status([REGISTRY_HOST])
                if not st.healthy:
                    [st] = self.farm.up([REGISTRY_HOST])
                    if not st.healthy:
                        raise EngineUnavailable(f"cannot start the registry's daemon: {st.error}", engine=REGISTRY_HOST)
                    owned["engines"] = sorted(set(owned["engines"]) | {REGISTRY_HOST})
                host = own = Engine(st.spec())
            try:
                reg, _ = start_registry(host, self.farm.registry_port, self.farm.cache, label or self.token,
                                        image_repo=image_repo or IMAGE_REPO)
            finally:
                if own is not None:
                    own.close()
            self.registry_file.write_text(json.dumps(reg.__dict__))
            owned["registry"] = True
            self.owned.write_text(json.dumps(owned))
            return reg

    def release(self) -> bool:
        """Give this lease back; True when it was the last, and what leases started has been stopped."""
        with self._locked():
            (self.leases / self.token).unlink(missing_ok=True)
            if self._live_leases():
                return False
            owned = self._owned()
            if owned.get("registry") and self.registry_file.exists():
                try:
                    stop_registry(Registry(**json.loads(self.registry_file.read_text())))
                except (HarnessError, ValueError, TypeError):
                    pass
                self.registry_file.unlink(missing_ok=True)
            if owned["engines"]:
                self.farm.down(owned["engines"])
            self.owned.unlink(missing_ok=True)
            return True
