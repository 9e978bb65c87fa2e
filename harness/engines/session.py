"""One process's access to the engines under test: farm lease, adapters, registry, clean-up.

Everything a run creates on an engine is named under the run's namespace
(`imgharness-run-<uid>`), so that clean-up can remove exactly that and nothing
else: images and tags a user had before a run are never touched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from harness.engines.adapter import Engine
from harness.engines.farm import Farm
from harness.engines.lease import FarmLease
from harness.engines.registry import Registry
from harness.engines.spec import EngineSpec
from harness.errors import HarnessError


@dataclass(frozen=True)
class EngineSlot:
    """One selected engine as a test parameter: its id and how to reach it."""

    id: str
    spec: EngineSpec | None  # None for farm engines until the farm is up
    farm: bool


def owned_by_run(ref: str, namespace: str) -> bool:
    """True for references this run created: ``<namespace>/…`` on any registry host."""
    path = ref.split("@", 1)[0]
    return path.startswith(f"{namespace}/") or f"/{namespace}/" in path


class EngineSession:
    """Engines for one test process; the farm starts on first use, clean-up runs on close."""

    def __init__(self, slots: tuple[EngineSlot, ...], farm: bool, namespace: str) -> None:
        self.slots = slots
        self.use_farm = farm
        self.namespace = namespace
        self.farm = Farm()
        self.lease: FarmLease | None = None
        self.errors: dict[str, str] = {}
        self.specs: dict[str, EngineSpec] = {s.id: s.spec for s in slots if s.spec is not None}
        self.engines: dict[str, Engine] = {}
        self._registry: Registry | None = None

    def _lease(self) -> FarmLease:
        if self.lease is None:
            self.lease = FarmLease(self.farm)
        return self.lease

    def _start_farm(self) -> None:
        if not self.use_farm or (self.lease is not None and self.lease.holds):
            return
        for st in self._lease().acquire([s.id for s in self.slots if s.farm]):
            if st.healthy:
                self.specs[st.id] = st.spec()
            else:
                self.errors[st.id] = st.error or "not running"

    def engine(self, slot: EngineSlot) -> Engine:
        if slot.farm:
            self._start_farm()
        if slot.id in self.errors:
            raise HarnessError(f"engine {slot.id} is unavailable: {self.errors[slot.id]}")
        if slot.id not in self.engines:
            engine = Engine(self.specs[slot.id])
            engine.identity  # noqa: B018 - fails here, with the engine named, if it cannot be reached
            self.engines[slot.id] = engine
        return self.engines[slot.id]

    def restart(self, engine: Engine) -> Engine:
        """Restart a farm daemon; returns a fresh adapter for it, which later tests get too.  An engine
        that did not come back is unavailable from then on, with the reason."""
        if not engine.spec.managed:
            raise HarnessError(f"{engine.id} is not managed by the harness; it is never restarted")
        engine.close()
        self.engines.pop(engine.id, None)
        st = self.farm.restart(engine.id)
        if not st.healthy:
            self.errors[engine.id] = f"did not come back after a restart: {st.error}"
            raise HarnessError(f"{engine.id} {self.errors[engine.id]}")
        self.specs[engine.id] = st.spec()
        return self.engine(EngineSlot(engine.id, st.spec(), True))

    def registry(self) -> Registry:
        """The shared registry; started again if it went away."""
        if self._registry is None or not self._registry.ready():
            host = None if self.use_farm else self._user_docker_engine()
            if host is not None and not self._lease().holds:
                self._lease().join()  # the last worker to give its lease back stops the registry, none before
            self._registry = self._lease().registry(host, image_repo=None if self.use_farm
                                                    else f"{self.namespace}/registry",
                                                    label=None if self.use_farm else self.namespace)
        return self._registry

    def _user_docker_engine(self) -> Engine:
        """Without the farm the registry runs on the first reachable Docker engine the user gave."""
        for slot in self.slots:
            try:
                candidate = self.engine(slot)
            except HarnessError:
                continue
            if candidate.identity.engine == "docker":
                return candidate
        raise HarnessError("no reachable Docker engine to run the registry on")

    def clean_up(self, settle: float = 3.0, *, containers: bool = False) -> dict[str, list[str]]:
        """Remove every reference this run created (and only those) from every engine it used; with
        `containers`, first every container labelled with the run's namespace (the registry on a user's
        engine, which may still exist when Ctrl-C cut its start short, before we learnt its id: it holds
        its image's tag).

        Through a fresh connection (after Ctrl-C the adapter's own may have been cut mid-request),
        and until nothing new of ours has appeared for `settle` seconds: a load or pull cut short
        on our side still finishes on the daemon's, and may tag its image after a first sweep; a
        container create cut short may still create it."""
        removed: dict[str, list[str]] = {}
        for engine_id, used in self.engines.items():
            try:
                engine = Engine(used.spec, timeout=120)
            except HarnessError:
                continue
            try:
                quiet_since = time.monotonic()
                while time.monotonic() - quiet_since < settle:
                    for container in engine.containers(f"imgharness.run={self.namespace}") if containers else []:
                        try:
                            engine.remove_container(container["Id"])
                            quiet_since = time.monotonic()
                        except HarnessError:
                            continue  # being removed already; listed again in the next sweep if not
                    refs = [t for image in engine.images() for t in image.get("RepoTags") or []
                            if owned_by_run(t, self.namespace) and t not in removed.get(engine_id, [])]
                    for ref in refs:
                        try:
                            engine.remove(ref)
                            removed.setdefault(engine_id, []).append(ref)
                            quiet_since = time.monotonic()
                        except HarnessError:
                            continue  # e.g. still used by our registry container: removed after it stops
                    time.sleep(0.5)
            except HarnessError:
                continue  # an engine that is gone keeps nothing of ours we could still reach
            finally:
                engine.close()
        return removed

    def close(self) -> None:
        """Clean up, give the farm lease back (the last one stops what leases started), clean up again
        what only a stopped registry container was still holding."""
        try:
            self.clean_up()
            last = self.lease.release() if self.lease is not None else True
            if not self.use_farm:
                self.clean_up(containers=last)
        finally:
            for engine in self.engines.values():
                engine.close()
