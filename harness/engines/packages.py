"""Engine binaries from Debian packages, fetched once and unpacked side by side.

Several Docker versions must live on one host without touching the system's
package state, so each engine gets its own prefix: `apt-get download` into a
cache with a *private* apt state (its own lists and sources.list, built from the
mirror this machine's apt already uses), then `dpkg -x` into
``<cache>/roots/<name>/``.  A prefix that was provisioned before is reused as is:
a second `up` downloads nothing.  Sources are pluggable (`EngineSource`): a static
Docker release tarball serves as well where a user has one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.errors import ProvisionError

DEBIAN_SOURCES = (Path("/etc/apt/sources.list.d"), Path("/etc/apt/sources.list"))
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
MARKER = ".provisioned.json"


class EngineSource(Protocol):
    """Something that can produce a prefix holding an engine's binaries."""

    @property
    def name(self) -> str:
        """Unique name of the prefix; engines sharing binaries share it."""

    def provision(self, cache: Path) -> Path:
        """Return the prefix (with usr/bin, usr/sbin), fetching and unpacking if needed."""


@dataclass(frozen=True)
class DebPackage:
    """One package from one Debian suite; `upstream` pins the upstream version (prefix match: 1.18
    takes 1.18.0+ds1-1, not 1.180);
    `arch` is a Debian architecture (arm64) for another machine's binaries, None for this machine's."""

    name: str
    suite: str
    upstream: str | None = None
    arch: str | None = None


def debian_mirror() -> tuple[str, str]:
    """The Debian mirror URI and keyring this machine's apt is configured with."""
    for base in DEBIAN_SOURCES:
        files = sorted(base.glob("*.sources")) if base.is_dir() else [base] if base.exists() else []
        for f in files:
            for stanza in f.read_text(errors="replace").split("\n\n"):
                fields = dict(
                    (k.strip(), v.strip())
                    for k, _, v in (line.partition(":") for line in stanza.splitlines())
                    if not k.startswith("#") and v
                )
                uris = fields.get("URIs", "").split()
                if uris and "main" in fields.get("Components", "").split() and "security" not in uris[0]:
                    return uris[0], fields.get("Signed-By", KEYRING)
        if base.is_file():
            for line in base.read_text(errors="replace").splitlines():
                m = re.match(r"deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+\s+.*\bmain\b", line)
                if m and "security" not in m.group(1):
                    return m.group(1), KEYRING
    raise ProvisionError("no Debian mirror found in this machine's apt configuration",
                         hint="engines come from Debian packages; use --engine for engines you run yourself")


