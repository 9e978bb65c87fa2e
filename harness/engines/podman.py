"""Configuration for a podman that lives in the package cache rather than in /usr.

Debian's podman looks for its helpers (conmon, the OCI runtime, netavark,
catatonit) and its configuration (containers.conf, storage.conf, policy.json)
in system paths.  A podman unpacked from a newer suite must find its *own*
helpers, never the system's older ones (Debian 12's containers.conf names CNI,
which Podman 5 no longer has): each farm daemon gets its own files, named
through ``CONTAINERS_CONF``, ``CONTAINERS_STORAGE_CONF`` and, for the
signature policy (read from ``$HOME/.config/containers/policy.json`` before
/etc), its own ``HOME``.
"""

from __future__ import annotations

import json
from pathlib import Path

POLICY = {"default": [{"type": "insecureAcceptAnything"}]}  # the farm's images are its own, made offline


def _toml_list(paths: list[Path]) -> str:
    return "[" + ", ".join(json.dumps(str(p)) for p in paths) + "]"


def containers_conf(prefix: Path) -> str:
    """containers.conf naming the helpers inside `prefix` (a podman prefix from the package cache)."""
    bin_ = prefix / "usr" / "bin"
    return (
        "[engine]\n"
        f"helper_binaries_dir = {_toml_list([prefix / 'usr/lib/podman', prefix / 'usr/libexec/podman'])}\n"
        f"conmon_path = {_toml_list([bin_ / 'conmon'])}\n"
        f"init_path = {json.dumps(str(bin_ / 'catatonit'))}\n"
        'runtime = "crun"\n'
        "[engine.runtimes]\n"
        f"crun = {_toml_list([bin_ / 'crun'])}\n"
        "[network]\n"
        'network_backend = "netavark"\n')


def private_config(prefix: Path, directory: Path) -> dict[str, str]:
    """Write the daemon's own configuration files into `directory`; returns the environment naming them."""
    home = directory / "home"
    (home / ".config" / "containers").mkdir(parents=True, exist_ok=True)
    (home / ".config" / "containers" / "policy.json").write_text(json.dumps(POLICY))
    (directory / "containers.conf").write_text(containers_conf(prefix))
    (directory / "storage.conf").write_text('[storage]\ndriver = "overlay"\n')
    return {"CONTAINERS_CONF": str(directory / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(directory / "storage.conf"), "HOME": str(home)}
