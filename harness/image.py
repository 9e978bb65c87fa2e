"""The one image model that every archive format and every engine adapts into.

Like go-containerregistry's ``pkg/v1``: small read-only objects; consumers (the
differ, the reference writer, the suites) never ask where an image came from.

    Archive                     one image archive (outer tar), any format
    ├── entries: Entry…         every outer tar entry: header + sha256 of its bytes
    ├── index / manifest_json / repositories   the archive's own metadata, parsed
    ├── indexes: Index…         image indexes (manifest lists) reached from index.json, nested too
    ├── images: Image…          config + manifest + tags + layers, with the platform an index gives
    │   └── layers: Layer…      position, diff_id, stored digest, compression (or missing)
    │       └── files(): FileEntry…   headers + content digest inside the layer
    ├── referrers: Referrer…    manifests that are not images: attestations (linked to the
    │                           image they attest) and artifacts; blobs checked, never parsed as tar
    ├── unfollowed: Unfollowed… descriptors listed but not followed, and why
    ├── unreferenced: str…      entries that no manifest, index or metadata file names
    └── problems: Finding…      broken rules met while reading (digest-mismatch, missing); the
                                checks that inflate a layer run when first looked at

Blob bytes are never held: a `Layer` opens a fresh stream on demand (an *opener*).
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Iterator, Mapping, Protocol, Sequence, overload

from harness.findings import Finding

Opener = Callable[[], IO[bytes]]
"""Returns a fresh binary stream positioned at the start of some bytes; the caller closes it."""


class Compression(str, enum.Enum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"

    def __str__(self) -> str:
        return self.value


class ArchiveFormat(str, enum.Enum):
    """How an archive lays images out; a difference here is `archive-format`."""

    DOCKER_LEGACY = "docker-legacy"  # Docker <= 24: <id>/layer.tar, <id>/json, manifest.json, repositories
    DOCKER_OCI = "docker-oci"        # Docker >= 25: OCI layout + manifest.json (+ repositories)
    DOCKER_ARCHIVE = "docker-archive"  # manifest.json with flat blobs: podman, skopeo, go-containerregistry
    OCI = "oci"                      # plain OCI image layout

    def __str__(self) -> str:
        return self.value


class EntryType(str, enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    CHAR = "char"
    BLOCK = "block"
    FIFO = "fifo"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class TarHeader:
    """The fields of one tar header that users can observe; the same for outer entries and layer files."""

    name: str
    type: EntryType
    mode: int
    uid: int
    gid: int
    uname: str
    gname: str
    mtime: float
    size: int
    linkname: str = ""
    pax: tuple[tuple[str, str], ...] = ()  # sorted PAX records other than those tarfile folds into fields
    devmajor: int = 0  # device numbers of char and block devices (0 for every other type)
    devminor: int = 0

    @property
    def xattrs(self) -> dict[str, str]:
        """Extended attributes carried as ``SCHILY.xattr.*`` PAX records."""
        return {k[len("SCHILY.xattr."):]: v for k, v in self.pax if k.startswith("SCHILY.xattr.")}


@dataclass(frozen=True)
class Entry:
    """One entry of the outer archive, in archive order."""

    position: int
    header: TarHeader
    digest: str | None  # "sha256:<hex>" of the bytes for regular files, else None


@dataclass(frozen=True)
class FileEntry:
    """One entry inside a layer tar, in layer order."""

    position: int
    header: TarHeader
    digest: str | None  # "sha256:<hex>" of the content for regular files, else None

    @property
    def path(self) -> str:
        return self.header.name


@dataclass(frozen=True, order=True)
class Platform:
    """What an image runs on: the key that pairs the images of two multi-platform indexes."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @classmethod
    def of(cls, value: Mapping[str, Any] | None) -> Platform | None:
        """From a descriptor's ``platform`` or an image config (``os``, ``architecture``, ``variant``)."""
        if not isinstance(value, Mapping):
            return None
        os_, arch = value.get("os"), value.get("architecture")
        if not isinstance(os_, str) or not isinstance(arch, str) or not (os_ or arch):
            return None
        variant = value.get("variant")
        return cls(os_, arch, variant if isinstance(variant, str) else "")

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``os/arch[/variant]``, as ``--platform`` takes it."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {text!r} is not os/arch[/variant]")
        return cls(*parts)


