"""Docker contexts, read from the docker CLI's own files the way `docker context` reads them.

Layout (docker/cli `cli/config/config.go`, `cli/context/store/{metadatastore,tlsstore}.go`)::

    $DOCKER_CONFIG, else ~/.docker/
        config.json                                  {"currentContext": NAME, ...}
        contexts/meta/<sha256(NAME)>/meta.json       {"Name": NAME, "Metadata": {"Description": ...},
                                                      "Endpoints": {"docker": {"Host": ..., "SkipTLSVerify": bool}}}
        contexts/tls/<sha256(NAME)>/docker/{ca,cert,key}.pem     each one optional

As in the CLI (`cli/command/cli.go`): the current context is `default` when DOCKER_HOST
is set, else DOCKER_CONTEXT, else config.json's currentContext, else `default`; and
`default` is never stored: it is DOCKER_HOST (or the local socket) with TLS from the
environment.  A tcp:// context uses TLS when it has a tls/…/docker directory or
SkipTLSVerify; a client certificate only when both cert.pem and key.pem are there.
JSON keys match case-insensitively, as Go's encoding/json does.  TLS files are
handed on by path and never read here.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.engines.endpoints import parse_endpoint, spec_with_tls
from harness.engines.spec import EngineSpec, TLSMaterial
from harness.errors import UsageError
from harness.sorting import natural_key

DEFAULT = "default"
_DOCKER = "docker"  # the endpoint name docker's own contexts use


@dataclass(frozen=True)
class Context:
    """One stored context, with the fields `docker context inspect` shows."""

    name: str
    description: str
    host: str | None                   # Endpoints.docker.Host; None without a docker endpoint
    skip_tls_verify: bool
    meta_path: Path                    # Storage.MetadataPath
    tls_path: Path                     # Storage.TLSPath
    tls_files: tuple[str, ...] | None  # TLSMaterial.docker; None when the context has no TLS data

    def spec(self) -> EngineSpec:
        """How to reach this context's engine, labelled with the context's name."""
        if not self.host:
            raise UsageError(f"docker context {self.name!r} has no docker host ({self.meta_path})")
        tls = None
        if self.tls_files is not None or self.skip_tls_verify:
            files = {f: str(self.tls_path / _DOCKER / f) for f in self.tls_files or ()}
            pair = "cert.pem" in files and "key.pem" in files
            tls = TLSMaterial(ca_cert=files.get("ca.pem"),
                              client_cert=files["cert.pem"] if pair else None,
                              client_key=files["key.pem"] if pair else None,
                              verify=not self.skip_tls_verify)
        try:
            return spec_with_tls(self.host, label=self.name, tls=tls)
        except UsageError as e:
            raise UsageError(f"docker context {self.name!r}: {e.message}", hint=e.hint) from None


def docker_config_dir(env: Mapping[str, str]) -> Path:
    """The docker CLI's config directory: DOCKER_CONFIG, else ~/.docker."""
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"])
    return Path(env.get("HOME") or Path.home()) / ".docker"


def env_tls(env: Mapping[str, str]) -> TLSMaterial | None:
    """TLS asked for by DOCKER_TLS_VERIFY, DOCKER_TLS or DOCKER_CERT_PATH, else None.

    Files come from DOCKER_CERT_PATH (default: the config dir) where they exist.  Unlike
    the docker CLI, DOCKER_TLS without DOCKER_TLS_VERIFY does not switch verification off.
    """
    if not any(env.get(k) for k in ("DOCKER_TLS_VERIFY", "DOCKER_TLS", "DOCKER_CERT_PATH")):
        return None
    cert_dir = Path(env.get("DOCKER_CERT_PATH") or docker_config_dir(env)).absolute()
    ca, cert, key = (cert_dir / f for f in ("ca.pem", "cert.pem", "key.pem"))
    pair = cert.is_file() and key.is_file()
    return TLSMaterial(ca_cert=str(ca) if ca.is_file() else None,
                       client_cert=str(cert) if pair else None, client_key=str(key) if pair else None)


