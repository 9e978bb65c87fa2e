"""Provisioning without a farm: private apt options per architecture, dependency closures, wrappers for
emulated binaries, sysroot layouts, podman's own configuration, platform ids, skopeo's words; and the
tools themselves, from the package cache."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from harness.engines.emulation import wrapper_script, write_wrappers
from harness.engines.identity import identify
from harness.engines.packages import PrivateApt, parse_simulated_installs
from harness.engines.podman import containers_conf, private_config
from harness.engines.sysroot import Patchelf, Sysroot
from harness.settings import default_home, package_cache
from harness.tools import SKOPEO, Tools, failure_words


def test_private_apt_for_another_architecture_sees_only_that_architecture(tmp_path: Path) -> None:
    native, arm = PrivateApt.for_arch(tmp_path, ("sid",), None), PrivateApt.for_arch(tmp_path, ("sid",), "arm64")
    assert native.root != arm.root, "lists of two architectures must not share one state"
    opts = arm._opts()
    assert "APT::Architecture=arm64" in opts and "APT::Architectures::=arm64" in opts
    assert not any("Architecture" in o for o in native._opts())
    assert all(o.startswith(("Dir::", "APT::Sandbox", "Debug::")) for o in native._opts()[1::2])


def test_simulated_install_lists_every_package_with_its_version() -> None:
    out = ("NOTE: This is only a simulation!\n"
           "Inst gcc-16-base (16.2.0-4 Debian:unstable [arm64])\n"
           "Inst libgcc-s1 (16.2.0-4 Debian:unstable [arm64]) []\n"
           "Inst libc6 [2.36-9] (2.43-7 Debian:unstable [arm64])\n"
           "Conf libc6 (2.43-7 Debian:unstable [arm64])\n")
    assert parse_simulated_installs(out) == [("gcc-16-base", "16.2.0-4"), ("libgcc-s1", "16.2.0-4"),
                                             ("libc6", "2.43-7")]


def test_wrapper_execs_the_emulator_on_the_real_binary_with_the_arguments(tmp_path: Path) -> None:
    """With a script standing in for qemu, running the wrapper shows exactly what qemu would get."""
    emulator = tmp_path / "fake qemu"
    emulator.write_text('#!/bin/sh\necho "prefix=$QEMU_LD_PREFIX"\nprintf "[%s]" "$@"\n')
    emulator.chmod(0o755)
    wrapper = tmp_path / "containerd"
    target = tmp_path / "real dir" / "containerd"
    wrapper.write_text(wrapper_script(emulator, tmp_path / "sys root", target))
    wrapper.chmod(0o755)
    out = subprocess.run([str(wrapper), "--config", "a b", "$HOME"], capture_output=True, text=True, check=True)
    assert out.stdout == f"prefix={tmp_path / 'sys root'}\n[{target}][--config][a b][$HOME]"


def test_every_executable_and_link_to_one_gets_a_wrapper_and_nothing_else(tmp_path: Path) -> None:
    binaries, wrappers = tmp_path / "arm64", tmp_path / "wrapped"
    (binaries / "usr/bin").mkdir(parents=True)
    (binaries / "usr/sbin").mkdir(parents=True)
    shutil.copy("/bin/true", binaries / "usr/sbin/runc")          # an ELF executable
    shutil.copy("/bin/true", binaries / "usr/bin/tini-static")
    (binaries / "usr/bin/docker-init").symlink_to("tini-static")   # dockerd looks for docker-init
    (binaries / "usr/bin/runc").symlink_to("../sbin/runc")
    (binaries / "usr/bin/script").write_text("#!/bin/sh\n")       # not ELF: runs natively as it is
    (binaries / "usr/bin/script").chmod(0o755)
    shutil.copy("/bin/true", binaries / "usr/bin/data")           # ELF but not executable
    (binaries / "usr/bin/data").chmod(0o644)
    made = write_wrappers(binaries, wrappers, Path("/q"), tmp_path / "root")
    assert sorted(made) == ["usr/bin/docker-init", "usr/bin/runc", "usr/bin/tini-static", "usr/sbin/runc"]
    assert str(binaries / "usr/bin/tini-static") in (wrappers / "usr/bin/docker-init").read_text()
    assert str((binaries / "usr/sbin/runc").resolve()) in (wrappers / "usr/bin/runc").read_text()


def test_sysroot_libraries_before_and_after_merged_usr(tmp_path: Path) -> None:
    merged, split = tmp_path / "trixie", tmp_path / "bookworm"
    (merged / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    (merged / "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2").touch()
    (merged / "lib").symlink_to("usr/lib")
    (split / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    (split / "lib/x86_64-linux-gnu").mkdir(parents=True)
    (split / "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2").touch()
    root = Sysroot("x", "amd64", ())
    assert root.libdirs(merged) == [merged / "usr/lib/x86_64-linux-gnu"]
    assert root.loader(merged) == merged / "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    assert root.libdirs(split) == [split / "usr/lib/x86_64-linux-gnu", split / "lib/x86_64-linux-gnu"]
    assert root.loader(split) == split / "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"


def test_podman_from_the_cache_names_its_own_helpers_and_configuration(tmp_path: Path) -> None:
    prefix = Path("/cache/roots/podman-5.4.2")
    conf = tomllib.loads(containers_conf(prefix))
    assert conf["engine"]["helper_binaries_dir"] == [f"{prefix}/usr/lib/podman", f"{prefix}/usr/libexec/podman"]
    assert conf["engine"]["conmon_path"] == [f"{prefix}/usr/bin/conmon"]
    assert conf["engine"]["runtimes"]["crun"] == [f"{prefix}/usr/bin/crun"]
    assert conf["network"]["network_backend"] == "netavark"
    env = private_config(prefix, tmp_path)
    assert Path(env["HOME"], ".config/containers/policy.json").is_file()
    assert tomllib.loads(Path(env["CONTAINERS_STORAGE_CONF"]).read_text())["storage"]["driver"] == "overlay"


def test_ids_carry_a_platform_other_than_linux_amd64() -> None:
    version = {"Version": "28.5.2+dfsg4", "ApiVersion": "1.51", "Os": "linux", "Arch": "arm64"}
    info = {"Driver": "overlayfs", "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]],
            "Architecture": "aarch64", "OSType": "linux"}
    arm = identify(version, info)
    assert (arm.platform, arm.id) == ("linux/arm64", "docker-28.5.2-containerd-arm64")
    amd = identify(dict(version, Arch="amd64"), dict(info, Architecture="x86_64"))
    assert (amd.platform, amd.id) == ("linux/amd64", "docker-28.5.2-containerd")
    # an engine whose /version has no Arch: the kernel's machine name from /info, normalized
    bare = identify({"Version": "20.10.24"}, {"Driver": "overlay2", "Architecture": "armv7l", "OSType": "linux"})
    assert (bare.platform, bare.id) == ("linux/arm/v7", "docker-20.10.24-overlay2-arm-v7")


def test_skopeo_words_name_the_engine_refusal_not_the_closed_pipe() -> None:
    refusal = ("saving image to docker engine: Error response from daemon: client version 1.22 is too old. "
               "Minimum supported API version is 1.24, please upgrade your client to a newer version")
    stderr = ('time="t" level=debug msg="docker-daemon: sending done, status ' + refusal + '"\n'
              'time="t" level=fatal msg="writing blob: io: read/write on closed pipe"\n')
    assert failure_words(stderr) == refusal
    told = 'time="t" level=fatal msg="writing blob: ' + refusal + '"\n'
    assert failure_words(told) == "writing blob: " + refusal
    assert failure_words('level=fatal msg="initializing source docker://x: \\"quoted\\""') == \
        'initializing source docker://x: "quoted"'
    assert failure_words("") == "no output"


@pytest.mark.parametrize("source", SKOPEO, ids=[s.id for s in SKOPEO])
def test_skopeo_comes_from_the_package_cache_and_reports_its_version(source) -> None:  # type: ignore[no-untyped-def]
    """Each pinned skopeo is provisioned by the harness (not the system's), patched onto its own sysroot,
    and runs: its reported version is the pinned one."""
    cache = package_cache(default_home())
    tool = Tools(cache)[source.id]
    assert tool.version.startswith(source.id.removeprefix("skopeo-"))
    assert tool.path.is_relative_to(cache / "roots")
    interpreter = Patchelf(cache).interpreter(tool.path)
    assert interpreter is not None and interpreter.startswith(str(cache / "roots" / "sysroot-"))
    proc = tool.run("inspect", "--help", timeout=60)
    assert proc.returncode == 0 and "inspect" in proc.stdout


def test_each_engine_is_one_scheduling_group() -> None:
    """Under pytest 9 xdist's @group suffix is gone from node ids: the engine in the test id groups instead."""
    from harness.scheduling import engine_scope

    ids = ["docker-28.5.2-overlay2", "docker-28.5.2-overlay2-arm64", "podman-5.4.2-overlay"]
    assert engine_scope("suites/a.py::test_x[docker-28.5.2-overlay2-arm64-basic-skopeo-1.18-oci-archive]", ids) \
        == "docker-28.5.2-overlay2-arm64"
    assert engine_scope("suites/a.py::test_x[docker-28.5.2-overlay2-basic]", ids) == "docker-28.5.2-overlay2"
    assert engine_scope("suites/a.py::test_x[docker-28.5.2-overlay2]", ids) == "docker-28.5.2-overlay2"
    assert engine_scope("suites/a.py::test_x[podman-5.4.2-overlay]@farm", ids) == "farm"  # xdist's own, if present
    assert engine_scope("tests/b.py::test_y[basic]", ids) == "tests/b.py::test_y[basic]"
    assert engine_scope("tests/b.py::test_z", ids) == "tests/b.py::test_z"


def test_keep_only_leaves_the_named_files(tmp_path: Path) -> None:
    from harness.engines.packages import _keep_only
    from harness.errors import ProvisionError

    for rel in ("usr/bin/qemu-aarch64-static", "usr/bin/qemu-mips-static", "usr/share/doc/q/copyright"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    _keep_only(tmp_path, {"usr/bin/qemu-aarch64-static"})
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "usr", "usr/bin", "usr/bin/qemu-aarch64-static"]
    with pytest.raises(ProvisionError, match="no usr/bin/qemu-x-static"):
        _keep_only(tmp_path, {"usr/bin/qemu-x-static"})
