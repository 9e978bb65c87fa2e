"""A corpus of hostile and broken image archives, built by code into a directory.

Each `Case` is a file and what the CLI must make of it:

- ``error``: a regex; ``inspect`` and ``diff`` (against `Case.pair`) exit 2
  with exactly one line on stderr that matches it;
- ``findings``: the image is readable; ``inspect`` exits 0 and ``diff`` against
  `Case.pair` exits 1 naming at least these categories.

`truncations` cuts small valid archives of every format at every 512-byte
boundary and inside every block, and says which cuts must fail.  Large
inputs (the 10 GiB bombs, the 1 TB size claims) are streamed from a few
distinct pieces and never exist whole, in memory or on disk.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import zstandard

from tests import archives as A
from tests.archives import F

IMAGE = A.sample_image("hostile:1", seed="h")
TB = 1 << 40
BOMB_SIZE = 10 << 30
# sha256 of a GNU tar header for "zeros" (BOMB_SIZE - 1536 bytes, mode 0644, everything else zero)
# followed by BOMB_SIZE - 512 zero bytes; hashing them takes ~10 s, so it is computed once, here.
BOMB_DIFF_ID = "sha256:f4f5acb98ac12e702be69e2407bf276b818881574a7303ba4dcfb228bb2bb95b"


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    pair: Path                              # the valid archive `diff` compares it with
    error: str | None = None                # regex of the one-line message (exit 2)
    findings: frozenset[str] = frozenset()  # categories diff must name (exit 1) when readable


class Pieces(io.RawIOBase):
    """A stream of `(piece, times)` repeated in order: gigabytes from a few small pieces."""

    def __init__(self, pieces: Iterable[tuple[bytes, int]]) -> None:
        super().__init__()
        self._left = [(memoryview(p), n) for p, n in pieces if n and p]
        self._at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        if not self._left:
            return 0
        piece, times = self._left[0]
        n = min(len(b), len(piece) - self._at)
        b[:n] = piece[self._at:self._at + n]
        self._at += n
        if self._at == len(piece):
            self._at = 0
            self._left[0] = (piece, times - 1)
            if times == 1:
                self._left.pop(0)
        return n


def _size_of(pieces: list[tuple[bytes, int]]) -> int:
    return sum(len(p) * n for p, n in pieces)


def _digest_of(pieces: list[tuple[bytes, int]]) -> str:
    h = hashlib.sha256()
    stream = Pieces(pieces)
    while chunk := stream.read(1 << 20):
        h.update(chunk)
    return "sha256:" + h.hexdigest()


def bomb_header() -> bytes:
    """The tar header the bomb's content starts with: one file of zeros filling BOMB_SIZE."""
    ti = tarfile.TarInfo("zeros")
    ti.size, ti.mode = BOMB_SIZE - 1536, 0o644
    return ti.tobuf(tarfile.GNU_FORMAT)


def bomb(how: str) -> list[tuple[bytes, int]]:
    """BOMB_SIZE of layer tar (a header, then zeros) compressed to ~10 MB (gzip) or ~330 KB (zstd).

    Gzip members and zstd frames may follow each other, so one compressed
    piece of zeros repeated is a valid stream; the first piece carries the header.
    """
    step = 64 << 20 if how == "gzip" else 256 << 20
    zeros = bytes(step)
    squeeze: Callable[[bytes], bytes] = (
        (lambda d: gzip.compress(d, compresslevel=9, mtime=0)) if how == "gzip"
        else zstandard.ZstdCompressor(level=3).compress)
    first = squeeze(bomb_header() + zeros[:step - 512])
    return [(first, 1), (squeeze(zeros), BOMB_SIZE // step - 1)]


def _oci(path: Path, config: bytes, layers: list[tuple[list[tuple[bytes, int]], str]]) -> Path:
    """An OCI layout whose layer blobs are streamed from pieces: `layers` is (pieces, media type)."""
    descs = [{"mediaType": mt, "digest": _digest_of(p), "size": _size_of(p)} for p, mt in layers]
    manifest = A.jdump({"schemaVersion": 2, "mediaType": A.OCI_MANIFEST,
                        "config": {"mediaType": A.OCI_CONFIG, "digest": A.sha(config), "size": len(config)},
                        "layers": descs})
    index = A.jdump({"schemaVersion": 2, "mediaType": A.OCI_INDEX, "manifests": [
        {"mediaType": A.OCI_MANIFEST, "digest": A.sha(manifest), "size": len(manifest),
         "annotations": {"io.containerd.image.name": "docker.io/library/hostile:1"}}]})
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), (_blob(config), config),
                           (_blob(manifest), manifest), ("index.json", index)]:
            _add(tf, name, data)
        for (pieces, _), desc in zip(layers, descs):
            ti = tarfile.TarInfo(_blob(str(desc["digest"])))
            ti.size, ti.mode = _size_of(pieces), 0o644
            tf.addfile(ti, io.BufferedReader(Pieces(pieces)))
    return path


