"""The local engine farm: real engine configurations side by side on this host.

Each engine gets its own directory under ``<home>/farm/<id>/`` (data root, exec
root, pidfile, unix socket, log, config).  `up` provisions binaries once
(`harness.engines.packages`), starts the daemons in parallel and waits for each
to answer ping *and* to report the id it was asked to be; `down` stops exactly the
pids recorded in the state file and their process trees, nothing else.  Engines of
another architecture run under user-mode emulation (`harness.engines.emulation`),
engines of a newer Debian against a sysroot of their own (`harness.engines.sysroot`).

Several processes share one farm (xdist workers, `engines up` by hand): each
engine is started, stopped and restarted under a lock of its own, and the state
file is changed under another, so a worker that finds an engine down while another
restarts it waits for the restart instead of starting a second daemon.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from filelock import FileLock

from harness.engines import daemon, podman
from harness.engines.adapter import Engine
from harness.engines.emulation import EmulatedSource
from harness.engines.packages import DebianSource, DebPackage, EngineSource, SystemSource
from harness.engines.sysroot import SID_ARM64, TRIXIE_AMD64, PatchedSource, Sysroot
from harness.engines.spec import EngineSpec
from harness.errors import EngineError, EngineMismatch, EngineUnavailable, HarnessError, UsageError
from harness.settings import default_home, package_cache

START_TIMEOUT = 90.0
START_ATTEMPTS = 3
"""A daemon that does not answer (or exits) while it starts is started again, up to this many times: under
user-mode emulation dockerd now and then hangs at "Initializing buildkit" for minutes (seen in CI,
2026-11-30, while eight other daemons started beside it), and comes up at once on the next start."""
LOCK_TIMEOUT = 600.0  # a stop (up to 30 s, then SIGKILL) and a start (up to 90 s), with room
_TINI = DebPackage("tini", "bookworm")
_RUNC = DebPackage("runc", "bookworm")


def _docker(version: str, suite: str) -> DebianSource:
    """dockerd with its own containerd from `suite`; runc and tini from Debian 12 (newer ones need a newer libc)."""
    return DebianSource(f"docker-{version}", (
        DebPackage("docker.io", suite, version), DebPackage("containerd", suite), _RUNC, _TINI))


def _docker_emulated(version: str, sysroot: Sysroot) -> EmulatedSource:
    """dockerd, containerd, runc and tini of another architecture, all from the sysroot's suite (runc and
    libc go together), wrapped for user-mode emulation."""
    suite, arch = sysroot.suite, sysroot.arch
    packages = DebianSource(f"docker-{version}-{arch}-debs", tuple(
        DebPackage(name, suite, pin, arch) for name, pin in
        (("docker.io", version), ("containerd", None), ("runc", None), ("tini-static", None))),
        links=(("usr/bin/docker-init", "tini-static"),))
    return EmulatedSource(f"docker-{version}-{arch}", packages, sysroot)


def _podman_patched(version: str, suite: str) -> PatchedSource:
    """podman with its own conmon, crun, netavark and catatonit from `suite`, patched onto its sysroot."""
    return PatchedSource(f"podman-{version}", DebianSource(f"podman-{version}-debs", tuple(
        DebPackage(name, suite, pin) for name, pin in
        (("podman", version), ("conmon", None), ("crun", None), ("netavark", None), ("catatonit", None)))),
        TRIXIE_AMD64)


@dataclass(frozen=True)
class FarmEngine:
    """One engine configuration of the farm: the id it must report and where its binaries come from."""

    id: str
    kind: str  # docker | podman
    source: EngineSource
    containerd_store: bool = False
    name: str = ""  # set for service daemons: their directory and state key, while `id` is what they must report
    daemon_args: tuple[str, ...] = ()
    start_timeout: float = START_TIMEOUT

    @property
    def key(self) -> str:
        return self.name or self.id


DEFAULT_ENGINES: tuple[FarmEngine, ...] = (
    FarmEngine("docker-20.10.24-overlay2", "docker", _docker("20.10.24", "bookworm")),
    FarmEngine("docker-26.1.5-overlay2", "docker", _docker("26.1.5", "trixie")),
    FarmEngine("docker-26.1.5-containerd", "docker", _docker("26.1.5", "trixie"), containerd_store=True),
    FarmEngine("docker-28.5.2-overlay2", "docker", _docker("28.5.2", "sid")),
    FarmEngine("docker-28.5.2-containerd", "docker", _docker("28.5.2", "sid"), containerd_store=True),
    FarmEngine("podman-4.3.1-overlay", "podman", SystemSource("podman-system", "podman", ("podman",))),
    FarmEngine("podman-5.4.2-overlay", "podman", _podman_patched("5.4.2", "trixie")),
    # under emulation: no userland proxy (it would be one more emulated process per port), a longer start
    FarmEngine("docker-28.5.2-containerd-arm64", "docker", _docker_emulated("28.5.2", SID_ARM64),
               containerd_store=True, daemon_args=("--userland-proxy=false",), start_timeout=2 * START_TIMEOUT),
    FarmEngine("docker-28.5.2-overlay2-arm64", "docker", _docker_emulated("28.5.2", SID_ARM64),
               daemon_args=("--userland-proxy=false",), start_timeout=2 * START_TIMEOUT),
)
REGISTRY_HOST = "registry-host"
SERVICES: tuple[FarmEngine, ...] = (
    # the registry's own daemon: never under test, so restarting an engine under test never takes it down
    FarmEngine("docker-28.5.2-overlay2", "docker", _docker("28.5.2", "sid"), name=REGISTRY_HOST),
)


@dataclass
class EngineStatus:
    """What `engines status` reports for one farm engine."""

    id: str
    endpoint: str
    version: str = ""
    storage: str = ""
    platform: str = ""  # os/arch[/variant] as the engine reports it
    pid: int | None = None
    healthy: bool = False
    error: str = ""
    log: str = ""
    started: int | None = field(default=None, repr=False)

    def spec(self) -> EngineSpec:
        return EngineSpec(self.endpoint, label=self.id, managed=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Farm:
    """The farm rooted at `home`; its state file records every pid it started."""

    def __init__(self, home: Path | None = None, engines: Sequence[FarmEngine] = DEFAULT_ENGINES,
                 cache: Path | None = None, services: Sequence[FarmEngine] = SERVICES) -> None:
        self.home = home or default_home()
        self.cache = cache or package_cache(self.home)
        self.engines = {e.key: e for e in engines}
        self.services = {e.key: e for e in services}
        self.root = self.home / "farm"
        self.state_file = self.root / "state.json"

    # -- state -------------------------------------------------------------
    def _state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"engines": {}}

    @contextmanager
    def _changing_state(self) -> Iterator[dict]:
        """The state to change in place, written back atomically; one process at a time."""
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root / "state.lock"), timeout=LOCK_TIMEOUT):
            state = self._state()
            yield state
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=2))
            tmp.replace(self.state_file)

    @contextmanager
    def _engine_locked(self, fe: FarmEngine) -> Iterator[None]:
        """One start, stop or restart of `fe` at a time, across processes."""
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        with FileLock(str(locks / f"{fe.key}.lock"), timeout=LOCK_TIMEOUT):
            yield

    def _reserved_port(self, key: str) -> int:
        with self._changing_state() as state:
            if key not in state:
                state[key] = free_port()
            return int(state[key])

    @property
    def registry_port(self) -> int:
        """A loopback port reserved for the farm's registry; podman is told it is plain HTTP."""
        return self._reserved_port("registry_port")

    def proxy_port(self, engine_id: str) -> int:
        """A loopback port reserved for the fault-injecting proxy in front of the registry when `engine_id`
        pulls through it (podman is told it is plain HTTP too): one per engine, since two podman engines'
        pull-resume tests may run at once on two workers."""
        return self._reserved_port(f"proxy_port/{engine_id}")

    def _insecure_ports(self) -> tuple[int, ...]:
        """The loopback ports podman engines are told to reach over plain HTTP: the registry, and the fault
        proxy of every podman engine."""
        return (self.registry_port, *(self.proxy_port(e.key) for e in self.engines.values() if e.kind == "podman"))

    def select(self, ids: Sequence[str] | None) -> list[FarmEngine]:
        """The named engines (or service daemons); all engines under test when none are named."""
        if not ids:
            return list(self.engines.values())
        known = {**self.engines, **self.services}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise UsageError(f"unknown farm engine {', '.join(unknown)}; farm engines: {', '.join(self.engines)}")
        return [known[i] for i in ids]

    # -- up ----------------------------------------------------------------
    def up(self, ids: Sequence[str] | None = None, progress: Callable[[str], None] = lambda s: None) -> list[EngineStatus]:
        """Provision and start the engines; a failing one is reported, the others still come up."""
        wanted = self.select(ids)
        cache = self.cache
        prefixes: dict[str, Path | HarnessError] = {}
        for fe in wanted:  # sequential: the sources share one private apt state
            if fe.source.name in prefixes:
                continue
            progress(f"provisioning {fe.source.name}")
            try:
                prefixes[fe.source.name] = fe.source.provision(cache)
            except HarnessError as e:
                prefixes[fe.source.name] = e
        ports = self._insecure_ports()

        def up_one(fe: FarmEngine) -> EngineStatus:
            with self._engine_locked(fe):
                return self._up_one(fe, prefixes[fe.source.name], ports, progress)

        with ThreadPoolExecutor(max_workers=len(wanted) or 1) as pool:
            return list(pool.map(up_one, wanted))

    def _dir(self, fe: FarmEngine) -> Path:
        return self.root / fe.key

    def run_dir(self, fe: FarmEngine) -> Path:
        """A short exec root: podman refuses a runroot over 50 characters, unix sockets stop at 108."""
        key = hashlib.sha256(f"{self.root.resolve()}/{fe.key}".encode()).hexdigest()[:12]
        return Path("/run/imgharness") / key

    def _endpoint(self, fe: FarmEngine) -> str:
        return f"unix://{self._dir(fe) / ('podman.sock' if fe.kind == 'podman' else 'docker.sock')}"

    def _up_one(self, fe: FarmEngine, prefix: Path | HarnessError, ports: tuple[int, ...],
                progress: Callable[[str], None]) -> EngineStatus:
        """Start `fe` unless it is healthy (under its lock): what was recorded for it is stopped first, and
        its pid files and socket released; the new pid is recorded once it answers as the engine asked for."""
        st = EngineStatus(fe.key, self._endpoint(fe), log=str(self._dir(fe) / "daemon.log"))
        current = self.status([fe.key])[0]
        if current.healthy:
            return current
        if isinstance(prefix, HarnessError):
            st.error = str(prefix)
            return st
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._stop_locked(fe)
                launch = self._launch(fe, prefix, ports)
                sock = Path(st.endpoint[len("unix://"):])
                sock.unlink(missing_ok=True)
                progress(f"starting {fe.key}" + (f" (attempt {attempt} of {START_ATTEMPTS})" if attempt > 1 else ""))
                st.pid = daemon.start(launch)
                st.started = daemon.start_time(st.pid)
                self._wait_ready(fe, st, sock)
                break
            except HarnessError as e:
                st.error = f"{e}; log tail: {self._log_tail(Path(st.log))}"
                if st.pid:
                    daemon.stop(st.pid, started=st.started)
                st.pid = None
                if not isinstance(e, EngineUnavailable) or attempt == START_ATTEMPTS:
                    return st
                progress(f"{fe.key} did not come up ({e.message}); starting it again")
        st.error = ""
        with self._changing_state() as state:
            state["engines"][fe.key] = {"pid": st.pid, "started": st.started, "endpoint": st.endpoint}
        progress(f"{fe.key} is up")
        return st

    def _launch(self, fe: FarmEngine, prefix: Path, ports: tuple[int, ...]) -> daemon.Launch:
        d = self._dir(fe)
        run = self.run_dir(fe)
        for path in (d / "data", run / "exec", run / "tmp"):
            path.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        if fe.kind == "podman":
            conf = d / "registries.conf"
            conf.write_text("".join(f'[[registry]]\nlocation = "127.0.0.1:{p}"\ninsecure = true\n\n' for p in ports))
            env["CONTAINERS_REGISTRIES_CONF"] = str(conf)
            if prefix != Path("/"):  # from the package cache: its own helpers and configuration, not the system's
                env.update(podman.private_config(prefix, d))
            argv: tuple[str, ...] = (
                    str(prefix / "usr/bin/podman"), "--root", str(d / "data"), "--runroot", str(run / "exec"),
                    "--tmpdir", str(run / "tmp"),
                    "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                    "system", "service", "--time", "0", self._endpoint(fe))
            return daemon.Launch(argv, env, d / "daemon.log", d)
        config = {"features": {"containerd-snapshotter": True}} if fe.containerd_store else {}
        (d / "daemon.json").write_text(json.dumps(config))
        env["PATH"] = f"{prefix / 'usr/sbin'}:{prefix / 'usr/bin'}:/usr/sbin:/usr/bin:/sbin:/bin"
        argv = (str(prefix / "usr/sbin/dockerd"), "--config-file", str(d / "daemon.json"),
                "--data-root", str(d / "data"), "--exec-root", str(run / "exec"),
                "--pidfile", str(d / "docker.pid"), "-H", self._endpoint(fe),
                "--bridge=none", "--iptables=false", *fe.daemon_args)
        return daemon.Launch(argv, env, d / "daemon.log", d)

    def _wait_ready(self, fe: FarmEngine, st: EngineStatus, sock: Path) -> None:
        deadline = time.monotonic() + fe.start_timeout
        assert st.pid is not None
        while time.monotonic() < deadline:
            if not daemon.alive(st.pid):
                raise EngineUnavailable("daemon exited during start-up", engine=fe.key)
            if sock.exists():
                engine = Engine(st.spec(), timeout=10)
                try:
                    if engine.ping():
                        ident = engine.identity
                        st.version, st.storage, st.platform = ident.version, ident.storage, ident.platform
                        if ident.id != fe.id:
                            raise EngineMismatch(f"came up as {ident.id}", engine=fe.key,
                                                 hint="the package source moved to another version")
                        st.healthy = True
                        return
                except EngineUnavailable:
                    pass  # not listening yet
                finally:
                    engine.close()
            time.sleep(0.25)
        raise EngineUnavailable(f"no answer on {sock} after {fe.start_timeout:.0f}s", engine=fe.key)

    @staticmethod
    def _log_tail(log: Path, lines: int = 5) -> str:
        try:
            tail = log.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return "(no log)"
        return " | ".join(line[-300:] for line in tail)

    # -- status / down -----------------------------------------------------
    def status(self, ids: Sequence[str] | None = None) -> list[EngineStatus]:
        state = self._state()["engines"]
        out = []
        for fe in self.select(ids):
            rec = state.get(fe.key, {})
            st = EngineStatus(fe.key, self._endpoint(fe), log=str(self._dir(fe) / "daemon.log"))
            pid, started = rec.get("pid"), rec.get("started")
            if pid and daemon.alive(pid) and (started is None or daemon.start_time(pid) == started):
                st.pid, st.started = pid, started
                engine = Engine(st.spec(), timeout=10)
                try:
                    ident = engine.identity
                    st.version, st.storage, st.healthy = ident.version, ident.storage, ident.id == fe.id
                    st.platform = ident.platform
                    if ident.id != fe.id:
                        st.error = f"reports itself as {ident.id}"
                except EngineError as e:
                    st.error = str(e)
                finally:
                    engine.close()
            out.append(st)
        return out

    def running(self, engine_id: str) -> Engine:
        """An adapter on farm engine `engine_id`, which must be up (the caller closes it)."""
        if engine_id not in self.engines:
            raise UsageError(f"{engine_id!r} is no farm engine", hint=f"farm engines: {', '.join(self.engines)}")
        [status] = self.status([engine_id])
        if not status.healthy:
            raise EngineUnavailable("not running", engine=engine_id, hint=f"imgharness engines up {engine_id}")
        return Engine(status.spec())

    def down(self, ids: Sequence[str] | None = None) -> list[str]:
        """Stop the farm's daemons (by recorded pid and start time); returns the ids stopped."""
        stopped = []
        for fe in self.select(ids) if ids else [*self.engines.values(), *self.services.values()]:
            with self._engine_locked(fe):
                if self._stop_locked(fe):
                    stopped.append(fe.key)
        return stopped

    def restart(self, engine_id: str) -> EngineStatus:
        """Stop one engine and start it again on the same data root (state survives, the process does not).

        Under the engine's lock, the old daemon and its whole process tree are gone, its mounts, pid files
        and socket released, before the new one starts; it returns once the new one answers (or failed to)."""
        [fe] = self.select([engine_id])
        try:
            prefix: Path | HarnessError = fe.source.provision(self.cache)
        except HarnessError as e:
            prefix = e
        with self._engine_locked(fe):
            self._stop_locked(fe)
            return self._up_one(fe, prefix, self._insecure_ports(), lambda s: None)

    def _stop_locked(self, fe: FarmEngine) -> bool:
        """Stop what is recorded for `fe` (caller holds its lock), unmount what it left and release its pid
        files; True if a daemon was recorded."""
        rec = self._state()["engines"].get(fe.key)
        if rec:
            daemon.stop(rec["pid"], started=rec.get("started"))
            with self._changing_state() as state:
                state["engines"].pop(fe.key, None)
        _unmount_below(self._dir(fe))
        _unmount_below(self.run_dir(fe))
        for pid_file in (self._dir(fe) / "docker.pid", self.run_dir(fe) / "exec" / "containerd" / "containerd.pid"):
            daemon.release_pid_file(pid_file)
        return bool(rec)


def _unmount_below(directory: Path) -> None:
    """Unmount what a killed daemon left mounted inside its own directory (deepest first)."""
    prefix = str(directory.resolve()) + "/"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    points = [line.split()[4] for line in lines if len(line.split()) > 4]
    for mp in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)


def statuses_json(statuses: Sequence[EngineStatus]) -> str:
    return json.dumps([{k: v for k, v in asdict(s).items() if k != "started"} for s in statuses], indent=2)
