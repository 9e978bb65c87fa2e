"""Command-line tools the suites run against engines (skopeo), provisioned like the engines.

A tool's behaviour towards an engine is part of what the suites measure (Debian
12's skopeo 1.9.3 speaks Docker API 1.22, which Docker 25+ refuses; trixie's 1.18
negotiates), so the harness brings each version itself, from the package cache,
instead of using whatever the system has: every binary is patched onto a
sysroot of its own suite (`harness.engines.sysroot`), nothing is installed
system-wide, and the version each tool reports is what goes into the report.
"""

from __future__ import annotations

import re
import resource
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from harness.engines.packages import DebianSource, DebPackage
from harness.engines.sysroot import BOOKWORM_AMD64, TRIXIE_AMD64, PatchedSource, Sysroot
from harness.errors import HarnessError, ProvisionError


@dataclass(frozen=True)
class ToolSource:
    """One pinned version of a tool: `id` names it in test ids before it ran (skopeo-1.18)."""

    id: str
    command: str  # inside the prefix: usr/bin/skopeo
    source: PatchedSource

    @property
    def name(self) -> str:
        return Path(self.command).name


def _skopeo(suite: str, pin: str, sysroot: Sysroot) -> ToolSource:
    source = PatchedSource(f"skopeo-{pin}", DebianSource(f"skopeo-{pin}-debs", (DebPackage("skopeo", suite, pin),)),
                           sysroot)
    return ToolSource(f"skopeo-{pin}", "usr/bin/skopeo", source)


# Debian 12's (what users of this host's Debian have), then trixie's (one Docker 26 and 28 accept)
SKOPEO: tuple[ToolSource, ...] = (_skopeo("bookworm", "1.9.3", BOOKWORM_AMD64), _skopeo("trixie", "1.18", TRIXIE_AMD64))


class ToolFailed(HarnessError):
    """A tool could not be run, or failed where no engine was involved: nothing was measured."""


class ToolRefused(HarnessError):
    """The tool ran and gave up on the engine (an API version refused, an archive not taken): a measured
    verdict, carried in the tool's own words (`words`)."""

    def __init__(self, tool: Tool, words: str) -> None:
        super().__init__(f"{tool.id} ({tool.name} {tool.version}) refused: {words}")
        self.words = words


@dataclass(frozen=True)
class Tool:
    """A provisioned tool: its binary and the version it reports."""

    id: str
    name: str
    version: str
    path: Path

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "version": self.version}

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        before = _children_cpu()
        try:
            return subprocess.run([str(self.path), *args], capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ToolFailed(f"{self.id}: cannot run {self.path.name}: {e}") from e
        finally:
            CPU_SECONDS[self.id] += _children_cpu() - before


CPU_SECONDS: defaultdict[str, float] = defaultdict(float)
"""CPU seconds the tools spent in this process's runs of them, by tool id: a tool's work (skopeo compressing
a layer it pushes) is not the harness's own, and `bench/suite_cost.py` tells the two apart."""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def provision(source: ToolSource, cache: Path) -> Tool:
    """The tool from the package cache (fetched, unpacked and patched the first time)."""
    with FileLock(str(cache / ".tools.lock"), timeout=900):  # xdist workers provision at the same time
        prefix = source.source.provision(cache)
    path = prefix / source.command
    proc = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60)
    m = re.search(r"version v?(\d[\w.+~-]*)", proc.stdout)
    if proc.returncode != 0 or not m:
        raise ProvisionError(f"{source.id}: `{source.name} --version` gave no version "
                             f"(exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:200]})")
    return Tool(source.id, source.name, m.group(1), path)


class Tools:
    """The tools of one test process, provisioned on first use."""

    def __init__(self, cache: Path, sources: tuple[ToolSource, ...] = SKOPEO) -> None:
        self.cache = cache
        self.sources = {s.id: s for s in sources}
        self._tools: dict[str, Tool] = {}

    def __getitem__(self, tool_id: str) -> Tool:
        if tool_id not in self._tools:
            self._tools[tool_id] = provision(self.sources[tool_id], self.cache)
        return self._tools[tool_id]


def failure_words(stderr: str) -> str:
    """What a failed skopeo said, at its cause.

    skopeo's docker-daemon destination streams the image into a pipe that a second goroutine posts to
    the engine; when the engine refuses the request, the writer often sees only the closed pipe
    (``writing blob: io: read/write on closed pipe``) while the engine's answer goes to a debug line
    (``docker-daemon: sending done, status …``, printed with ``--debug``).  That answer is the cause."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = _message(lines[-1]) if lines else "no output"
    if "closed pipe" in last:
        for line in lines:
            m = re.search(r"docker-daemon: sending done, status (.+)", _message(line))
            if m and m.group(1) not in ("<nil>", "%!v(<nil>)"):
                return m.group(1).strip()
    return last


def _message(line: str) -> str:
    """The msg="…" of a logrus line, unescaped; the line itself otherwise."""
    m = re.search(r'msg="((?:[^"\\]|\\.)*)"', line)
    return m.group(1).replace('\\"', '"') if m else line.strip()
