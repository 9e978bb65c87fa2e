"""Compression is read from magic bytes, for layers and for the archive file itself."""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

import pytest
import zstandard

from harness.archive import read_archive
from harness.archive.compression import ALLOWANCE, RATIO, RATIO_ENV, detect, inflate
from harness.errors import MalformedArchive, UsageError
from harness.image import Compression
from tests import archives as A

IMAGE = A.sample_image("c:1", seed="c")


@pytest.mark.parametrize("how", ["none", "gzip", "zstd"])
def test_layers_in_every_compression_read_and_verify(tmp_path: Path, how: str) -> None:
    archive = read_archive(A.oci(tmp_path / "a.tar", [IMAGE], how=how))
    assert archive.problems == ()
    layer = archive.images[0].layers[0]
    assert layer.compression is Compression(how)
    assert layer.digest == A.sha(IMAGE.blobs(how)[0]) and layer.diff_id == IMAGE.diff_ids[0]
    with layer.uncompressed() as s:
        assert s.read() == IMAGE.layers[0]
    assert [f.path for f in layer.files()] == ["bin", "etc", "bin/c0", "etc/c0.txt"]


@pytest.mark.parametrize("how", ["gzip", "zstd"])
def test_a_compressed_archive_file_reads_like_the_plain_one(tmp_path: Path, how: str) -> None:
    plain = A.docker_oci(tmp_path / "a.tar", [IMAGE, A.sample_image("d:1", seed="d")])
    archive = read_archive(A.compress_file(plain, how))
    expected = read_archive(plain)
    assert archive.entries == expected.entries
    assert [im.id for im in archive.images] == [im.id for im in expected.images]
    with archive.images[1].layers[1].uncompressed() as s:
        assert s.read() == A.sample_image("d:1", seed="d").layers[1]
    assert len(list(archive.images[1].layers[0].files())) == 4


def test_magic_bytes_win_over_media_types(tmp_path: Path) -> None:
    """A manifest claiming +gzip over a plain tar is read as what the bytes are."""
    manifest = IMAGE.manifest("none").replace(b"layer.v1.tar\"", b"layer.v1.tar+gzip\"")
    members = [A.F("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), A.F(f"blobs/sha256/{A.hexof(IMAGE.id)}", IMAGE.config)]
    members += [A.F(f"blobs/sha256/{A.hexof(A.sha(la))}", la) for la in IMAGE.layers]
    members += [A.F(f"blobs/sha256/{A.hexof(A.sha(manifest))}", manifest),
                A.F("index.json", A.jdump({"schemaVersion": 2, "manifests": [
                    {"mediaType": A.OCI_MANIFEST, "digest": A.sha(manifest), "size": len(manifest)}]}))]
    archive = read_archive(A.write_tar(tmp_path / "a.tar", members))
    layer = archive.images[0].layers[0]
    assert layer.media_type.endswith("+gzip") and layer.compression is Compression.NONE
    assert archive.problems == ()
    assert detect(b"\x1f\x8b\x08\x00") is Compression.GZIP
    assert detect(b"\x28\xb5\x2f\xfd") is Compression.ZSTD
    assert detect(b"ustar") is Compression.NONE and detect(b"") is Compression.NONE


def test_multi_member_gzip_and_multi_frame_zstd_are_one_stream() -> None:
    data = IMAGE.layers[0]
    half = len(data) // 2
    two_members = gzip.compress(data[:half]) + gzip.compress(data[half:])
    two_frames = zstandard.ZstdCompressor().compress(data[:half]) + zstandard.ZstdCompressor().compress(data[half:])
    assert inflate(io.BytesIO(two_members), Compression.GZIP, size=len(two_members)).read() == data
    assert inflate(io.BytesIO(two_frames), Compression.ZSTD, size=len(two_frames)).read() == data


@pytest.mark.parametrize("how", ["gzip", "zstd"])
def test_cut_compressed_streams_are_malformed_not_short(how: str) -> None:
    blob = A.compress(IMAGE.layers[0] * 50, how)
    with pytest.raises(MalformedArchive, match="corrupt compressed data"):
        inflate(io.BytesIO(blob[: len(blob) // 2]), Compression(how), size=len(blob) // 2).read()


def test_corrupt_gzip_layer_is_malformed_when_reading(tmp_path: Path) -> None:
    path = A.oci(tmp_path / "a.tar", [IMAGE], how="gzip")
    blob = IMAGE.blobs("gzip")[0]
    broken = blob[:10] + bytes(b ^ 0xFF for b in blob[10:30]) + blob[30:]
    out = A.rewrite(path, tmp_path / "b.tar", {f"blobs/sha256/{A.hexof(A.sha(blob))}": broken})
    with pytest.raises(MalformedArchive, match=r"image\[0\]\.layer\[0\].*corrupt compressed data"):
        read_archive(out)


def _zstd_frames() -> list[bytes]:
    """Frames of every header shape: checksum, no content size, streamed, empty, and a skippable frame."""
    data = IMAGE.layers[0] * 40
    streamed = zstandard.ZstdCompressor().compressobj()
    return [
        zstandard.ZstdCompressor(write_checksum=True).compress(data),
        zstandard.ZstdCompressor(write_content_size=False).compress(data[:5000]),
        struct.pack("<II", 0x184D2A5E, 4) + b"skip",
        zstandard.ZstdCompressor().compress(b""),
        streamed.compress(data[:3000]) + streamed.flush(),
    ]


def test_zstd_frames_of_every_shape_read_and_every_cut_inside_one_is_an_error() -> None:
    frames = _zstd_frames()
    blob = b"".join(frames)
    data = IMAGE.layers[0] * 40
    assert inflate(io.BytesIO(blob), Compression.ZSTD, size=len(blob)).read() == data + data[:5000] + data[:3000]
    ends = {sum(map(len, frames[:k])) for k in range(1, len(frames))}
    for cut in range(1, len(blob)):
        stream = inflate(io.BytesIO(blob[:cut]), Compression.ZSTD, size=cut)
        if cut in ends:
            stream.read()
        else:
            with pytest.raises(MalformedArchive, match="corrupt compressed data"):
                stream.read()


@pytest.mark.parametrize("how", ["gzip", "zstd"])
def test_a_stream_inflating_beyond_the_ratio_limit_is_a_bomb(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = A.compress(bytes(4 * ALLOWANCE), how)
    limit = RATIO * len(blob) + ALLOWANCE
    assert limit < 4 * ALLOWANCE
    with pytest.raises(MalformedArchive, match=f"{len(blob)} compressed bytes inflate to more than {limit}") as e:
        with inflate(io.BytesIO(blob), Compression(how), size=len(blob)) as s:
            while s.read(65536):
                pass
    assert e.value.hint is not None and RATIO_ENV in e.value.hint
    monkeypatch.setenv(RATIO_ENV, "0")
    assert len(inflate(io.BytesIO(blob), Compression(how), size=len(blob)).read()) == 4 * ALLOWANCE
    monkeypatch.setenv(RATIO_ENV, "lots")
    with pytest.raises(UsageError, match=RATIO_ENV):
        inflate(io.BytesIO(blob), Compression(how), size=len(blob))