class PrivateApt:
    """An apt state of our own: lists and sources for several suites, invisible to the system's apt.

    With `arch` (arm64) it sees only that architecture's packages, as apt on such a machine would:
    one state per architecture (`for_arch`), since lists and resolution depend on it."""

    def __init__(self, root: Path, suites: tuple[str, ...], arch: str | None = None) -> None:
        self.root = root
        self.suites = suites
        self.arch = arch
        self._updated = False

    @classmethod
    def for_arch(cls, cache: Path, suites: tuple[str, ...], arch: str | None) -> PrivateApt:
        return cls(cache / ("apt" if arch is None else f"apt-{arch}"), suites, arch)

    def _opts(self) -> list[str]:
        r = self.root
        arch = ["-o", f"APT::Architecture={self.arch}", "-o", f"APT::Architectures::={self.arch}"] if self.arch else []
        return [
            "-o", f"Dir::State::Lists={r / 'lists'}",
            "-o", f"Dir::Etc::sourcelist={r / 'sources.list'}",
            "-o", f"Dir::Etc::sourceparts={r / 'parts'}",
            "-o", f"Dir::Cache={r / 'cache'}",
            "-o", "Dir::State::status=/dev/null",
            "-o", "APT::Sandbox::User=root",
            "-o", "Debug::NoLocking=1",
            *arch,
        ]

    def update(self) -> None:
        if self._updated:
            return
        mirror, keyring = debian_mirror()
        for d in ("lists/partial", "parts", "cache/archives/partial"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "sources.list").write_text(
            "".join(f"deb [signed-by={keyring}] {mirror} {s} main\n" for s in self.suites))
        self._run(["apt-get", *self._opts(), "update"], "apt-get update")
        self._updated = True

    def resolve(self, pkg: DebPackage) -> str:
        """The exact Debian version of `pkg` in its suite, checked against the pinned upstream version."""
        self.update()
        out = self._run(["apt-cache", *self._opts(), "madison", pkg.name], "apt-cache madison")
        found = []
        for line in out.splitlines():
            cols = [c.strip() for c in line.split("|")]
            if len(cols) >= 3 and re.search(rf"\s{re.escape(pkg.suite)}(/|\s|$)", f" {cols[2]}"):
                found.append(cols[1])
        for version in found:
            upstream = re.sub(r"^\d+:", "", version)
            if pkg.upstream is None or any(upstream.startswith(pkg.upstream + sep) for sep in "+-~."):
                return version
        raise ProvisionError(
            f"{pkg.suite} has no {pkg.name} {pkg.upstream or ''}".rstrip() + f" (it has: {', '.join(found) or 'none'})",
            hint="the suite moved on; pin another version or bring the engine with --engine")

    def closure(self, names: tuple[str, ...]) -> list[tuple[str, str]]:
        """(package, exact version) of `names` and everything they depend on (no recommends), as apt
        resolves it for an empty system of this state's suites and architecture."""
        self.update()
        out = self._run(["apt-get", *self._opts(), "-s", "install", "--no-install-recommends", *names],
                        "apt-get -s install")
        return parse_simulated_installs(out)

    def download(self, pkg: DebPackage, dest: Path) -> Path:
        return self.fetch(pkg.name, self.resolve(pkg), dest)

    def fetch(self, name: str, version: str, dest: Path) -> Path:
        """The .deb of `name` at exactly `version` for this state's architecture, downloaded once."""
        dest.mkdir(parents=True, exist_ok=True)
        found = self._cached_deb(name, version, dest)
        if found is None:
            self._run(["apt-get", *self._opts(), "download", f"{name}={version}"], "apt-get download", cwd=dest)
            found = self._cached_deb(name, version, dest)
        if found is None:
            raise ProvisionError(f"apt-get download {name}={version} left no .deb in {dest}")
        return found

    def _cached_deb(self, name: str, version: str, dest: Path) -> Path | None:
        stem = version.replace(":", "%3a")
        arches = {self.arch or _native_arch(), "all"}
        for f in dest.glob(f"{name}_*.deb"):
            if any(f.name == f"{name}_{stem}_{a}.deb" for a in arches):
                return f
        return None

    @staticmethod
    def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
        try:
            proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ProvisionError(f"{what} failed: {e}") from e
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ProvisionError(f"{what} failed (exit {proc.returncode}): {tail[0]}")
        return proc.stdout