def _blob(data_or_digest: bytes | str) -> str:
    digest = data_or_digest if isinstance(data_or_digest, str) else A.sha(data_or_digest)
    return "blobs/sha256/" + A.hexof(digest)


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode = len(data), 0o644
    tf.addfile(ti, io.BytesIO(data))


def _config(diff_ids: list[str]) -> bytes:
    return A.jdump({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                    "rootfs": {"type": "layers", "diff_ids": diff_ids}})


def members(path: Path) -> list[F]:
    """The members of a tar written by `tests.archives`, as `F`s (to rebuild it with changes)."""
    out = []
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            f = tf.extractfile(m) if m.isreg() else None
            out.append(F(m.name, f.read() if f else b"", dir=m.isdir(),
                         symlink=m.linkname if m.issym() else None, hardlink=m.linkname if m.islnk() else None))
    return out


def _huge_header(name: str, size: int) -> bytes:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode = size, 0o644
    return ti.tobuf(tarfile.GNU_FORMAT)


def _extension(kind: bytes, content: bytes) -> bytes:
    """An extension header (PAX ``x``, GNU long name ``L``) with its content, padded to whole blocks."""
    ti = tarfile.TarInfo("././@PaxHeader" if kind == tarfile.XHDTYPE else "././@LongLink")
    ti.type, ti.size = kind, len(content)
    return ti.tobuf(tarfile.GNU_FORMAT) + content + bytes(-len(content) % 512)


def _pax_record(key: str, value: bytes) -> bytes:
    body = f" {key}=".encode() + value + b"\n"
    n = len(body) + len(str(len(body)))
    n += len(str(n)) - len(str(len(body)))
    return str(n).encode() + body


def _cut_sparse_header() -> bytes:
    """A GNU sparse header announcing extension blocks that never come."""
    ti = tarfile.TarInfo("sparse")
    ti.type = tarfile.GNUTYPE_SPARSE
    block = bytearray(ti.tobuf(tarfile.GNU_FORMAT))
    block[482] = 1  # isextended
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def _fan_out(oci: Path, out: Path, levels: int = 7, width: int = 10) -> Path:
    """The OCI archive with its manifest under `levels` nested indexes, each naming the next `width` times:
    ``width ** levels`` paths to one image in a 10 KB file."""
    kept = [m for m in members(oci) if m.name != "index.json"]
    blob = A.jdump(json.loads(A.tar_member(oci, "index.json")))
    for _ in range(levels):
        kept.append(F(_blob(blob), blob))
        child = {"mediaType": A.OCI_INDEX, "digest": A.sha(blob), "size": len(blob)}
        blob = A.jdump({"schemaVersion": 2, "mediaType": A.OCI_INDEX, "manifests": [child] * width})
    return A.write_tar(out, [*kept, F("index.json", blob)])


def _podman_with_layer_path(path: Path, out: Path, link: F) -> Path:
    """The podman archive with manifest.json's first layer path replaced by the entry `link`."""
    items = json.loads(A.tar_member(path, "manifest.json"))
    items[0]["Layers"][0] = link.name
    kept = [m for m in members(path) if m.name != "manifest.json"]
    return A.write_tar(out, kept + [F("evil", dir=True), link, F("manifest.json", A.jdump(items))])


def _image_with_layer(layer_1: bytes) -> A.TestImage:
    return A.TestImage([IMAGE.layers[0], layer_1], tags=list(IMAGE.tags))


