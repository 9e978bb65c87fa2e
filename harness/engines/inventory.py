"""Engines the user brings: `--engine` options and an inventory file.

An ``--engine`` value is ``[LABEL=]TARGET``; LABEL names the engine in reports::

    unix:///run/docker.sock       a socket; a bare path to an existing socket also works
    tcp://host:2376               TLS as described in `harness.engines.endpoints`, with the
                                  docker CLI's DOCKER_TLS_VERIFY / DOCKER_CERT_PATH honoured
    tcp://host:2376?ca=ca.pem&cert=cert.pem&key=key.pem&verify=false&tls=true
                                  inline TLS (paths relative to the working directory);
                                  ca/cert/key replace the environment's files, verify and
                                  tls (true/false) are on by default once TLS is used
    ssh://user@host[:port]        through the ssh binary, keys from the ssh agent/config
    context:NAME  or  NAME        a Docker context (`default` included), see contexts.py

An inventory file (TOML) names its engines by table key::

    [engines.prod-a]
    endpoint = "tcp://build-1.example:2376"
    tls_ca = "certs/ca.pem"       # tls_ca/tls_cert/tls_key: relative to this file
    tls_cert = "certs/cert.pem"
    tls_key = "certs/key.pem"
    tls_verify = true             # the default; `tls = false` forces plain TCP
    [engines.laptop]
    context = "desktop-linux"

The file is self-contained: DOCKER_TLS_* / DOCKER_CERT_PATH do not apply to its
endpoints (port 2376 still means TLS), only DOCKER_CONFIG to find its contexts.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qsl

from harness.engines.contexts import env_tls, resolve_context
from harness.engines.endpoints import TLSRequest, parse_endpoint, shown
from harness.engines.spec import EngineSpec
from harness.errors import UsageError

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
_CONTEXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]+")  # the docker CLI's rule
_QUERY_KEYS = ("ca", "cert", "key", "verify", "tls")
_ENGINE_KEYS = ("endpoint", "context", "tls_ca", "tls_cert", "tls_key", "tls_verify", "tls")
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_engine_option(value: str, *, env: Mapping[str, str] | None = None) -> EngineSpec:
    """The engine an ``--engine`` value names (grammar in the module docstring)."""
    env = os.environ if env is None else env
    label, target = _split_label(value)
    if "://" in target:
        spec = _parse_url(target, env)
    elif target.startswith("context:") or not _is_socket_path(target):
        name = target.removeprefix("context:")
        if not _CONTEXT_NAME.fullmatch(name):
            raise UsageError(f"--engine {shown(value)}: not an endpoint URL, socket path or context name",
                             hint="e.g. unix:///run/docker.sock, tcp://host:2376, ssh://user@host, context:NAME")
        spec = resolve_context(name, env)
    else:
        spec = EngineSpec("unix://" + os.path.abspath(target))
    return replace(spec, label=label) if label else spec


def load_inventory(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> list[EngineSpec]:
    """The engines an inventory file lists, in file order, labelled by their table keys."""
    env = os.environ if env is None else env
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise UsageError(f"{path}: cannot read the inventory: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: not valid TOML: {e}") from None
    extra = sorted(set(data) - {"engines", "images"})  # images: the user's own (`harness.subjects`)
    if extra:
        raise UsageError(f"{path}: unknown top-level key {extra[0]!r}; engines go in [engines.NAME] tables")
    engines = data.get("engines")
    if not isinstance(engines, dict) or not engines:
        raise UsageError(f"{path}: no engines; add tables such as [engines.NAME] with endpoint = \"...\"")
    base = Path(path).parent
    specs = []
    for key, entry in engines.items():
        try:
            specs.append(replace(_inventory_entry(entry, base, env), label=key))
        except UsageError as e:
            raise UsageError(f"{path}: engines.{key}: {e.message}", hint=e.hint) from None
    return specs


def select_engines(engine_opts: Sequence[str], engines_file: str | os.PathLike[str] | None,
                   env: Mapping[str, str] | None = None) -> list[EngineSpec]:
    """`--engine` options then the inventory's engines, one per endpoint; [] means "use the farm"."""
    env = os.environ if env is None else env
    specs = [parse_engine_option(v, env=env) for v in engine_opts]
    if engines_file is not None:
        specs += load_inventory(engines_file, env=env)
    chosen: dict[str, EngineSpec] = {}
    by_label: dict[str, EngineSpec] = {}
    for spec in specs:
        if spec.endpoint in chosen:
            continue
        other = by_label.get(spec.label) if spec.label else None
        if other is not None:
            raise UsageError(f"engine label {spec.label!r} names both {other.redacted_endpoint} "
                             f"and {spec.redacted_endpoint}", hint="give one of them another LABEL=")
        chosen[spec.endpoint] = spec
        if spec.label:
            by_label[spec.label] = spec
    return list(chosen.values())


