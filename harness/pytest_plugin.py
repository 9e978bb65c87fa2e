"""The harness's pytest plugin (entry point `pytest11: harness`).

Options (group "harness", declared in `harness.plugins.options`): ``--engine``
(repeatable), ``--engines-file``, ``--farm/--no-farm``, ``--farm-engine``,
``--image``, ``--repeat``, ``--report-dir``, ``--run-id``, ``--progress-lines``.
Fixtures: ``engine`` (parametrized over the selected engines; test ids carry the engine id),
``registry``, ``record`` (attach findings and measurements to the report),
``harness_config``, ``workdir``.

Engines are resolved once into a frozen `HarnessConfig` kept in `config.stash`.
The farm is started lazily, by the first test that needs an engine, under a
file lock shared by xdist workers (`harness.engines.lease`).  An engine that was
asked for and cannot be reached makes its tests *error*, never skip.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generator, Iterator

import pytest

from harness.engines.adapter import Engine
from harness.engines.farm import DEFAULT_ENGINES
from harness.engines.registry import Registry
from harness.engines.session import EngineSession, EngineSlot
from harness.engines.spec import EngineSpec
from harness.errors import ArchiveError, EngineError, EngineMismatch, EngineUnavailable, HarnessError
from harness.findings import Category, Finding
from harness.image import Archive
from harness.plugins import options
from harness.settings import default_home, package_cache
from harness.subjects import Refused, RunSubjects, Subject, UserImage, fetch, user_images
from harness.tools import CPU_SECONDS as TOOL_CPU
from harness.tools import SKOPEO, Tool, Tools

__all__ = ["EngineSession", "EngineSlot", "HarnessConfig", "Record"]


@dataclass(frozen=True)
class HarnessConfig:
    slots: tuple[EngineSlot, ...]
    farm: bool
    repeat: int
    report_dir: Path | None
    namespace: str  # everything the run creates on an engine is named under it
    user_images: tuple[UserImage, ...] = ()  # the user's own, measured beside the corpus


config_key = pytest.StashKey[HarnessConfig]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "image consistency harness")
    options.ENGINE.add_to(group)
    options.ENGINES_FILE.add_to(group)
    group.addoption("--farm", dest="farm", action="store_true", default=None,
                    help="test the local engine farm (default when no engine is given)")
    group.addoption("--no-farm", dest="farm", action="store_false", help="do not start the local farm")
    for option in (options.FARM_ENGINE, options.IMAGE, options.IMAGE_ARCHIVE, options.IMAGE_REF, options.REPEAT,
                   options.REPORT_DIR, options.RUN_ID, options.PROGRESS_LINES, options.KEEP_SAVES):
        option.add_to(group)


def _resolve(config: pytest.Config) -> HarnessConfig:
    from harness.engines.inventory import select_engines

    opts, file = config.getoption("engine"), config.getoption("engines_file")
    try:
        specs = select_engines(opts, file, os.environ)
        users = user_images(config.getoption("image_archive"), config.getoption("image_ref"), file)
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
    uid = config.workerinput["testrunuid"] if hasattr(config, "workerinput") else uuid.uuid4().hex
    return HarnessConfig(tuple(slots), bool(use_farm), max(1, config.getoption("repeat")),
                         config.getoption("report_dir"), f"imgharness-run-{uid[:10]}", tuple(users))


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
    from harness.plugins.matrix_progress import MatrixProgress
    from harness.plugins.results import ResultCollector
    from harness.report.report_json import new_run_id

    config.addinivalue_line("markers", "check(name): the verification check a suite test belongs to")
    config.addinivalue_line("markers", "corpus(*names): the corpus images a check takes (default: all); "
                                       "the user's images are always taken")
    resolved = config.stash[config_key] = _resolve(config)
    if not hasattr(config, "workerinput"):  # the xdist controller, or a plain run, writes the report
        collector = ResultCollector(resolved.report_dir, config.getoption("run_id") or new_run_id())
        config.pluginmanager.register(collector, "harness-results")
        if config.getoption("progress_lines"):
            config.pluginmanager.register(MatrixProgress(collector), "harness-progress")


@pytest.fixture(scope="session")
def harness_config(pytestconfig: pytest.Config) -> HarnessConfig:
    return pytestconfig.stash[config_key]


@pytest.fixture(scope="session")
def engine_session(harness_config: HarnessConfig) -> Iterator[EngineSession]:
    session = EngineSession(harness_config.slots, harness_config.farm, harness_config.namespace)
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

        marker = metafunc.definition.get_closest_marker("corpus")
        names = [*(marker.args if marker else IMAGE_NAMES), *(u.name for u in metafunc.config.stash[config_key].user_images)]
        wanted = metafunc.config.getoption("image")
        metafunc.parametrize("image", [n for n in names if not wanted or n in wanted], scope="function")


ENGINE_FIXTURES = frozenset({"engine", "registry", "engine_session"})
"""Fixtures that reach engines: a test that uses one carries the `engines` marker."""


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook turns xdist_group markers into scheduling groups,
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:  # and before -m selects by marker
    """Each engine's tests form one xdist group: one daemon is never driven by two workers at once
    (saves do not compete, and a daemon restart cannot race another test).  Every test that uses an
    engine fixture is marked `engines`, so that ``-m "not engines"`` runs without a farm."""
    for item in items:
        slot = getattr(item, "callspec", None) and item.callspec.params.get("engine")  # type: ignore[attr-defined]
        if isinstance(slot, EngineSlot):
            item.add_marker(pytest.mark.xdist_group(slot.id))
        if ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.engines)


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # before xdist's own loadgroup scheduler
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Each engine's tests run on one worker: one daemon is never driven by two workers at once (saves do
    not compete, and a daemon restart cannot race another test).  See `harness.scheduling`."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from harness.scheduling import EngineScheduling

    return EngineScheduling(config, log, [s.id for s in config.stash[config_key].slots])


busy_key = pytest.StashKey[dict[str, float]]()


@pytest.fixture
def engine(request: pytest.FixtureRequest, engine_session: EngineSession) -> Engine:
    slot: EngineSlot = request.param
    try:
        engine = engine_session.engine(slot)
    except HarnessError as e:
        pytest.fail(f"engine {slot.id} unavailable: {e}", pytrace=False)
    request.node.stash[busy_key] = dict(engine.busy)  # what this test makes the engine do starts here
    return engine


@pytest.fixture
def registry(engine_session: EngineSession) -> Registry:
    try:
        return engine_session.registry()
    except HarnessError as e:
        pytest.fail(f"registry unavailable: {e}", pytrace=False)


@pytest.fixture(scope="session")
def run_namespace(harness_config: HarnessConfig) -> str:
    """A repository namespace unique to this run (shared by xdist workers): everything we tag lives under it."""
    return harness_config.namespace


@pytest.fixture(scope="session")
def run_tmp(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of this run shared by its xdist workers (and by no other run)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if hasattr(pytestconfig, "workerinput") else base


@pytest.fixture(scope="session")
def tools() -> Tools:
    """Tools the suites run (skopeo of several versions), from the package cache like the engines."""
    return Tools(package_cache(default_home()))


@pytest.fixture(scope="session")
def subjects(harness_config: HarnessConfig, run_tmp: Path, tools: Tools) -> Iterator[RunSubjects]:
    """The images the checks run on, the corpus and the user's, as this run holds them: ``subjects[name]`` is
    the run's copy (tags in the run's namespace); ``subjects.saves`` saves them, keeping each engine's first
    save for the next check's to be compared with."""
    from harness.corpus import BUSYBOX, build_corpus

    try:
        table = {name: Subject(name, path) for name, path in build_corpus(default_home()).items()}
        busybox = BUSYBOX.provision(package_cache(default_home())) / "bin" / "busybox"
        for user in harness_config.user_images:
            origin = Path(user.archive) if user.archive else fetch(
                user, run_tmp / f"user-{user.name}.tar", tools[PUBLISHER])
            table[user.name] = Subject(user.name, origin, user=True, ref=user.ref)
    except HarnessError as e:
        pytest.fail(f"cannot prepare the images: {e}", pytrace=False)
    subjects = RunSubjects(table, harness_config.namespace, run_tmp / "run-images", busybox)
    yield subjects
    subjects.saves.forget()