def parse_simulated_installs(text: str) -> list[tuple[str, str]]:
    """(package, version) of every ``Inst name (version suite [arch])`` line of ``apt-get -s install``."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) ", text, re.M)]


def _native_arch() -> str:
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip() or "amd64"
    except OSError:
        return "amd64"


def unpack(debs: list[Path], staging: Path) -> None:
    """`dpkg -x` each package into `staging` (made empty first)."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for deb in debs:
        proc = subprocess.run(["dpkg", "-x", str(deb), str(staging)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ProvisionError(f"dpkg -x {deb.name} failed: {proc.stderr.strip()[:200]}")


def need_apt() -> None:
    if shutil.which("dpkg") is None or shutil.which("apt-get") is None:
        raise ProvisionError("apt-get and dpkg are needed to provision engines from Debian packages")


def _keep_only(root: Path, keep: set[str]) -> None:
    """Remove every file under `root` but those named in `keep` (paths relative to `root`)."""
    missing = [k for k in keep if not (root / k).is_file()]
    if missing:
        raise ProvisionError(f"the packages have no {', '.join(sorted(missing))}")
    for path in sorted(root.rglob("*"), reverse=True):  # deepest first: directories empty before they go
        rel = str(path.relative_to(root))
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        elif rel not in keep:
            path.unlink()


@dataclass(frozen=True)
class DebianSource:
    """An engine prefix unpacked from Debian packages of one or more suites.

    `links` are symlinks made inside the prefix after unpacking (relative to the
    prefix), e.g. ``usr/bin/docker-init -> tini-static`` for dockerd's init.
    `keep`, when given, are the only files kept (qemu-user-static unpacks 370 MB
    of emulators, of which the farm runs one).
    """

    name: str
    packages: tuple[DebPackage, ...]
    links: tuple[tuple[str, str], ...] = ()
    keep: tuple[str, ...] = ()

    def provision(self, cache: Path) -> Path:
        prefix = cache / "roots" / self.name
        marker = prefix / MARKER
        wanted = [f"{p.name}/{p.suite}/{p.upstream}" + (f"/{p.arch}" if p.arch else "") for p in self.packages]
        wanted += [f"keep:{k}" for k in self.keep]
        if marker.exists() and json.loads(marker.read_text()).get("packages") == wanted:
            return prefix
        need_apt()
        apts = {arch: PrivateApt.for_arch(cache, tuple(sorted({p.suite for p in self.packages if p.arch == arch})), arch)
                for arch in {p.arch for p in self.packages}}
        debs = [apts[p.arch].download(p, cache / "debs" / p.suite) for p in self.packages]
        staging = prefix.with_name(prefix.name + ".partial")
        unpack(debs, staging)
        if self.keep:
            _keep_only(staging, set(self.keep))
        for link, target in self.links:
            path = staging / link
            if path.is_symlink() or path.exists():
                path.unlink()
            path.symlink_to(target)
        (staging / MARKER).write_text(json.dumps({"packages": wanted, "debs": [d.name for d in debs]}))
        shutil.rmtree(prefix, ignore_errors=True)
        staging.rename(prefix)
        return prefix


@dataclass(frozen=True)
class TarballSource:
    """A static Docker release tarball (`docker-<ver>.tgz`: docker/dockerd, containerd, runc, docker-init…)."""

    name: str
    tarball: Path

    def provision(self, cache: Path) -> Path:
        prefix = cache / "roots" / self.name
        bindir = prefix / "usr" / "bin"
        if (prefix / MARKER).exists():
            return prefix
        if not self.tarball.is_file():
            raise ProvisionError(f"no such tarball: {self.tarball}")
        bindir.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(self.tarball) as tf:
                for member in tf:
                    if member.isfile() and member.name.startswith("docker/") and "/" not in member.name[7:]:
                        src = tf.extractfile(member)
                        assert src is not None
                        target = bindir / member.name[7:]
                        with src, open(target, "wb") as out:
                            shutil.copyfileobj(src, out)
                        os.chmod(target, 0o755)
        except (tarfile.TarError, OSError) as e:
            raise ProvisionError(f"{self.tarball}: not a Docker release tarball ({e})") from e
        (prefix / "usr" / "sbin").mkdir(exist_ok=True)
        (prefix / MARKER).write_text(json.dumps({"tarball": str(self.tarball)}))
        return prefix


@dataclass(frozen=True)
class SystemSource:
    """An engine installed system-wide by apt (podman pulls in conmon, crun, configs under /etc)."""

    name: str
    binary: str
    apt_packages: tuple[str, ...]

    def provision(self, cache: Path) -> Path:
        if shutil.which(self.binary) is None:
            if os.geteuid() != 0:
                raise ProvisionError(f"{self.binary} is not installed",
                                     hint=f"apt-get install {' '.join(self.apt_packages)}")
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            proc = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *self.apt_packages],
                                  capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                subprocess.run(["apt-get", "update"], capture_output=True)
                proc = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *self.apt_packages],
                                      capture_output=True, text=True, env=env)
            if proc.returncode != 0 or shutil.which(self.binary) is None:
                raise ProvisionError(f"apt-get install {' '.join(self.apt_packages)} failed: "
                                     f"{proc.stderr.strip().splitlines()[-1:] or ''}")
        return Path("/")
