"""What the canonical form cannot carry, refused in one line instead of written as a smaller archive.

Before anything is written (`check_carriable`): a descriptor the reader did
not follow (a media type it does not know may name further blobs it cannot
see; a manifest an index names but the archive lacks is a partial save), a
blob a followed manifest names but the archive lacks, and indexes,
attestations or artifacts asked of the legacy layout, which has no place for
them.  After the blobs are written (`check_missing`, when the readers'
deferred checks cost nothing more): a manifest index.json names but the
archive lacks, which the readers know only as a problem.  Other problems of
the source (a digest or size its bytes contradict) are not refused here: the
writer verifies every blob it writes against the digest it writes it under,
and regenerates the metadata that was wrong, so they stay the reader's
findings (the CLI prints them as warnings).
"""

from __future__ import annotations

from typing import Sequence

from harness.errors import CannotCarry
from harness.findings import Category, Finding
from harness.image import Archive, Image, Platform, Referrer
from harness.reference.layout import image_label

NOT_IN_THE_ARCHIVE = "not in the archive"  # how the OCI reader says a named manifest was not saved


def check_carriable(archive: Archive, layout: str) -> None:
    """Raise `CannotCarry` for the first thing in `archive` that a reference in `layout` cannot hold."""
    if layout == "legacy" and (archive.indexes or archive.referrers):
        raise CannotCarry("the legacy layout (Docker <= 24) has no place for an image index, attestations or "
                          "artifacts: write this archive with --layout docker or oci")
    for u in archive.unfollowed:
        d = u.descriptor
        if NOT_IN_THE_ARCHIVE in u.reason:
            platform = f" ({Platform.of(d.platform)})" if Platform.of(d.platform) else ""
            raise CannotCarry(f"{u.where}: manifest {d.digest}{platform} is not in the archive: a reference of "
                              "a partial save would name what it does not hold")
        raise CannotCarry(f"{u.where}: {d.digest} has media type {d.media_type or '(none)'}, which is neither an "
                          "index nor a manifest: a reference cannot carry what it cannot follow")
    for k, image in enumerate(archive.images):
        _image_complete(k, image)
    for r in archive.referrers:
        _referrer_complete(r)


def check_missing(problems: Sequence[Finding]) -> None:
    """Raise `CannotCarry` for the first blob the readers found missing."""
    for p in problems:
        if p.category is Category.MISSING:
            raise CannotCarry(f"{p.where}: blob {p.a} is missing from the archive ({p.note})")


def _image_complete(k: int, image: Image) -> None:
    label = image_label(k, image)
    if image.config_missing:
        raise CannotCarry(f"{label}: config blob {image.config_digest} is missing from the archive")
    for layer in image.layers:
        if not layer.present:
            raise CannotCarry(f"{label}: layer {layer.position} blob {layer.digest} is missing from the archive")


def _referrer_complete(r: Referrer) -> None:
    for role, blob in (("config", r.config), *((f"layer {j}", b) for j, b in enumerate(r.blobs))):
        if not blob.present:
            raise CannotCarry(f"{r.kind} {r.manifest.digest}: {role} blob {blob.descriptor.digest} is missing "
                              "from the archive")

