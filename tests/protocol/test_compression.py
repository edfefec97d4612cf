"""Codecs: round trips, Kafka's framing quirks, bomb guards, and cross-checks with kafka-python."""

from __future__ import annotations

import contextlib
import gzip
import os
import random
import struct
import types
from collections.abc import Iterator

import cramjam
import kafka.codec
import lz4.frame
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.compression import (
    DEFAULT_MAX_DECOMPRESSED_SIZE,
    CompressionError,
    compress,
    decompress,
    xxh32,
)
from protocol.errors import ProtocolError

CODECS = [0, 1, 2, 3, 4]
COMPRESSED = [1, 2, 3, 4]
FAST = settings(max_examples=40, deadline=None, database=None)
TEXT = b"".join(b"record %d: the quick brown fox; " % i for i in range(3000))  # ~100 KB

SNAPPY_SHIM = types.SimpleNamespace(
    compress=lambda data: bytes(cramjam.snappy.compress_raw(bytes(data))),
    decompress=lambda data: bytes(cramjam.snappy.decompress_raw(bytes(data))),
)


class _XXH32:
    """Stand-in for the xxhash package, which kafka-python needs for magic-0 lz4."""

    def __init__(self, data: bytes) -> None:
        self._value = xxh32(bytes(data))

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


XXHASH_SHIM = types.SimpleNamespace(xxh32=_XXH32)


