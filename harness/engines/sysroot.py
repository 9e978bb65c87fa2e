"""Binaries built for a newer Debian, or for another architecture, made to run on this one.

Debian 12's libc is older than what trixie's and sid's binaries link against, and
an arm64 binary needs arm64 libraries whatever its suite.  Either way the binary
gets a *sysroot*: the dependency closure of a few library packages of its own
suite and architecture, unpacked side by side (``<cache>/roots/sysroot-<suite>-<arch>/``,
with merged /usr's ``lib -> usr/lib``).  Nothing is installed system-wide.

- `PatchedSource` (same architecture): every dynamic executable gets the
  sysroot's loader as its interpreter and the sysroot's library directory as its
  RPATH (`patchelf --force-rpath`: a RUNPATH would not be searched for indirect
  libraries such as libassuan).  Running through the loader instead
  (``ld.so --library-path``) is not enough for podman: layer unpacking re-executes
  ``/proc/self/exe``, which is then the loader.
- `harness.engines.emulation` (another architecture) runs binaries under
  qemu-user with the sysroot as ``QEMU_LD_PREFIX``.

Before a prefix is handed out, every library its binaries need (``NEEDED``,
followed through the libraries found) must be in the sysroot: a missing one is
a `ProvisionError` naming it, not a daemon that dies at start-up.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from harness.engines.packages import MARKER, DebianSource, DebPackage, PrivateApt, need_apt, unpack
from harness.errors import ProvisionError

# Debian architecture → (multiarch triplet, dynamic loader's file name)
ABI = {
    "amd64": ("x86_64-linux-gnu", "ld-linux-x86-64.so.2"),
    "arm64": ("aarch64-linux-gnu", "ld-linux-aarch64.so.1"),
}
PATCHELF = DebianSource("patchelf", (DebPackage("patchelf", "bookworm"),))
ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True)
class Sysroot:
    """The libraries of one Debian suite and architecture: `roots` and everything they depend on."""

    suite: str
    arch: str
    roots: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"sysroot-{self.suite}-{self.arch}"

    def libdirs(self, root: Path) -> list[Path]:
        """Where the sysroot's libraries are: /usr/lib/<triplet>, and /lib/<triplet> before merged /usr."""
        triplet = ABI[self.arch][0]
        dirs = [root / "usr" / "lib" / triplet, root / "lib" / triplet]
        return [d for d in dirs if d.is_dir() and not d.is_symlink() and not d.parent.is_symlink()] or dirs[:1]

    def loader(self, root: Path) -> Path:
        found = [d / ABI[self.arch][1] for d in self.libdirs(root) if (d / ABI[self.arch][1]).exists()]
        return found[0] if found else self.libdirs(root)[0] / ABI[self.arch][1]

    def provision(self, cache: Path) -> Path:
        root = cache / "roots" / self.name
        wanted = sorted(self.roots)
        marker = root / MARKER
        if marker.exists() and json.loads(marker.read_text()).get("roots") == wanted:
            return root
        need_apt()
        apt = PrivateApt.for_arch(cache, (self.suite,), self.arch)
        debs = [apt.fetch(name, version, cache / "debs" / self.suite) for name, version in apt.closure(self.roots)]
        staging = root.with_name(root.name + ".partial")
        unpack(debs, staging)
        for link in ("lib", "lib64"):  # merged /usr: binaries name /lib/ld-linux-… as their interpreter
            if (staging / "usr" / link).is_dir() and not (staging / link).exists():
                (staging / link).symlink_to(f"usr/{link}")
        if not self.loader(staging).exists():
            raise ProvisionError(f"{self.name}: no loader at {self.loader(staging).relative_to(staging)} after unpacking")
        (staging / MARKER).write_text(json.dumps({"roots": wanted, "debs": sorted(d.name for d in debs)}))
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)
        return root


def elf_executables(prefix: Path, dirs: tuple[str, ...]) -> Iterator[Path]:
    """Regular ELF files with an execute bit under `dirs` of `prefix` (symlinks are not followed)."""
    for d in dirs:
        base = prefix / d
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_symlink() or not path.is_file() or not path.stat().st_mode & 0o111:
                continue
            with open(path, "rb") as f:
                if f.read(4) == ELF_MAGIC:
                    yield path


