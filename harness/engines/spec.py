"""Where to reach an engine, before the engine has been asked who it is.

An `EngineSpec` is plain data: the farm makes them for the daemons it starts,
`harness.engines.inventory` makes them from `--engine` options, inventory files
and Docker contexts.  The engine's identity (`docker-28.5.2-containerd`) is never
written here by hand: it is read from the engine (`harness.engines.identity`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class TLSMaterial:
    """Client TLS files for a `tcp://` endpoint; verification is on unless turned off explicitly."""

    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    verify: bool = True


@dataclass(frozen=True)
class EngineSpec:
    """How to reach one engine."""

    endpoint: str                 # unix:///…/docker.sock, tcp://host:2376, ssh://user@host
    label: str | None = None      # the user's name for it (inventory key, context name)
    tls: TLSMaterial | None = None
    managed: bool = False         # started by our farm: the harness may restart it

    @property
    def redacted_endpoint(self) -> str:
        """The endpoint with any password or user-info removed, for reports and logs."""
        return redact_url(self.endpoint)


_USERINFO = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^@/]*)@")


def redact_url(url: str) -> str:
    """Drop the password from ``scheme://user:password@host``; keep the user name (it is no secret)."""
    m = _USERINFO.match(url)
    if not m or ":" not in m.group("user"):
        return url
    user = m.group("user").split(":", 1)[0]
    return f"{m.group('scheme')}{user}:***@{url[m.end():]}"