def _split_label(value: str) -> tuple[str | None, str]:
    """``LABEL=TARGET`` → (LABEL, TARGET); an '=' inside a URL or path is no label."""
    head, sep, rest = value.partition("=")
    if not sep or any(c in head for c in ":/?"):
        return None, value
    if not _LABEL.fullmatch(head) or not rest:
        raise UsageError(f"--engine {shown(value)}: expected LABEL=TARGET with a label of letters, digits, '_.+-'")
    return head, rest


def _is_socket_path(target: str) -> bool:
    """True for an existing socket; a target with a '/' that is none is an error, not a context name."""
    try:
        if stat.S_ISSOCK(os.stat(target).st_mode):
            return True
    except OSError:
        pass
    if "/" in target:
        raise UsageError(f"--engine {shown(target)}: no unix socket there")
    return False


def _parse_url(target: str, env: Mapping[str, str]) -> EngineSpec:
    """A URL option: its query (tcp:// only) carries inline TLS settings."""
    url, _, query = target.partition("?")
    if not query:
        return parse_endpoint(url, ambient=env_tls(env))
    if not url.lower().startswith("tcp://"):
        raise UsageError(f"--engine {shown(target)}: only tcp:// endpoints take ?TLS settings")
    settings: dict[str, str] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise UsageError(f"--engine {shown(target)}: malformed ?settings, expected ?key=value&...") from None
    for k, v in pairs:
        if k not in _QUERY_KEYS or k in settings:
            raise UsageError(f"--engine {shown(target)}: unknown or repeated setting {k!r}",
                             hint=f"known: {', '.join(_QUERY_KEYS)}")
        settings[k] = v
    request = TLSRequest(ca=settings.get("ca"), cert=settings.get("cert"), key=settings.get("key"),
                         verify=_bool(settings, "verify", target), tls=_bool(settings, "tls", target))
    return parse_endpoint(url, request=request, ambient=env_tls(env))


def _bool(settings: Mapping[str, str], key: str, target: str) -> bool | None:
    if key not in settings:
        return None
    if settings[key].lower() not in _BOOLS:
        raise UsageError(f"--engine {shown(target)}: {key}={settings[key]!r} is not true or false")
    return _BOOLS[settings[key].lower()]


def _inventory_entry(entry: object, base: Path, env: Mapping[str, str]) -> EngineSpec:
    """One [engines.KEY] table; errors are prefixed with the file and key by the caller."""
    if not isinstance(entry, dict):
        raise UsageError("expected a table with endpoint = \"...\" or context = \"...\"")
    unknown = sorted(set(entry) - set(_ENGINE_KEYS))
    if unknown:
        raise UsageError(f"unknown key {unknown[0]!r}", hint=f"known: {', '.join(_ENGINE_KEYS)}")
    for k, v in entry.items():
        if not isinstance(v, bool if k in ("tls", "tls_verify") else str):
            raise UsageError(f"{k} must be {'true or false' if k in ('tls', 'tls_verify') else 'a string'}")
    tls_keys = sorted(k for k in entry if k.startswith("tls"))
    if ("endpoint" in entry) == ("context" in entry):
        raise UsageError("give exactly one of endpoint or context")
    if "context" in entry:
        if tls_keys:
            raise UsageError(f"{tls_keys[0]} does not apply to a context; the context has its own TLS settings")
        return resolve_context(entry["context"], env)
    if "?" in entry["endpoint"]:
        raise UsageError("endpoint takes no ?query; use the tls_* keys")

    def path(key: str) -> str | None:
        return str(base / os.path.expanduser(entry[key])) if key in entry else None

    request = TLSRequest(ca=path("tls_ca"), cert=path("tls_cert"), key=path("tls_key"),
                         verify=entry.get("tls_verify"), tls=entry.get("tls"))
    return parse_endpoint(entry["endpoint"], request=request)