def current_context_name(env: Mapping[str, str]) -> str:
    """The context the docker CLI would use with this environment."""
    if env.get("DOCKER_HOST"):
        return DEFAULT
    if env.get("DOCKER_CONTEXT"):
        return env["DOCKER_CONTEXT"]
    config = docker_config_dir(env) / "config.json"
    try:
        raw = config.read_bytes()
        data = json.loads(raw) if raw.strip() else {}
    except FileNotFoundError:
        return DEFAULT
    except (OSError, ValueError) as e:
        raise UsageError(f"{config}: cannot read the docker CLI config: {e}") from None
    current = _field(data, "currentContext")
    return current if isinstance(current, str) and current else DEFAULT


def list_contexts(config_dir: str | os.PathLike[str]) -> list[Context]:
    """The stored contexts under `config_dir`, in `docker context ls` order (`default` is not stored)."""
    store = Path(config_dir) / "contexts"
    meta_root = store / "meta"
    found = [_read(Path(d), store) for d, _, files in os.walk(meta_root)
             if d != str(meta_root) and "meta.json" in files]
    return sorted(found, key=lambda c: natural_key(c.name))


def resolve_context(name: str | None = None, env: Mapping[str, str] | None = None) -> EngineSpec:
    """The engine behind context `name` (the current context when None), labelled with its name."""
    env = os.environ if env is None else env
    name = name or current_context_name(env)
    if name == DEFAULT:
        return _default_spec(env)
    store = docker_config_dir(env) / "contexts"
    meta_dir = store / "meta" / _context_id(name)
    if not (meta_dir / "meta.json").is_file():
        known = ", ".join([DEFAULT] + [c.name for c in list_contexts(store.parent)])
        raise UsageError(f"unknown docker context {name!r} in {store.parent} (known: {known})")
    return _read(meta_dir, store).spec()


def _default_spec(env: Mapping[str, str]) -> EngineSpec:
    """The `default` context: DOCKER_HOST, with the CLI's fallbacks and its host shorthand."""
    ambient = env_tls(env)
    host = env.get("DOCKER_HOST", "").strip()
    if not host:
        host = "tcp://localhost:2376" if ambient else "unix:///var/run/docker.sock"
    elif "://" not in host:
        host = "tcp://" + host
    try:
        return parse_endpoint(host, label=DEFAULT, ambient=ambient)
    except UsageError as e:
        raise UsageError(f"DOCKER_HOST: {e.message}", hint=e.hint) from None


def _read(meta_dir: Path, store: Path) -> Context:
    meta_file = meta_dir / "meta.json"
    try:
        data = json.loads(meta_file.read_bytes())
    except (OSError, ValueError) as e:
        raise UsageError(f"{meta_file}: cannot read docker context metadata: {e}") from None
    name = _field(data, "Name")
    endpoint = _field(_field(data, "Endpoints"), _DOCKER)
    host = _field(endpoint, "Host")
    skip = _field(endpoint, "SkipTLSVerify")
    description = _field(_field(data, "Metadata"), "Description")
    if not isinstance(name, str) or not isinstance(host, (str, type(None))) \
            or not isinstance(skip, (bool, type(None))) or not isinstance(description, (str, type(None))):
        raise UsageError(f"{meta_file}: not docker context metadata (Name, Endpoints.docker.Host, SkipTLSVerify)")
    tls_path = store / "tls" / _context_id(name)
    tls_dir = tls_path / _DOCKER
    try:
        tls_files = tuple(sorted(p.name for p in tls_dir.iterdir() if not p.is_dir())) if tls_dir.is_dir() else None
    except OSError as e:
        raise UsageError(f"docker context {name!r}: cannot list its TLS files: {e}") from None
    return Context(name=name, description=description or "", host=host, skip_tls_verify=bool(skip),
                   meta_path=meta_dir, tls_path=tls_path, tls_files=tls_files)


def _context_id(name: str) -> str:
    """The store's directory name for a context: the hex sha256 of its name."""
    return hashlib.sha256(name.encode()).hexdigest()


def _field(obj: object, key: str) -> object:
    """`obj[key]` for a JSON object, the exact key first, then any case, as Go's decoder; else None."""
    if not isinstance(obj, dict):
        return None
    if key in obj:
        return obj[key]
    return next((v for k, v in obj.items() if k.lower() == key.lower()), None)