PUBLISHER = SKOPEO[-1].id
"""The skopeo that fetches users' registry images and publishes multi-platform images to the run's registry."""

refusal_key = pytest.StashKey[str]()


@pytest.fixture
def loaded_image(request: pytest.FixtureRequest, engine: Engine, image: str, subjects: RunSubjects,
                 registry: Registry, tools: Tools) -> str:
    """Image `image` on `engine` (once per run; pulled from the run's registry when an index holds it);
    returns its tag.  An engine that will not take it fails the test in its own words."""
    try:
        return subjects.ensure(engine, image, registry, lambda: tools[PUBLISHER])
    except Refused as e:
        request.node.stash[refusal_key] = str(e)
        pytest.fail(str(e), pytrace=False)
    except HarnessError as e:
        pytest.fail(f"cannot put {image} on {engine.id}: {e}", pytrace=False)


@pytest.fixture
def workdir(tmp_path: Path, pytestconfig: pytest.Config) -> Iterator[Path]:
    """Scratch space for archives a test saves, removed when the test ends (``--keep-saves`` leaves it to
    pytest's retention): a 1 GiB image is saved about ten times per engine, and the evidence a user reads is
    in the findings."""
    yield tmp_path
    if not pytestconfig.getoption("keep_saves"):
        shutil.rmtree(tmp_path, ignore_errors=True)


