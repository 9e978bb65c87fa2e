"""Engines of another architecture, run under user-mode emulation (qemu-user).

There is no binfmt_misc here, so the kernel cannot start a foreign binary by
itself: a daemon that execs a helper (dockerd → containerd, runc, docker-init)
would fail.  Every executable of the foreign prefix therefore gets a *wrapper*,
a shell script of the same name that execs Debian 12's static qemu on the real
binary with the sysroot as ``QEMU_LD_PREFIX``; the wrappers form the prefix the
farm starts the daemon from and puts first on its PATH.  A wrapper ``exec``s, so
the pid the farm records is the emulator running the daemon, and stopping it by
pid (and its process tree) ends the emulated helpers too.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.engines.packages import MARKER, DebianSource, DebPackage
from harness.engines.sysroot import Patchelf, Sysroot, check_libraries, elf_executables
from harness.errors import ProvisionError

# Debian architecture → qemu's name for it
QEMU_ARCH = {"arm64": "aarch64", "armhf": "arm", "ppc64el": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
QEMU = DebianSource("qemu-user-static", (DebPackage("qemu-user-static", "bookworm"),),
                    keep=tuple(f"usr/bin/qemu-{arch}-static" for arch in sorted(set(QEMU_ARCH.values()))))
WRAPPED_DIRS = ("usr/bin", "usr/sbin")


def wrapper_script(emulator: Path, sysroot: Path, target: Path) -> str:
    """A shell script that runs the foreign binary `target` under `emulator`, arguments as given."""
    return ("#!/bin/sh\n"
            "# imgharness: a foreign-architecture binary, run under user-mode emulation (no binfmt_misc here)\n"
            f"QEMU_LD_PREFIX={shlex.quote(str(sysroot))} exec {shlex.quote(str(emulator))} "
            f"{shlex.quote(str(target))} \"$@\"\n")


def write_wrappers(binaries: Path, wrappers: Path, emulator: Path, sysroot: Path) -> list[str]:
    """A wrapper in `wrappers` for every executable (and every link to one) under `binaries`' bin dirs;
    returns their relative paths."""
    made = []
    real = list(elf_executables(binaries, WRAPPED_DIRS))
    resolved = {p.resolve() for p in real}
    for d in WRAPPED_DIRS:
        src = binaries / d
        if not src.is_dir():
            continue
        here = {p.name: p for p in real if p.parent == src}
        links = {p.name: p.resolve() for p in src.iterdir() if p.is_symlink() and p.resolve() in resolved}
        for name, target in sorted({**here, **links}.items()):
            out = wrappers / d / name
            out.parent.mkdir(parents=True, exist_ok=True)
            _write_executable(out, wrapper_script(emulator, sysroot, target))
            made.append(f"{d}/{name}")
    return made


def _write_executable(out: Path, text: str) -> None:
    """`out` made to hold `text`, executable: left alone when it does already, else replaced atomically
    through a temp file of its own (a daemon of another farm, or another worker restarting one, may be
    starting from this prefix and writing the same wrappers at the same moment)."""
    try:
        if out.read_text() == text and os.access(out, os.X_OK):
            return
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class EmulatedSource:
    """An engine prefix of another architecture (`packages`, their `arch`), as wrappers the farm can start."""

    name: str
    packages: DebianSource
    sysroot: Sysroot

    @property
    def arch(self) -> str:
        return self.sysroot.arch

    def emulator(self, cache: Path) -> Path:
        qemu = QEMU.provision(cache) / "usr" / "bin" / f"qemu-{QEMU_ARCH[self.arch]}-static"
        if not qemu.exists():
            raise ProvisionError(f"{QEMU.name} has no {qemu.name}")
        return qemu

    def provision(self, cache: Path) -> Path:
        binaries = self.packages.provision(cache)
        root = self.sysroot.provision(cache)
        emulator = self.emulator(cache)
        check_libraries(Patchelf(cache), self.name, list(elf_executables(binaries, WRAPPED_DIRS)),
                        self.sysroot.libdirs(root))
        prefix = cache / "roots" / self.name
        made = write_wrappers(binaries, prefix, emulator, root)
        if "usr/sbin/dockerd" not in made and "usr/bin/podman" not in made:
            raise ProvisionError(f"{self.name}: no daemon among the wrapped binaries ({', '.join(made) or 'none'})")
        (prefix / MARKER).write_text(json.dumps({"wraps": str(binaries), "sysroot": str(root), "binaries": made}))
        return prefix
