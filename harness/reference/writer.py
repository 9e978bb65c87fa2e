"""The canonical reference archive: one byte sequence per image, whatever engine it came through.

An archive of images alone is written in version 1; one that holds an image
index (multi-platform images), an attestation or an artifact, in version 2.
What the form cannot carry is refused with one line (`CannotCarry`), never
left out.

Canonical form, version 1 (the README quotes this docstring)
-------------------------------------------------------------

Container
  A POSIX ustar tar; no PAX or GNU extension headers (a number that does not
  fit its octal field, a blob of 8 GiB or more, is written in base-256 as GNU
  tar and Go do).  The archive ends with two 512-byte zero blocks and no
  further record padding.

Headers
  mtime = the epoch: ``SOURCE_DATE_EPOCH`` when set, else 0 (an explicit
  ``epoch`` argument wins); uid = gid = 0; uname = gname = ""; devmajor =
  devminor = 0; mode 0644 for files, 0755 for directories (names end in
  ``/``), 0777 for symlinks; magic ``ustar\\0`` version ``00``.

Entry order
  1. a directory entry for every parent directory of every file, sorted by name;
  2. per image, images sorted by (first RepoTag in sorted order, or "" when
     untagged; config digest): the config blob, the layer blobs in layer order,
     the manifest blob (OCI layouts) — a blob appears once in the archive, at
     its first use;
  3. the metadata: ``index.json``, ``manifest.json``, ``oci-layout`` (layout
     ``docker``); ``index.json``, ``oci-layout`` (``oci``); ``manifest.json``,
     ``repositories`` (``legacy``).

Content
  Layers are stored uncompressed: each blob is exactly the uncompressed layer
  tar, so its digest is the diff_id and the config (kept byte for byte) keeps
  the image ID.  Layer media type ``application/vnd.oci.image.layer.v1.tar``,
  config ``application/vnd.oci.image.config.v1+json``, manifest
  ``application/vnd.oci.image.manifest.v1+json`` with no annotations.  With
  ``keep_compression`` the blobs are copied as stored and the original
  manifest bytes are kept (generated, with ``+gzip``/``+zstd`` layer types,
  when the source had none), so manifest digests are preserved.
  Generated JSON is ``json.dumps(value, sort_keys=True, separators=(",", ":"))``
  (ASCII; other characters as ``\\u`` escapes), with no trailing newline.
  Tags are sorted by their familiar form (``x:tag``), without duplicates;
  ``manifest.json`` RepoTags name them in full (``docker.io/library/x:tag``),
  as podman writes them: Docker shortens them on load, and podman would file
  short names of a multi-image archive under ``localhost/``.

Layouts
  ``docker``: ``blobs/sha256/<hex>``, ``oci-layout`` (``{"imageLayoutVersion":"1.0.0"}``),
  ``index.json`` with one manifest descriptor per RepoTag, annotated
  ``io.containerd.image.name`` (full name, ``docker.io/library/x:tag``) and
  ``org.opencontainers.image.ref.name`` (the tag), or one unannotated
  descriptor when untagged; ``manifest.json`` (``Config``, ``Layers`` as
  ``blobs/sha256/<hex>`` paths, ``RepoTags``).  Docker 20.10 reads only
  manifest.json; Docker >= 25 and podman read either.
  ``oci``: the same without ``manifest.json`` (graph-driver Docker cannot
  load it; podman 4 loads single-image OCI archives only).
  ``legacy``: Docker <= 24's layout: ``<config-hex>.json``; per layer
  ``<v1-id>/VERSION`` (``1.0``), ``<v1-id>/json``, ``<v1-id>/layer.tar``, with
  v1 IDs and ``json`` computed as moby 24 does (`harness.reference.legacy`);
  a layer already written under another v1 ID is a symlink
  ``../<first-id>/layer.tar``; ``manifest.json`` (``Config``, ``Layers``,
  ``RepoTags``) and ``repositories`` (``{"repo": {"tag": "<top v1 id>"}}``).

Canonical form, version 2 (the README quotes this docstring)
-------------------------------------------------------------

For archives that hold an image index, an attestation or an artifact (any
manifest whose config is not an image config: Helm charts, signatures,
SBOMs).  Container, headers, layers, configs, generated JSON and the
``docker`` and ``oci`` layouts are as in version 1; ``legacy`` cannot hold
version 2.

Objects
  index.json names objects: images, indexes, attestations and artifacts.  An
  index names platform images, nested indexes, attestations (BuildKit's, each
  linked to the image it attests by the descriptor annotation
  ``vnd.docker.reference.digest``) and artifacts.  All of them are written,
  with every blob they name.

Entry order
  1. the directories ``blobs``, ``blobs/sha256``;
  2. per object that index.json names: images and indexes first, then
     attestations and artifacts; within each, by first tag ("" when untagged),
     then images before indexes, then identity (image ID; for an index, what
     its children are).  An image is written as in version 1 (config, layers,
     manifest); an index as its children, then the index blob; an attestation
     or artifact as its config, its blobs in order, then its manifest.
     Everything an object names comes before it; a blob appears once, at its
     first use;
  3. ``index.json``, ``manifest.json`` (``docker``), ``oci-layout``.
  An index's children are ordered by what they are, never by how the source
  encoded them: images by platform (``os/arch/variant``), then image ID;
  nested indexes by what they hold; attestations after images, by the
  platform and ID of the image they attest; artifacts by type; then by the
  digests of their config and blobs, the rest of the descriptor (platform,
  annotations) and the source digest.

Content
  Uncompressed (the default), image manifests are generated as in version 1,
  keeping the source manifest's ``annotations`` (and an OCI ``subject``,
  restated); layer descriptors carry no annotations (``containerd.io/
  uncompressed`` and eStargz digests describe the stored blob).  Every index
  is generated again: its fields and annotations as the source has them,
  ``mediaType`` the OCI index (a Docker manifest list becomes one), its
  descriptors in the order above, each restated: ``mediaType``, ``digest``
  and ``size`` of what it names as written (a ``data`` field goes with them),
  and an attestation's ``vnd.docker.reference.digest`` naming the attested
  image's new manifest; platform, annotations, ``artifactType`` and every
  other field kept.  Attestation and artifact manifests and all their blobs
  are kept byte for byte (in-toto statements and signatures are signed
  content: never rewritten); one whose OCI ``subject`` names a manifest that
  changed is generated again with the subject restated.  In-toto statements
  and signatures keep naming the source's manifest digests: only
  ``keep_compression`` keeps those true.
  With ``keep_compression``, every manifest and index is kept as read, byte
  for byte, and every blob as stored: all digests are preserved.

Tags
  index.json has one descriptor per tag of each object it names, annotated as
  in version 1; a tag that names no repository (an OCI ref name such as
  ``1.0.0``, as Helm and ORAS write them) stays as it is, annotated
  ``org.opencontainers.image.ref.name`` alone.  An index's tags name the
  index; its platform images are untagged.  ``manifest.json`` (``docker``)
  lists every image written: those index.json names with their RepoTags, as
  in version 1, and an index's platform images without RepoTags, since
  manifest.json cannot say "one name, several platforms" (Docker <= 24 and
  graph-driver engines load them all, untagged); attestations and artifacts
  are not listed.  Tags without a repository have no place in manifest.json.

Refused, in either version (`harness.reference.carry`)
  A descriptor the reader did not follow (a media type it does not know; a
  manifest an index names that the archive does not carry: a partial save), a
  blob the archive names but lacks, a blob whose bytes are not the digest it
  is written under, a source file that changes while it is copied, and
  version 2 in the ``legacy`` layout.  The output is removed and nothing is
  left at `out`.  Metadata the source got wrong that the form regenerates
  (index.json, manifest.json, sizes in generated descriptors) stays the
  reader's problem, not the reference's.  Entries that no manifest, index or
  metadata file names (a graph-driver save's legacy layer JSON) are not part
  of any image, and are not written.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from typing import Literal

from harness.errors import HarnessError, UsageError
from harness.image import Archive
from harness.reference.blobs import BlobWriter, StandInBlobs
from harness.reference.carry import check_carriable, check_missing
from harness.reference.layout import LayoutWriter, canonical_json
from harness.reference.legacylayout import write_legacy
from harness.reference.tarwriter import CanonicalTar, DigestTar, SkeletonTar, Unsized

Layout = Literal["docker", "oci", "legacy"]
LAYOUTS: tuple[Layout, ...] = ("docker", "oci", "legacy")

__all__ = ["LAYOUTS", "Layout", "canonical_json", "reference_digest", "resolve_epoch", "write_reference"]


def resolve_epoch(epoch: int | None) -> int:
    """The explicit epoch, else ``SOURCE_DATE_EPOCH``, else 0."""
    if epoch is not None:
        return epoch
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r} is not a number of seconds") from None


def write_reference(archive: Archive, out: str | os.PathLike[str], *, layout: Layout = "docker",
                    keep_compression: bool = False, epoch: int | None = None) -> None:
    """Write the canonical archive of everything `archive` holds to `out` (see the module docstring).

    What the form cannot carry raises `CannotCarry` before anything is
    written.  Writes to ``out + ".partial"`` (created anew: an existing file
    of that name is never overwritten) and renames at the end; on any error
    (a blob whose bytes do not hash to the digest it is written under raises
    `DigestMismatch`, a file that cannot be written `HarnessError`) the
    partial file is removed and nothing is left at `out`.
    """
    _check_form(archive, layout, keep_compression)
    out = os.fspath(out)
    partial = out + ".partial"
    created = False
    try:
        with open(partial, "xb") as f:
            created = True
            _write(CanonicalTar(f, resolve_epoch(epoch)), archive, layout, keep_compression)
        os.replace(partial, out)
    except BaseException as e:
        if created and os.path.exists(partial):
            os.remove(partial)
        if isinstance(e, OSError):
            raise HarnessError(f"cannot write {e.filename2 or e.filename or out}: {e.strerror or e}") from e
        raise


def reference_digest(archive: Archive, scratch: str | os.PathLike[str], *, layout: Layout = "docker",
                     keep_compression: bool = False, epoch: int | None = None) -> str:
    """``sha256:<hex>`` of the archive `write_reference` writes of `archive`, with the same checks and refusals.

    Worked out once per process per canonical form: when this process knows the digest of every blob the
    form holds (the reader hashed it or inflated it), the form's skeleton (`SkeletonTar`: the archive with
    each blob's digest in place of its bytes) is hashed first, and a form seen before is not formed again,
    whichever archive it came from (an engine's save of an image and the image as it came).  Else the
    canonical bytes are hashed as they are formed, and nothing is written, when every member's size is
    known before its bytes (every layer stored as it will be written or inflated before, every blob
    hashed by the reader): a 1 GiB image is then read once, not copied into a new file and read again.
    Otherwise the archive is written in a temporary directory under `scratch`, hashed and removed.
    """
    _check_form(archive, layout, keep_compression)
    skeleton = SkeletonTar(resolve_epoch(epoch))
    try:
        _write(skeleton, archive, layout, keep_compression, StandInBlobs)
        key: str | None = skeleton.digest()
    except Unsized:
        key = None
    with _lock:
        if key is not None and key in _digests:
            return _digests[key]
    digest = _reference_digest(archive, scratch, layout, keep_compression, epoch)
    if key is not None:
        with _lock:
            if len(_digests) >= MAX_FORMS:
                del _digests[next(iter(_digests))]
            _digests[key] = digest
    return digest


MAX_FORMS = 1024
_lock = threading.Lock()
_digests: dict[str, str] = {}  # skeleton digest → canonical digest


def _reference_digest(archive: Archive, scratch: str | os.PathLike[str], layout: Layout, keep_compression: bool,
                      epoch: int | None) -> str:
    tar = DigestTar(resolve_epoch(epoch))
    try:
        _write(tar, archive, layout, keep_compression)
        return tar.digest()
    except Unsized:
        pass
    with tempfile.TemporaryDirectory(dir=scratch, prefix="canonical-") as tmp:
        out = os.path.join(tmp, "canonical.tar")
        write_reference(archive, out, layout=layout, keep_compression=keep_compression, epoch=epoch)
        with open(out, "rb") as f:
            return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def _check_form(archive: Archive, layout: Layout, keep_compression: bool) -> None:
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r} (choose from {', '.join(LAYOUTS)})")
    if keep_compression and layout == "legacy":
        raise UsageError("--keep-compression needs an OCI layout: the legacy layout stores layer.tar uncompressed")
    check_carriable(archive, layout)


def _write(tar: CanonicalTar, archive: Archive, layout: Layout, keep_compression: bool,
           blob_writer: type[BlobWriter] = BlobWriter) -> None:
    with blob_writer(tar) as blobs:
        if layout == "legacy":
            write_legacy(tar, blobs, archive)
        else:
            LayoutWriter(tar, blobs, archive, keep_compression=keep_compression).write(
                with_manifest_json=layout == "docker")
        blobs.finish()
    check_missing(archive.problems)  # settling the readers' deferred checks: the writing did most
    tar.close()