def _hostile_layer(extra: list[F]) -> bytes:
    """IMAGE's second layer with hostile members added."""
    return A.tar_bytes([F("bin", dir=True), F("etc", dir=True), F("bin/h1", b"x" * 100),
                        F("etc/h1.txt", b"h layer 1\n"), *extra])


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def build(root: Path) -> list[Case]:
    """Write every case under `root` (empty or not yet there); the valid pairs live beside them."""
    root.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(7)
    docker = A.docker_oci(root / "valid-docker.tar", [IMAGE])
    oci = A.oci(root / "valid-oci.tar", [IMAGE], how="gzip")
    podman = A.podman(root / "valid-podman.tar", [IMAGE])
    legacy = A.legacy(root / "valid-legacy.tar", [IMAGE])
    cases: list[Case] = []

    def error(name: str, data: bytes | Path, match: str, pair: Path = docker) -> None:
        path = data if isinstance(data, Path) else root / f"{name}.tar"
        if not isinstance(data, Path):
            path.write_bytes(data)
        cases.append(Case(name, path, pair, error=match))

    def readable(name: str, path: Path, findings: Iterable[str], pair: Path = docker) -> None:
        cases.append(Case(name, path, pair, findings=frozenset(findings)))

    blob = rnd.randbytes(64 << 10)
    error("empty", b"", r"not a valid tar \(empty file\)")
    error("random-bytes", blob, r"not a valid tar")
    error("random-gzip", gzip.compress(blob, mtime=0), r"not a valid tar")
    error("gzip-magic-then-garbage", b"\x1f\x8b" + blob, r"corrupt compressed data")
    error("not-an-image", A.write_tar(root / "not-an-image.tar", [
        F("notes.txt", b"hello\n"), F("data", dir=True), F("data/blob.bin", rnd.randbytes(3000))]),
        r"not an image archive")

    # Names and links that point outside the archive.
    error("dotdot-outer", A.write_tar(root / "dotdot-outer.tar", [F("../evil", b"x"), *members(docker)]),
          r"entry name '\.\./evil' climbs out of the archive")
    error("absolute-outer", A.write_tar(root / "absolute-outer.tar", [*members(docker), F("/etc/passwd", b"x")]),
          r"absolute entry name '/etc/passwd'")
    error("symlink-outside-outer", _podman_with_layer_path(
        podman, root / "symlink-outside-outer.tar", F("evil/layer.tar", symlink="../../etc/passwd")),
        r"link target '\.\./\.\./etc/passwd' leaves the archive", podman)
    error("symlink-absolute-outer", _podman_with_layer_path(
        podman, root / "symlink-absolute-outer.tar", F("evil/layer.tar", symlink="/etc/passwd")),
        r"link to absolute path '/etc/passwd'", podman)
    error("hardlink-outside-outer", _podman_with_layer_path(
        podman, root / "hardlink-outside-outer.tar", F("evil/layer.tar", hardlink="../etc/passwd")),
        r"link target '\.\./etc/passwd' leaves the archive", podman)
    readable("unused-links-outer", A.write_tar(root / "unused-links-outer.tar", [
        *members(docker), F("evil", symlink="/etc/shadow"), F("evil2", hardlink="../../etc/shadow")]),
        ["added"])
    readable("dotdot-in-layer", A.docker_oci(root / "dotdot-in-layer.tar", [_image_with_layer(_hostile_layer([
        F("../../../etc/cron.d/evil", b"* * * * * root sh\n"), F("/etc/passwd", b"root::0:0::/:/bin/sh\n")]))]),
        ["added"])
    readable("links-outside-in-layer", A.docker_oci(root / "links-outside-in-layer.tar", [
        _image_with_layer(_hostile_layer([F("etc/shadow-link", symlink="../../../../etc/shadow"),
                                          F("etc/abs-link", symlink="/etc/shadow"),
                                          F("etc/hard-link", hardlink="../../etc/shadow")]))]),
        ["added"])

    # Sizes a header claims, and bombs.
    error("huge-size-outer", b"".join([A.tar_bytes([F("manifest.json", b"[]")])[:1024],
                                       _huge_header("blobs/big", TB), bytes(4096)]),
          r"unexpected end of data \(4096 of 1099511627776 bytes\)")
    huge_layer = _huge_header("big", TB) + bytes(4096)
    error("huge-size-in-layer", A.docker_oci(root / "huge-size-in-layer.tar", [_image_with_layer(huge_layer)]),
          r"image\[0\]\.layer\[\d\] \(blobs/sha256/\w+\): unexpected end of data \(4096 of 1099511627776 bytes\)")
    error("pax-header-2mib-outer", b"".join([
        _extension(tarfile.XHDTYPE, _pax_record("comment", b"x" * (2 << 20))),
        A.tar_bytes([F("manifest.json", b"[]")], fmt=tarfile.USTAR_FORMAT)]),
        r"a 2097\d{3}-byte extension header \(PAX or long name\) exceeds 1 MiB")
    error("longname-2mib-in-layer", A.docker_oci(root / "longname-2mib-in-layer.tar", [_image_with_layer(
        _extension(tarfile.GNUTYPE_LONGNAME, b"a" * (2 << 20)) + _huge_header("a", 0) + bytes(1024))]),
        r"image\[0\]\.layer\[\d\] \(blobs/sha256/\w+\): a 2097152-byte extension header \(PAX or long name\) exceeds 1 MiB")
    error("pax-chain-in-layer", A.docker_oci(root / "pax-chain-in-layer.tar", [_image_with_layer(
        _extension(tarfile.XHDTYPE, _pax_record("comment", b"again")) * 3000 + _huge_header("a", 0) + bytes(1024))]),
        r"image\[0\]\.layer\[\d\] \(blobs/sha256/\w+\): too many extension headers in a row")
    error("sparse-header-cut-outer", _cut_sparse_header(), r"tar header cut short near offset 512")
    for how in ("gzip", "zstd"):
        path = _oci(root / f"{how}-bomb-layer.tar", _config([BOMB_DIFF_ID]), [(bomb(how), A.LAYER_TYPES[how])])
        cases.append(Case(f"{how}-bomb-layer", path, oci,
                          error=r"image\[0\]\.layer\[0\] .*compressed bytes inflate to more than \d+ "
                                r"\(a decompression bomb\?\) \(IMGHARNESS_MAX_INFLATE_RATIO=N"))
    outer_bomb = root / "gzip-bomb-outer.tar.gz"
    with outer_bomb.open("wb") as f:
        for piece, times in bomb("gzip"):
            for _ in range(times):
                f.write(piece)
    cases.append(Case("gzip-bomb-outer", outer_bomb, docker,
                      error=r"compressed bytes inflate to more than \d+ \(a decompression bomb\?\)"))

    readable("index-fan-out", _fan_out(oci, root / "index-fan-out.tar"), ["added"], oci)

    # Entries that are there twice, or not at all, or not what their digest says.
    error("duplicate-outer", A.write_tar(root / "duplicate-outer.tar", [
        *members(docker), F("./manifest.json", b"[]")]), r"duplicate entry 'manifest.json'")
    readable("duplicate-in-layer", A.docker_oci(root / "duplicate-in-layer.tar", [_image_with_layer(_hostile_layer([
        F("etc/h1.txt", b"second copy\n")]))]), ["content"])
    layer_blob = _blob(A.sha(IMAGE.blobs("gzip")[1]))
    readable("missing-blob", A.write_tar(root / "missing-blob.tar", [m for m in members(oci) if m.name != layer_blob]),
             ["missing"], oci)
    readable("missing-layer-file", A.rewrite(podman, root / "missing-layer-file.tar",
                                             {f"{A.hexof(IMAGE.diff_ids[1])}.tar": None}), ["missing"], podman)
    tampered = bytearray(IMAGE.layers[0])
    tampered[tampered.index(b"h layer 0")] = ord("H")
    readable("digest-mismatch-layer", A.rewrite(docker, root / "digest-mismatch-layer.tar",
                                                {_blob(IMAGE.diff_ids[0]): bytes(tampered)}),
             ["digest-mismatch", "content"])
    readable("digest-mismatch-config", A.rewrite(docker, root / "digest-mismatch-config.tar",
                                                 {_blob(IMAGE.id): IMAGE.config.replace(b"amd64", b"arm64")}),
             ["digest-mismatch", "config"])

    # Metadata that is not JSON, too deep, too big, too many values; names that are not UTF-8.
    error("garbage-json", A.rewrite(docker, root / "garbage-json.tar", {"manifest.json": b"\x00{garbage"}),
          r"manifest.json: invalid JSON")
    error("deep-json-index", A.rewrite(oci, root / "deep-json-index.tar", {"index.json": _deep(100_000)}),
          r"index.json: JSON nested deeper than 200", oci)
    error("deep-json-config", A.rewrite(legacy, root / "deep-json-config.tar",
                                        {f"{A.hexof(IMAGE.id)}.json": b'{"a":' + _deep(100_000) + b"}"}),
          r"config \w+\.json: JSON nested deeper than 200", legacy)
    error("huge-json", A.rewrite(docker, root / "huge-json.tar", {"manifest.json": b"[" + b" " * (17 << 20) + b"]"}),
          r"manifest.json: \d+ bytes exceeds the 16 MiB limit for metadata")
    error("many-values-json", A.rewrite(legacy, root / "many-values-json.tar", {
        f"{A.hexof(IMAGE.id)}.json": b'{"history":[' + b"[]," * 2_000_000 + b"[]]}"}),
          r"JSON values", legacy)
    odd = "cfg\n\x1b[31m.json"  # a newline and a terminal escape in an entry name the error names
    error("control-chars-in-names", A.write_tar(root / "control-chars-in-names.tar", [
        F(odd, b"{garbage"), F("manifest.json", A.jdump([{"Config": odd, "RepoTags": ["x:1"], "Layers": []}]))]),
        r"config cfg\\n\\x1b\[31m\.json: invalid JSON")
    with tarfile.open(root / "non-utf8-outer.tar", "w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tf:
        _add(tf, "caf\xe9", b"x")
    error("non-utf8-outer", root / "non-utf8-outer.tar", r"entry name is not UTF-8")
    readable("non-utf8-in-layer", A.docker_oci(root / "non-utf8-in-layer.tar", [_image_with_layer(
        _latin1_layer())]), ["added"])
    return cases


def _latin1_layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tf:
        for name, data in [("bin/h1", b"x" * 100), ("etc/h1.txt", b"h layer 1\n"), ("etc/caf\xe9\xff", b"bytes")]:
            _add(tf, name, data)
    return buf.getvalue()


@dataclass(frozen=True)
class Cut:
    """A valid archive cut at `offset`, and what reading it must give: "fail", "read" or "either"."""

    format: str
    path: Path
    offset: int
    expect: str


FORMATS: dict[str, Callable[[Path], Path]] = {
    **A.writers([IMAGE]),
    "docker-oci-gzipped": lambda p: A.compress_file(A.docker_oci(p, [IMAGE]), "gzip"),
}


def truncations(root: Path) -> Iterator[Cut]:
    """Every 512-byte boundary and one offset inside every block, up to the end-of-archive blocks, per format.

    A cut inside a member must fail.  A cut between members reads as a
    shorter tar (and fails only if it lost a member an image needs); once the
    first end-of-archive block is whole, nothing is lost.  A gzip file is
    judged by what its cut prefix inflates to: the reader stops at the end of
    the tar and never sees a cut in the gzip trailer.
    """
    root.mkdir(parents=True, exist_ok=True)
    for name, make in FORMATS.items():
        valid = make(root / name)
        data = valid.read_bytes()
        compressed = data[:2] == b"\x1f\x8b"
        starts, end = _member_starts(valid)
        last = len(data) if compressed else end + 1024
        for block, offset in enumerate(range(0, last, 512)):
            for cut in (offset, offset + 1 + (block * 97) % 511):
                if cut >= last:
                    continue
                path = root / f"{name}-cut-{cut}"
                path.write_bytes(data[:cut])
                tar_cut = len(zlib.decompressobj(31).decompress(data[:cut])) if compressed else cut
                expect = "read" if tar_cut >= end + 512 else "either" if tar_cut in starts or tar_cut == end else "fail"
                yield Cut(name, path, cut, expect)


def _member_starts(path: Path) -> tuple[set[int], int]:
    """Offsets where members begin (their first header, PAX included), and where the last member ends."""
    with tarfile.open(path) as tf:
        infos = tf.getmembers()
    starts = {ti.offset for ti in infos}
    end = max(ti.offset_data + -(-ti.size // 512) * 512 for ti in infos)
    return starts, end