@dataclass
class Record:
    """What a suite test attaches to its result: findings, and measurements for charts."""

    findings: list[Finding] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    image: str = ""
    tools: list[Tool] = field(default_factory=list)

    def add(self, *findings: Finding) -> None:
        self.findings.extend(findings)

    def use(self, tool: Tool) -> Tool:
        """Name a tool the result depends on: its version goes into the report."""
        if tool not in self.tools:
            self.tools.append(tool)
        return tool

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
    request.node.stash[tool_cpu_key] = sum(TOOL_CPU.values())
    return rec


tool_cpu_key = pytest.StashKey[float]()
own_cpu_key = pytest.StashKey[float]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Start the test's own CPU clock before its fixtures: loading and copying the image are its work too."""
    item.stash[own_cpu_key] = time.process_time()


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
        "error": _engine_failure(call) if report.when == "call" else None,
        "refused": item.stash.get(refusal_key, None),
        "engine": slot.id if isinstance(slot, EngineSlot) else "",
        "engine_info": _engine_info(resolved) if isinstance(resolved, Engine) else None,
        "image": image,
        "findings": [f.to_json() for f in rec.findings],
        "metrics": {**rec.metrics, **_engine_seconds(item, resolved, report.when), **_tool_seconds(item, report.when),
                    **_own_seconds(item, report.when)},
        "tools": [t.to_json() for t in rec.tools],
    }))
    return report


def _tool_seconds(item: pytest.Item, when: str) -> dict[str, Any]:
    """``tool_cpu_s``: CPU seconds the test's tools (skopeo) spent: theirs, not the harness's own work."""
    if when != "call" or tool_cpu_key not in item.stash:
        return {}
    spent = round(sum(TOOL_CPU.values()) - item.stash[tool_cpu_key], 3)
    return {"tool_cpu_s": spent} if spent > 0 else {}


def _own_seconds(item: pytest.Item, when: str) -> dict[str, Any]:
    """``harness_cpu_s``: CPU seconds this process (every thread of it) spent on the test from its setup to the
    end of its call: reading, hashing, diffing, writing; not the tools' and not the engine's, which run in
    processes of their own."""
    if when != "call" or own_cpu_key not in item.stash:
        return {}
    return {"harness_cpu_s": round(time.process_time() - item.stash[own_cpu_key], 3)}


def _engine_seconds(item: pytest.Item, engine: Any, when: str) -> dict[str, Any]:
    """``engine_s``: seconds the test waited on the engine's saves, loads, pushes and pulls (its setup's
    load included), beside which the rest of its time is the harness's own work."""
    if when != "call" or not isinstance(engine, Engine) or busy_key not in item.stash:
        return {}
    before = item.stash[busy_key]
    spent = {kind: round(s - before.get(kind, 0.0), 3) for kind, s in sorted(engine.busy.items())}
    spent = {kind: s for kind, s in spent.items() if s > 0}
    return {"engine_s": spent} if spent else {}


def _engine_failure(call: pytest.CallInfo[None]) -> str | None:
    """A call that broke on something other than the check's own verdict (an engine that died, a socket
    that vanished, a harness bug) is an *error*, not a *fail*: returns its one-line reason.  An engine that
    answered and refused what was asked (an API error: a layout it cannot save, an image it does not know)
    is measured behaviour, the check's *fail* in the engine's words."""
    if call.excinfo is None or call.excinfo.errisinstance((AssertionError, pytest.fail.Exception,
                                                           pytest.skip.Exception)):
        return None  # a verdict, or a check that does not apply to the image (a single-platform one)
    if call.excinfo.errisinstance(EngineError) and not call.excinfo.errisinstance((EngineUnavailable, EngineMismatch)):
        return None
    return f"{call.excinfo.typename}: {str(call.excinfo.value).splitlines()[0] if str(call.excinfo.value) else ''}"


def _engine_info(engine: Engine) -> dict[str, Any]:
    ident = engine.identity
    return {"id": ident.id, "endpoint": engine.spec.redacted_endpoint, "version": ident.version,
            "storage": ident.storage, "os": ident.os, "arch": ident.arch}