UNKNOWN_PLATFORM = Platform("unknown", "unknown")
"""What BuildKit writes on attestation manifests' descriptors."""


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Mapping[str, Any] | None = None
    artifact_type: str = ""


class Layer(Protocol):
    """One layer of an image, as stored in an archive."""

    @property
    def position(self) -> int:
        """Index in the image's layer list (0 = bottom)."""

    @property
    def diff_id(self) -> str:
        """Digest of the uncompressed tar, as the config's rootfs.diff_ids names it."""

    @property
    def digest(self) -> str:
        """Digest of the blob as stored in the archive (equal to diff_id when uncompressed)."""

    @property
    def size(self) -> int:
        """Size of the blob as stored."""

    @property
    def media_type(self) -> str:
        """Media type from the manifest, or the one implied by the format."""

    @property
    def compression(self) -> Compression:
        """Compression detected from the blob's magic bytes."""

    @property
    def entry_name(self) -> str:
        """Name of the outer-archive entry that holds the blob."""

    def compressed(self) -> IO[bytes]:
        """A fresh stream of the blob as stored."""

    def uncompressed(self) -> IO[bytes]:
        """A fresh stream of the layer tar."""

    def files(self) -> Iterator[FileEntry]:
        """Stream the layer's entries with content digests; nothing is extracted."""

    @property
    def present(self) -> bool:
        """False when the archive names the blob but does not carry it (`MissingLayer`)."""


@dataclass(frozen=True)
class Image:
    """One image in an archive."""

    config_digest: str          # "sha256:<hex>": the image ID
    raw_config: bytes           # exact config bytes (small: kilobytes); b"" when the archive lacks them
    config: Mapping[str, Any]   # parsed config; {} when the archive lacks it
    repo_tags: tuple[str, ...]  # as the archive names them, in archive order
    layers: tuple[Layer, ...]
    manifest: Descriptor | None = None  # the manifest's descriptor, where the archive has one
    raw_manifest: bytes | None = None
    config_entry: str = ""      # outer entry name holding the config ("" when missing)
    platform: Platform | None = None  # from the index descriptor naming the manifest, else from the config
    index: str | None = None    # digest of the index that names the manifest; None at the top
    config_missing: bool = False  # the archive names the config blob but does not carry it

    @property
    def id(self) -> str:
        return self.config_digest

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(self.config.get("rootfs", {}).get("diff_ids", ()))

    @property
    def lacking(self) -> tuple[str, ...]:
        """The blobs the archive names for this image but does not carry (``config``, ``layer[N]``)."""
        return (*(("config",) if self.config_missing else ()),
                *(f"layer[{i}]" for i, layer in enumerate(self.layers) if not layer.present))

    @property
    def complete(self) -> bool:
        """Every blob the image needs is in the archive."""
        return not self.lacking


class ReferrerKind(str, enum.Enum):
    ATTESTATION = "attestation"  # BuildKit's provenance/SBOM manifests, linked to the image they attest
    ARTIFACT = "artifact"        # any other manifest whose config is not an image config

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Blob:
    """A blob of a non-image manifest: verified by digest, never parsed as a layer tar."""

    descriptor: Descriptor
    entry_name: str = ""        # "" when the archive lacks it
    opener: Opener | None = field(default=None, repr=False, compare=False)

    @property
    def present(self) -> bool:
        return bool(self.entry_name)