class Patchelf:
    """Debian 12's patchelf, from the package cache."""

    def __init__(self, cache: Path) -> None:
        self.binary = PATCHELF.provision(cache) / "usr" / "bin" / "patchelf"

    def _run(self, *args: str) -> str:
        proc = subprocess.run([str(self.binary), *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ProvisionError(f"patchelf {' '.join(args[:-1])} {Path(args[-1]).name} failed: "
                                 f"{proc.stderr.strip()[:200]}")
        return proc.stdout

    def interpreter(self, path: Path) -> str | None:
        """The program interpreter, or None for static binaries and libraries."""
        try:
            return self._run("--print-interpreter", str(path)).strip() or None
        except ProvisionError:
            return None

    def needed(self, path: Path) -> list[str]:
        """The libraries `path` names (DT_NEEDED); none for a static binary."""
        proc = subprocess.run([str(self.binary), "--print-needed", str(path)], capture_output=True, text=True)
        if proc.returncode != 0 and "statically linked" in proc.stderr:
            return []
        if proc.returncode != 0:
            raise ProvisionError(f"patchelf --print-needed {path.name} failed: {proc.stderr.strip()[:200]}")
        return proc.stdout.split()

    def patch(self, path: Path, loader: Path, libdirs: list[Path]) -> None:
        rpath = ":".join(str(d) for d in libdirs)
        self._run("--set-interpreter", str(loader), "--force-rpath", "--set-rpath", rpath, str(path))

    def missing_libraries(self, binaries: list[Path], libdirs: list[Path]) -> dict[str, str]:
        """soname → the binary that needs it, for every library not found in `libdirs`, followed
        through the libraries that are found."""
        missing: dict[str, str] = {}
        seen: set[str] = set()
        todo = [(b, b.name) for b in binaries]
        while todo:
            path, who = todo.pop()
            for soname in self.needed(path):
                if soname in seen:
                    continue
                seen.add(soname)
                found = next((d / soname for d in libdirs if (d / soname).exists()), None)
                if found is None:
                    missing[soname] = who
                else:
                    todo.append((found.resolve(), who))
        return missing


def check_libraries(patchelf: Patchelf, name: str, binaries: list[Path], libdirs: list[Path]) -> None:
    missing = patchelf.missing_libraries(binaries, libdirs)
    if missing:
        listed = ", ".join(f"{lib} (for {who})" for lib, who in sorted(missing.items()))
        raise ProvisionError(f"{name}: libraries missing from the sysroot: {listed}",
                             hint="add their packages to the sysroot's roots")


@dataclass(frozen=True)
class PatchedSource:
    """Binaries of a newer Debian on this one: `packages` unpacked, every dynamic executable under
    `dirs` patched to load from `sysroot` (``<cache>/roots/<name>/``, same layout as a DebianSource)."""

    name: str
    packages: DebianSource
    sysroot: Sysroot
    dirs: tuple[str, ...] = ("usr/bin", "usr/sbin", "usr/lib", "usr/libexec")

    def provision(self, cache: Path) -> Path:
        prefix = cache / "roots" / self.name
        base = self.packages.provision(cache)
        root = self.sysroot.provision(cache)
        stamp = {"packages": json.loads((base / MARKER).read_text()), "sysroot": json.loads((root / MARKER).read_text())}
        marker = prefix / MARKER
        if marker.exists() and json.loads(marker.read_text()) == stamp:
            return prefix
        patchelf = Patchelf(cache)
        staging = prefix.with_name(prefix.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(base, staging, symlinks=True)
        (staging / MARKER).unlink()
        loader, libdirs = self.sysroot.loader(root), self.sysroot.libdirs(root)
        patched = [p for p in elf_executables(staging, self.dirs) if patchelf.interpreter(p)]
        if not patched:
            raise ProvisionError(f"{self.name}: no dynamic executable to patch under {', '.join(self.dirs)}")
        for path in patched:
            patchelf.patch(path, loader, libdirs)
        check_libraries(patchelf, self.name, patched, libdirs)
        (staging / MARKER).write_text(json.dumps(stamp))
        shutil.rmtree(prefix, ignore_errors=True)
        staging.rename(prefix)
        return prefix


# The sysroots the farm and its tools use: each is the union of what its binaries need (checked on provisioning).
BOOKWORM_AMD64 = Sysroot("bookworm", "amd64", ("libc6", "libdevmapper1.02.1", "libgpgme11"))
SID_ARM64 = Sysroot("sid", "arm64", ("libc6", "libseccomp2", "libsystemd0"))
TRIXIE_AMD64 = Sysroot("trixie", "amd64", (
    "libc6", "libassuan9", "libcap2", "libglib2.0-0t64", "libgpg-error0", "libgpgme11t64", "libseccomp2",
    "libsqlite3-0", "libsubid5", "libsystemd0", "libyajl2"))
