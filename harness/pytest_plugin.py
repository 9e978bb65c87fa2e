"""The harness's pytest plugin (entry point `pytest11: harness`).

Options (group "harness"): ``--engine`` (repeatable), ``--engines-file``,
``--farm/--no-farm``, ``--repeat``, ``--report-dir``.  Fixtures: ``engine``
(parametrized over the selected engines; test ids carry the engine id),
``registry``, ``record`` (attach findings and measurements to the report),
``harness_config``, ``workdir``.

Engines are resolved once into a frozen `HarnessConfig` kept in `config.stash`.
The farm is started lazily, by the first test that needs an engine, under a
file lock shared by xdist workers (`harness.engines.lease`).  An engine that was
asked for and cannot be reached makes its tests *error*, never skip.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generator, Iterator

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from harness.engines.adapter import Engine  # noqa: E402
from harness.engines.farm import DEFAULT_ENGINES, Farm, default_home  # noqa: E402
from harness.engines.spec import EngineSpec  # noqa: E402
from harness.errors import ArchiveError, HarnessError  # noqa: E402
from harness.findings import Category, Finding  # noqa: E402
from harness.image import Archive  # noqa: E402
from harness.registry import Registry  # noqa: E402


@dataclass(frozen=True)
class EngineSlot:
    """One selected engine as a test parameter: its id and how to reach it."""

    id: str
    spec: EngineSpec | None  # None for farm engines until the farm is up
    farm: bool


@dataclass(frozen=True)
class HarnessConfig:
    slots: tuple[EngineSlot, ...]
    farm: bool
    repeat: int
    report_dir: Path | None


config_key = pytest.StashKey[HarnessConfig]()
session_key = pytest.StashKey["EngineSession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "image consistency harness")
    group.addoption("--engine", action="append", default=[], metavar="SPEC",
                    help="engine to test: unix:///sock, tcp://host:port, ssh://user@host, a Docker context name, "
                         "or LABEL=SPEC (repeatable)")
    group.addoption("--engines-file", metavar="TOML", help="inventory of engines (TOML)")
    group.addoption("--farm", dest="farm", action="store_true", default=None,
                    help="test the local engine farm (default when no engine is given)")
    group.addoption("--no-farm", dest="farm", action="store_false", help="do not start the local farm")
    group.addoption("--farm-engine", action="append", default=[], metavar="ID",
                    help="only these farm engines (default: all six)")
    group.addoption("--image", action="append", default=[], metavar="NAME",
                    help="only these corpus images (default: all)")
    group.addoption("--repeat", type=int, default=3, help="how many times to repeat saves (default 3)")
    group.addoption("--report-dir", type=Path, help="write report.json here")


def _resolve(config: pytest.Config) -> HarnessConfig:
    from harness.engines.inventory import select_engines

    opts, file = config.getoption("engine"), config.getoption("engines_file")
    try:
        specs = select_engines(opts, file, os.environ)
    except HarnessError as e:
        raise pytest.UsageError(str(e)) from e
    use_farm = config.getoption("farm")
    if use_farm is None:
        use_farm = not specs
    slots: list[EngineSlot] = []
    if use_farm:
        wanted = config.getoption("farm_engine") or [e.id for e in DEFAULT_ENGINES]
        slots.extend(EngineSlot(i, None, True) for i in wanted)
    for spec in specs:
        slots.append(EngineSlot(_identify_quietly(spec), spec, False))
    return HarnessConfig(tuple(slots), bool(use_farm), max(1, config.getoption("repeat")),
                         config.getoption("report_dir"))


def _identify_quietly(spec: EngineSpec) -> str:
    """The engine's own id for test ids; its label or endpoint if it cannot be reached now."""
    try:
        engine = Engine(spec, timeout=15)
        try:
            return engine.id
        finally:
            engine.close()
    except HarnessError:
        return spec.label or spec.redacted_endpoint


def pytest_configure(config: pytest.Config) -> None:
    from harness.report.results import ResultCollector

    config.addinivalue_line("markers", "check(name): the verification check a suite test belongs to")
    config.stash[config_key] = _resolve(config)
    if not hasattr(config, "workerinput"):  # the xdist controller, or a plain run, writes the report
        config.pluginmanager.register(ResultCollector(config), "harness-results")


class EngineSession:
    """Per-process access to the selected engines; starts the farm on first use."""

    def __init__(self, hc: HarnessConfig) -> None:
        self.hc = hc
        self.farm = Farm()
        self.lease: Any = None
        self.errors: dict[str, str] = {}
        self.specs: dict[str, EngineSpec] = {s.id: s.spec for s in hc.slots if s.spec is not None}
        self.engines: dict[str, Engine] = {}
        self._registry: Registry | None = None

    def _start_farm(self) -> None:
        from harness.engines.lease import FarmLease

        if self.lease is not None or not self.hc.farm:
            return
        self.lease = FarmLease(self.farm)
        ids = [s.id for s in self.hc.slots if s.farm]
        for st in self.lease.acquire(ids):
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
        """Restart a farm daemon; returns a fresh adapter for it."""
        if not engine.spec.managed:
            raise HarnessError(f"{engine.id} is not managed by the harness; it is never restarted")
        engine.close()
        self.engines.pop(engine.id, None)
        st = self.farm.restart(engine.id)
        if not st.healthy:
            raise HarnessError(f"{engine.id} did not come back after a restart: {st.error}")
        self.specs[engine.id] = st.spec()
        return self.engine(EngineSlot(engine.id, st.spec(), True))

    def registry(self) -> Registry:
        """The shared registry; started again if it went away (its host daemon was restarted)."""
        if self._registry is None or not self._registry.ready():
            from harness.engines.lease import FarmLease

            if self.lease is None:
                self.lease = FarmLease(self.farm)
            self._registry = self.lease.registry(None if self.hc.farm else self._user_docker_engine())
        return self._registry

    def _user_docker_engine(self) -> Engine:
        """Without the farm the registry runs on the first reachable Docker engine the user gave."""
        for slot in self.hc.slots:
            try:
                candidate = self.engine(slot)
            except HarnessError:
                continue
            if candidate.identity.engine == "docker":
                return candidate
        raise HarnessError("no reachable Docker engine to run the registry on")

    def close(self) -> None:
        for engine in self.engines.values():
            engine.close()
        if self.lease is not None:
            self.lease.release()