@dataclass(frozen=True)
class Referrer:
    """A manifest that is not a runnable image: an attestation or an artifact (Helm chart, signature, SBOM)."""

    kind: ReferrerKind
    manifest: Descriptor         # as the index names it (annotations carry the attestation's link)
    raw_manifest: bytes
    config: Blob
    blobs: tuple[Blob, ...]      # the manifest's layers
    tags: tuple[str, ...] = ()
    subject: str | None = None   # digest of the manifest it refers to (attested image, OCI subject)
    index: str | None = None

    @property
    def artifact_type(self) -> str:
        """What the artifact is: OCI 1.1 ``artifactType``, else its config's media type."""
        return self.manifest.artifact_type or self.config.descriptor.media_type


@dataclass(frozen=True)
class Index:
    """An image index (OCI index, Docker manifest list) that the archive carries."""

    descriptor: Descriptor       # how its parent, or index.json, names it
    raw: bytes
    manifests: tuple[Descriptor, ...]
    tags: tuple[str, ...] = ()
    parent: str | None = None    # digest of the index naming it; None when index.json does
    entry_name: str = ""


@dataclass(frozen=True)
class Unreferenced:
    """A regular entry that no manifest, index or metadata file names, and what it looks like."""

    name: str
    size: int
    what: str  # e.g. "legacy layer JSON (v1 id …)", "JSON", "data"


@dataclass(frozen=True)
class Unfollowed:
    """A descriptor the reader listed but did not follow: a media type it does not know, or a platform
    the archive does not carry."""

    where: str
    descriptor: Descriptor
    reason: str


class Problems(Sequence[Finding]):
    """Findings of a read that are settled when first looked at.

    Checking a compressed layer's diff_id costs inflating all of it; the
    differ inflates the layers it compares anyway, and those need no second
    pass if the checks wait until it is done.  So a reader may hand over a
    `settle` function instead of its findings: it runs on first use, once,
    whichever thread asks, returns the findings that follow `found`, and may
    raise the reader's errors.
    """

    def __init__(self, found: Sequence[Finding] = (), settle: Callable[[], Sequence[Finding]] | None = None) -> None:
        self._found = tuple(found)
        self._settle = settle
        self._lock = threading.Lock()

    def _all(self) -> tuple[Finding, ...]:
        with self._lock:
            if self._settle is not None:
                self._found += tuple(self._settle())
                self._settle = None
            return self._found

    @overload
    def __getitem__(self, i: int) -> Finding: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Finding]: ...
    def __getitem__(self, i: int | slice) -> Finding | Sequence[Finding]:
        return self._all()[i]

    def __len__(self) -> int:
        return len(self._all())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __repr__(self) -> str:
        return f"Problems({list(self._found)!r}{', unsettled' if self._settle else ''})"


@dataclass(frozen=True)
class Archive:
    """An image archive read into the model."""

    source: str                  # path or "ENGINE:REF" the archive came from
    format: ArchiveFormat
    entries: tuple[Entry, ...]
    images: tuple[Image, ...]
    index: Mapping[str, Any] | None = None         # index.json, parsed
    manifest_json: tuple[Mapping[str, Any], ...] | None = None  # manifest.json, parsed
    repositories: Mapping[str, Any] | None = None  # legacy "repositories" file, parsed
    problems: Sequence[Finding] = ()              # digest-mismatch and similar, found while reading (`Problems`)
    size: int = 0                                  # bytes of the archive file
    digest: str = ""                               # sha256 of the whole file, when the reader was asked for it
    indexes: tuple[Index, ...] = ()
    referrers: tuple[Referrer, ...] = ()
    unfollowed: tuple[Unfollowed, ...] = ()
    unreferenced: tuple[Unreferenced, ...] = ()    # regular entries no manifest, index or metadata file names

    @property
    def attestations(self) -> tuple[Referrer, ...]:
        return tuple(r for r in self.referrers if r.kind is ReferrerKind.ATTESTATION)

    @property
    def artifacts(self) -> tuple[Referrer, ...]:
        return tuple(r for r in self.referrers if r.kind is ReferrerKind.ARTIFACT)

    def entry(self, name: str) -> Entry | None:
        for e in self.entries:
            if e.header.name == name:
                return e
        return None
