"""Image reference names: Docker's familiar form (``x:tag``) and the full form (``docker.io/library/x:tag``).

manifest.json and ``docker images`` speak the familiar form, OCI annotations
(``io.containerd.image.name``) the full one; the model keeps the familiar form
so that tags compare equal across formats, and the writer expands them again.
The rules are those of distribution/reference (`normalize.go`).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"


@dataclass(frozen=True)
class TaggedName:
    """A repository name with its registry domain, and a tag."""

    domain: str
    path: str
    tag: str

    @property
    def full(self) -> str:
        return f"{self.domain}/{self.path}:{self.tag}"

    @property
    def familiar_repo(self) -> str:
        if self.domain != DEFAULT_DOMAIN:
            return f"{self.domain}/{self.path}"
        return self.path[len(OFFICIAL_PREFIX):] if self.path.startswith(OFFICIAL_PREFIX) else self.path

    @property
    def familiar(self) -> str:
        return f"{self.familiar_repo}:{self.tag}"


def parse_tagged(ref: str) -> TaggedName | None:
    """Split a reference into domain, path and tag (``latest`` when absent); None for digest references."""
    if "@" in ref or not ref:
        return None
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    name, tag = (ref[:colon], ref[colon + 1:]) if colon > slash else (ref, "latest")
    if not name or not tag:
        return None
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return TaggedName(domain, path, tag)


def familiar(ref: str) -> str:
    """The familiar form of a tagged reference; other strings unchanged."""
    parsed = parse_tagged(ref)
    return parsed.familiar if parsed else ref