@pytest.fixture(scope="module", autouse=True)
def kafka_python_codecs() -> Iterator[None]:
    """kafka-python's snappy needs python-snappy: give it raw snappy from cramjam instead.

    Only the raw block codec is swapped; the xerial framing under test is kafka-python's own.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kafka.codec, "snappy", SNAPPY_SHIM)
        mp.setattr(kafka.codec, "xxhash", XXHASH_SHIM)
        yield


# --- round trips ------------------------------------------------------------------------------


@FAST
@given(
    data=st.binary(max_size=3000), codec=st.sampled_from(CODECS), magic=st.sampled_from([0, 1, 2])
)
def test_round_trip(data: bytes, codec: int, magic: int) -> None:
    assert decompress(codec, compress(codec, data, magic=magic), magic=magic) == data


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_large_and_memoryview(codec: int) -> None:
    blob = compress(codec, memoryview(TEXT))
    assert decompress(codec, memoryview(blob)) == TEXT
    assert decompress(codec, bytearray(blob)) == TEXT


@pytest.mark.parametrize("codec", [5, 6, 7, -1])
def test_unknown_codec(codec: int) -> None:
    with pytest.raises(CompressionError):
        compress(codec, b"x")
    with pytest.raises(CompressionError):
        decompress(codec, b"x")


# --- snappy (xerial framing) ------------------------------------------------------------------


def test_xerial_header_and_chunks() -> None:
    blob = compress(2, TEXT)
    assert blob[:16] == b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    pos, chunks = 16, []
    while pos < len(blob):
        (length,) = struct.unpack_from(">i", blob, pos)
        chunks.append(bytes(cramjam.snappy.decompress_raw(blob[pos + 4 : pos + 4 + length])))
        pos += 4 + length
    assert pos == len(blob)
    assert [len(c) for c in chunks[:-1]] == [32 * 1024] * (len(chunks) - 1)
    assert b"".join(chunks) == TEXT


def test_snappy_reads_raw_blocks_and_concatenated_streams() -> None:
    raw = bytes(cramjam.snappy.compress_raw(TEXT))
    assert decompress(2, raw) == TEXT
    assert decompress(2, compress(2, b"abc") + compress(2, b"def")) == b"abcdef"
    # Version fields are not checked (some producers write them little-endian).
    little = bytearray(compress(2, b"abc"))
    little[8:16] = struct.pack("<ii", 1, 1)
    assert decompress(2, little) == b"abc"


def test_snappy_cross_check_kafka_python() -> None:
    assert decompress(2, kafka.codec.snappy_encode(TEXT)) == TEXT
    assert kafka.codec.snappy_decode(compress(2, TEXT)) == TEXT


# --- lz4 --------------------------------------------------------------------------------------


def test_lz4_frame_is_what_kafka_writes() -> None:
    blob = compress(3, TEXT)
    assert blob[:4] == b"\x04\x22\x4d\x18"
    assert blob[4] == 0x60  # version 1, independent blocks, no checksums, no content size
    assert blob[5] == 0x40  # 64 KiB blocks
    assert blob[6] == (xxh32(blob[4:6]) >> 8) & 0xFF


def test_lz4_magic0_uses_the_broken_header_checksum() -> None:
    blob = compress(3, TEXT, magic=0)
    assert blob[6] == (xxh32(blob[0:6]) >> 8) & 0xFF
    assert blob[6] != compress(3, TEXT)[6]
    assert decompress(3, blob, magic=0) == TEXT
    with pytest.raises(CompressionError):
        decompress(3, blob, magic=1)
    # Magic 0 ignores the byte entirely, so a correct one is fine too.
    assert decompress(3, compress(3, TEXT), magic=0) == TEXT


def test_lz4_cross_check_kafka_python() -> None:
    assert decompress(3, kafka.codec.lz4_encode(TEXT)) == TEXT
    assert kafka.codec.lz4_decode(compress(3, TEXT)) == TEXT
    assert decompress(3, kafka.codec.lz4_encode_old_kafka(TEXT), magic=0) == TEXT
    assert kafka.codec.lz4_decode_old_kafka(compress(3, TEXT, magic=0)) == TEXT


def test_lz4_reads_frames_with_content_size_and_checksums() -> None:
    blob = lz4.frame.compress(TEXT, store_size=True, content_checksum=True, block_linked=True)
    assert decompress(3, blob) == TEXT
    # Kafka's reader stops at the end mark and ignores what follows.
    assert decompress(3, compress(3, b"ab") + b"trailing") == b"ab"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", 0x02CC5D05),
        (b"a", 0x550D7456),
        (b"abc", 0x32D153FF),
        (b"Nobody inspects the spammish repetition", 0xE2293B2F),
    ],
)
def test_xxh32_vectors(data: bytes, expected: int) -> None:
    assert xxh32(data) == expected


@FAST
@given(st.binary(min_size=1, max_size=40))
def test_xxh32_matches_lz4_frame_header_checksum(data: bytes) -> None:
    # lz4's own HC for a frame whose descriptor includes an 8-byte content size.
    frame = lz4.frame.compress(data, store_size=True)
    assert frame[14] == (xxh32(frame[4:14]) >> 8) & 0xFF


# --- gzip and zstd ----------------------------------------------------------------------------


def test_gzip_members_and_cross_check() -> None:
    assert gzip.decompress(compress(1, TEXT)) == TEXT
    assert decompress(1, gzip.compress(b"ab") + gzip.compress(b"cd")) == b"abcd"
    assert decompress(1, gzip.compress(b"ab") + b"trailing junk") == b"ab"
    assert decompress(1, kafka.codec.gzip_encode(TEXT)) == TEXT
    assert kafka.codec.gzip_decode(compress(1, TEXT)) == TEXT


def test_zstd_frame_without_content_size() -> None:
    obj = zstandard.ZstdCompressor().compressobj()
    frame = obj.compress(TEXT) + obj.flush()
    assert zstandard.get_frame_parameters(frame).content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert decompress(4, frame) == TEXT
    assert decompress(4, compress(4, b"ab") + compress(4, b"cd")) == b"abcd"
    assert decompress(4, kafka.codec.zstd_encode(TEXT)) == TEXT
    assert kafka.codec.zstd_decode(compress(4, TEXT)) == TEXT
    with pytest.raises(CompressionError):
        decompress(4, compress(4, b"ab") + b"junk")


# --- corrupt input ----------------------------------------------------------------------------


@pytest.mark.parametrize("codec", COMPRESSED)
def test_truncation_is_detected(codec: int) -> None:
    blob = compress(codec, os.urandom(5000) + TEXT)
    for cut in (0, 1, 5, len(blob) // 2, len(blob) - 1):
        with pytest.raises(CompressionError):
            decompress(codec, blob[:cut])


@pytest.mark.parametrize("codec", COMPRESSED)
def test_decompression_bombs_are_refused(codec: int) -> None:
    zeros = bytes(8 << 20)
    blob = compress(codec, zeros)
    assert len(blob) < 400_000
    with pytest.raises(CompressionError, match="exceeds"):
        decompress(codec, blob, max_size=1 << 20)
    assert len(decompress(codec, blob, max_size=len(zeros))) == len(zeros)


def test_zstd_bomb_with_extreme_ratio() -> None:
    blob = zstandard.ZstdCompressor(level=19).compress(bytes(64 << 20))
    assert len(blob) < 4096
    with pytest.raises(CompressionError, match="exceeds"):
        decompress(4, blob, max_size=1 << 20)


def test_default_limit_is_sane() -> None:
    assert 16 << 20 <= DEFAULT_MAX_DECOMPRESSED_SIZE <= 1 << 30
    with pytest.raises(CompressionError):
        decompress(0, b"abc", max_size=2)


@FAST
@given(
    codec=st.sampled_from(COMPRESSED), magic=st.sampled_from([0, 2]), data=st.binary(max_size=300)
)
def test_fuzz_random_bytes(codec: int, magic: int, data: bytes) -> None:
    with contextlib.suppress(CompressionError):
        decompress(codec, data, 1 << 16, magic=magic)


@pytest.mark.parametrize("codec", COMPRESSED)
def test_fuzz_mutated_frames(codec: int) -> None:
    rng = random.Random(codec)
    blob = compress(codec, TEXT[:20000])
    prefixes = [blob[:n] for n in (0, 4, 7, 16, 20)]
    for _ in range(300):
        mutated = bytearray(blob)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        candidates = [bytes(mutated), rng.choice(prefixes) + rng.randbytes(rng.randint(0, 64))]
        for candidate in candidates:
            with contextlib.suppress(ProtocolError):
                decompress(codec, candidate, 1 << 20)


def test_snappy_xerial_bad_chunk_lengths() -> None:
    header = compress(2, b"")
    for tail in (b"\x00\x00", struct.pack(">i", -5), struct.pack(">i", 100) + b"x"):
        with pytest.raises(CompressionError):
            decompress(2, header + tail)
    with pytest.raises(CompressionError):
        decompress(2, b"\x82SNAPPY\x00\x00")  # header cut short
    assert decompress(2, header) == b""
