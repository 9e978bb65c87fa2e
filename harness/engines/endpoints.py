"""What an engine endpoint URL means, and when a `tcp://` endpoint speaks TLS.

Accepted, and normalised so that one engine has one spelling:

    unix:///abs/path/docker.sock
    tcp://host[:port]            port 2375 by default, 2376 when TLS is on
    ssh://[user@]host[:port]

Refused with a `UsageError`: `npipe://` (Windows only), `fd://`, `http(s)://` and
any other scheme, passwords in URLs, and paths or queries where they mean nothing.

TLS for `tcp://`, first rule that applies:

1. explicit settings (`TLSRequest`: an `--engine` query or inventory keys);
2. the docker CLI's environment (`ambient`, see `harness.engines.contexts.env_tls`);
3. port 2376, the daemon's documented TLS port: TLS checked against the system CAs;
4. otherwise plain TCP, as `docker -H tcp://…` would do.

Verification is on unless the user turns it off by name (`verify=false`, or a
Docker context's SkipTLSVerify): remote engines are production hosts.
Error messages show URLs through `shown`, never with a password.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from harness.engines.spec import EngineSpec, TLSMaterial
from harness.errors import UsageError

SCHEMES = ("unix", "tcp", "ssh")
_TLS_PORT = 2376
_PLAIN_PORT = 2375


@dataclass(frozen=True)
class TLSRequest:
    """TLS settings the user stated for one endpoint; None means "not said"."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    verify: bool | None = None
    tls: bool | None = None

    @property
    def has_files(self) -> bool:
        return any((self.ca, self.cert, self.key))

    @property
    def empty(self) -> bool:
        return self == TLSRequest()


_PASSWORD = re.compile(r"^([^:@/?#]*):[^@]*@")


def shown(value: str) -> str:
    """`value` as it may appear in an error: any ``user:password@`` password is masked.

    Broader than `redact_url`, since these strings failed to parse: a password may hold '/'.
    """
    scheme, sep, rest = value.partition("://") if "://" in value else ("", "", value)
    return scheme + sep + _PASSWORD.sub(r"\1:***@", rest)


def parse_endpoint(url: str, *, label: str | None = None, request: TLSRequest = TLSRequest(),
                   ambient: TLSMaterial | None = None) -> EngineSpec:
    """An `EngineSpec` for `url`, with TLS decided by the rules in the module docstring."""
    parts = _split(url)
    if parts.scheme != "tcp":
        if not request.empty:
            raise UsageError(f"{shown(url)}: TLS settings apply to tcp:// endpoints only")
        return EngineSpec(_normalise(parts, tls=False), label=label)
    tls = _decide_tls(parts, request, ambient)
    return EngineSpec(_normalise(parts, tls=tls is not None), label=label, tls=tls)


def spec_with_tls(url: str, *, label: str | None, tls: TLSMaterial | None) -> EngineSpec:
    """An `EngineSpec` for `url` whose TLS was already decided elsewhere (a Docker context)."""
    parts = _split(url)
    tls = tls if parts.scheme == "tcp" else None  # sockets and ssh never use TLS, as in the docker CLI
    return EngineSpec(_normalise(parts, tls=tls is not None), label=label, tls=tls)


def _split(url: str) -> SplitResult:
    """Split and validate `url`; every refusal names the URL without its password."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme == "npipe":
        raise UsageError(f"{shown(url)}: Windows named pipes are not supported",
                         hint="the harness runs on Linux; use unix://, tcp:// or ssh://")
    if scheme not in SCHEMES:
        raise UsageError(f"{shown(url)}: unsupported endpoint",
                         hint="use unix:///path, tcp://host:port, ssh://user@host or a Docker context name")
    try:
        parts = urlsplit(url)
        _ = parts.port  # urlsplit checks the port only when asked
    except ValueError:  # its message may quote a password, so it is not passed on
        raise UsageError(f"{shown(url)}: malformed endpoint, expected host[:port]") from None
    if parts.password is not None:
        raise UsageError(f"{shown(url)}: passwords in endpoint URLs are not supported",
                         hint="use an ssh key or agent, or TLS client certificates")
    if parts.fragment or (parts.query and scheme != "tcp"):
        raise UsageError(f"{shown(url)}: unexpected '?' or '#' part")
    if scheme == "unix":
        if parts.netloc or not parts.path.startswith("/"):
            raise UsageError(f"{shown(url)}: a unix socket needs an absolute path, e.g. unix:///run/docker.sock")
    elif not parts.hostname:
        raise UsageError(f"{shown(url)}: no host")
    elif parts.path not in ("", "/"):
        raise UsageError(f"{shown(url)}: unexpected path {parts.path!r} after the host")
    elif scheme == "tcp" and parts.username is not None:
        raise UsageError(f"{shown(url)}: tcp:// endpoints take no user name")
    return parts


def _normalise(parts: SplitResult, *, tls: bool) -> str:
    if parts.scheme == "unix":
        return "unix://" + posixpath.normpath(parts.path)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    if parts.scheme == "tcp":
        return f"tcp://{host}:{parts.port or (_TLS_PORT if tls else _PLAIN_PORT)}"
    user = f"{parts.username}@" if parts.username else ""
    return f"ssh://{user}{host}" + (f":{parts.port}" if parts.port else "")


def _decide_tls(parts: SplitResult, request: TLSRequest, ambient: TLSMaterial | None) -> TLSMaterial | None:
    where = shown(parts.geturl())
    if (request.cert is None) != (request.key is None):
        raise UsageError(f"{where}: a client certificate and its key go together; give both or neither")
    if request.tls is False:
        if request.has_files or request.verify is not None:
            raise UsageError(f"{where}: TLS is turned off but TLS settings are given")
        return None
    wanted = (request.tls or request.has_files or request.verify is not None
              or ambient is not None or parts.port == _TLS_PORT)
    if not wanted:
        return None
    verify = True if request.verify is None else request.verify
    if request.has_files:
        return TLSMaterial(ca_cert=_tls_file(where, "ca", request.ca), client_cert=_tls_file(where, "cert", request.cert),
                           client_key=_tls_file(where, "key", request.key), verify=verify)
    base = ambient or TLSMaterial()
    return TLSMaterial(base.ca_cert, base.client_cert, base.client_key, verify=verify)


def _tls_file(where: str, what: str, path: str | None) -> str | None:
    """An absolute path to an existing TLS file; its contents are never read here."""
    if path is None:
        return None
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(full):
        raise UsageError(f"{where}: TLS {what} file not found: {full}")
    return full