@pytest.fixture(scope="session")
def harness_config(pytestconfig: pytest.Config) -> HarnessConfig:
    return pytestconfig.stash[config_key]


@pytest.fixture(scope="session")
def engine_session(harness_config: HarnessConfig) -> Iterator[EngineSession]:
    session = EngineSession(harness_config)
    try:
        yield session
    finally:
        session.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" in metafunc.fixturenames:
        slots = metafunc.config.stash[config_key].slots
        metafunc.parametrize("engine", slots, ids=[s.id for s in slots], indirect=True, scope="function")
    if "image" in metafunc.fixturenames:
        from harness.corpus import IMAGE_NAMES

        names = metafunc.config.getoption("image") or list(IMAGE_NAMES)
        metafunc.parametrize("image", names, scope="function")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook turns xdist_group markers into scheduling groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each engine's tests form one xdist group: one daemon is never driven by two workers at once
    (saves do not compete, and a daemon restart cannot race another test)."""
    for item in items:
        slot = getattr(item, "callspec", None) and item.callspec.params.get("engine")  # type: ignore[attr-defined]
        if isinstance(slot, EngineSlot):
            item.add_marker(pytest.mark.xdist_group(slot.id))


@pytest.fixture
def engine(request: pytest.FixtureRequest, engine_session: EngineSession) -> Engine:
    slot: EngineSlot = request.param
    try:
        return engine_session.engine(slot)
    except HarnessError as e:
        pytest.fail(f"engine {slot.id} unavailable: {e}", pytrace=False)


@pytest.fixture
def registry(engine_session: EngineSession) -> Registry:
    try:
        return engine_session.registry()
    except HarnessError as e:
        pytest.fail(f"registry unavailable: {e}", pytrace=False)


@pytest.fixture(scope="session")
def run_namespace(request: pytest.FixtureRequest) -> str:
    """A repository namespace unique to this run (shared by xdist workers): everything we tag lives under it."""
    uid = request.config.workerinput["testrunuid"] if hasattr(request.config, "workerinput") else uuid.uuid4().hex
    return f"imgharness-run-{uid[:10]}"


@pytest.fixture(scope="session")
def corpus() -> dict[str, Path]:
    """The offline test images, built once (cached under the harness home): name → archive."""
    from harness.corpus import build_corpus

    try:
        return build_corpus(default_home())
    except HarnessError as e:
        pytest.fail(f"cannot build the test corpus: {e}", pytrace=False)


@pytest.fixture
def loaded_image(engine: Engine, image: str, corpus: dict[str, Path]) -> str:
    """Load corpus image `image` into `engine` (once) and return its tag."""
    from harness.corpus import corpus_tag

    tag = corpus_tag(image)
    try:
        engine.inspect(tag)
    except HarnessError:
        try:
            engine.load(corpus[image])
            engine.inspect(tag)
        except HarnessError as e:
            pytest.fail(f"cannot load corpus image {image} into {engine.id}: {e}", pytrace=False)
    return tag


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Scratch space for archives a test saves; removed by pytest's tmp_path retention policy."""
    return tmp_path


@dataclass
class Record:
    """What a suite test attaches to its result: findings, and measurements for charts."""

    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    image: str = ""

    def add(self, *findings: Finding) -> None:
        self.findings.extend(findings)

    def measure(self, name: str, value: Any) -> None:
        self.metrics[name] = value


    def read(self, path: Path, what: str) -> Archive:
        """Read an archive an engine wrote; a broken one fails the test with the reader's one-line reason."""
        from harness.archive import read_archive

        try:
            return read_archive(path)
        except ArchiveError as e:
            self.add(Finding(Category.REMOVED, f"archive:{what}", None, None, f"unreadable archive: {e}"))
            pytest.fail(f"the engine wrote a broken archive ({what}): {e}", pytrace=False)


record_key = pytest.StashKey[Record]()


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Record:
    rec = Record()
    request.node.stash[record_key] = rec
    return rec


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Ship each suite result's check, engine, image, findings and metrics with its test report."""
    report = yield
    marker = item.get_closest_marker("check")
    if marker is None:
        return report
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec else {}
    slot = params.get("engine")
    rec = item.stash.get(record_key, Record())
    image = rec.image or str(params.get("image", ""))
    resolved = item.funcargs.get("engine") if hasattr(item, "funcargs") else None
    report.user_properties.append(("harness", {
        "check": marker.args[0],
        "engine": slot.id if isinstance(slot, EngineSlot) else "",
        "engine_info": _engine_info(resolved) if isinstance(resolved, Engine) else None,
        "image": image,
        "findings": [f.to_json() for f in rec.findings],
        "metrics": dict(rec.metrics),
    }))
    return report


def _engine_info(engine: Engine) -> dict[str, Any]:
    ident = engine.identity
    return {"id": ident.id, "endpoint": engine.spec.redacted_endpoint, "version": ident.version,
            "storage": ident.storage, "os": ident.os, "arch": ident.arch}
