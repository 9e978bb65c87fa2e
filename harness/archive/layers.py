"""Layers read from an archive.

A layer holds no bytes: it keeps an opener on its blob (a window of the outer
file) and inflates on demand.  `files()` is the expensive call (it reads and
hashes the whole layer, `harness.tar.listing`), which is why the differ asks
for it only when two layers' digests differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Iterator, cast

from harness.archive import inflated_digests as inflated
from harness.archive.compression import inflate
from harness.archive.inflated_digests import Recording
from harness.errors import MalformedArchive
from harness.image import Compression, FileEntry, Opener
from harness.tar.listing import iter_layer_files
from harness.tar.streams import Labelled, ReadAhead

# Media types implied for formats whose manifest.json names no media type.
IMPLIED_MEDIA_TYPES = {
    Compression.NONE: "application/vnd.docker.image.rootfs.diff.tar",
    Compression.GZIP: "application/vnd.docker.image.rootfs.diff.tar.gzip",
    Compression.ZSTD: "application/vnd.oci.image.layer.v1.tar+zstd",
}


@dataclass(frozen=True)
class ArchiveLayer:
    """A `harness.image.Layer` whose blob is an entry of an archive file."""

    position: int
    diff_id: str
    digest: str
    size: int
    media_type: str
    compression: Compression
    entry_name: str
    opener: Opener = field(repr=False, compare=False)
    archive: str = field(default="", compare=False)  # path of the archive file, named in errors
    label: str = field(default="", compare=False)    # e.g. "image[0].layer[2]", named in errors

    @property
    def what(self) -> str:
        """How errors name the layer: ``image[0].layer[2] (blobs/sha256/…)``."""
        return f"{self.label} ({self.entry_name})" if self.label else f"layer {self.entry_name}"

    def compressed(self) -> IO[bytes]:
        return cast(IO[bytes], Labelled(self.opener(), self.what, self.archive or None))

    def uncompressed(self) -> IO[bytes]:
        """Inflated by a thread of its own; read to the end, it also settles the layer's diff_id check."""
        if self.compression is Compression.NONE or inflated.known(self.inflated_key):
            return self.inflating()
        inflating = cast(IO[bytes], ReadAhead(inflate(self.opener(), self.compression, size=self.size)))
        stream = cast(IO[bytes], Recording(inflating, self.inflated_key))
        return cast(IO[bytes], Labelled(stream, self.what, self.archive or None))

    def inflating(self) -> IO[bytes]:
        """The layer tar, inflated by a thread of its own, but not hashed: for a caller that hashes it anyway
        (and may `inflated.remember` the digest under `inflated_key`)."""
        if self.compression is Compression.NONE:
            return self.compressed()
        stream = cast(IO[bytes], ReadAhead(inflate(self.opener(), self.compression, size=self.size)))
        return cast(IO[bytes], Labelled(stream, self.what, self.archive or None))

    @property
    def inflated_key(self) -> inflated.Key:
        return inflated.key_of(self.digest, self.size)

    def files(self) -> Iterator[FileEntry]:
        return iter_layer_files(self.uncompressed, self.what, path=self.archive or None)

    @property
    def present(self) -> bool:
        return True


@dataclass(frozen=True)
class MissingLayer:
    """A layer whose blob the archive names but does not carry: known by its descriptor, never readable.
    `diff_id` is "" when the config is missing too."""

    position: int
    diff_id: str
    digest: str
    size: int
    media_type: str
    label: str = field(default="", compare=False)

    entry_name = ""

    @property
    def compression(self) -> Compression:
        """As the media type says (there are no bytes to detect it from)."""
        return next((c for c in (Compression.GZIP, Compression.ZSTD) if self.media_type.endswith(c.value)),
                    Compression.NONE)

    @property
    def present(self) -> bool:
        return False

    def _absent(self) -> MalformedArchive:
        return MalformedArchive(f"{self.label or 'layer'}: blob {self.digest} is missing from the archive")

    def compressed(self) -> IO[bytes]:
        raise self._absent()

    def uncompressed(self) -> IO[bytes]:
        raise self._absent()

    def files(self) -> Iterator[FileEntry]:
        raise self._absent()


