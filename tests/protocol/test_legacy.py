"""Legacy message sets (magic 0/1): round trips, wrappers, conversion, kafka-python cross-checks."""

from __future__ import annotations

import contextlib
import random
import struct
import types
import zlib
from collections.abc import Iterator
from typing import Any

import cramjam
import kafka.codec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

from protocol.compression import compress, decompress, xxh32
from protocol.errors import ProtocolError
from protocol.legacy import (
    MessageHeader,
    UnsupportedCompressionTypeError,
    build_message_set,
    check_message,
    decode_message_set,
    down_convert,
    iter_message_headers,
    read_message_header,
    up_convert,
)
from protocol.records import (
    Compression,
    ControlType,
    CorruptRecordError,
    InvalidRecordError,
    Record,
    RecordTuple,
    TimestampType,
    build_batch,
    build_control_batch,
    decode_batch,
    set_log_append_time,
    validate_batch,
)

FAST = settings(max_examples=30, deadline=None, database=None)
LEGACY_CODECS = [Compression.NONE, Compression.GZIP, Compression.SNAPPY, Compression.LZ4]
BLOBS = st.none() | st.binary(max_size=30)
RECORDS = st.lists(
    st.tuples(BLOBS, BLOBS, st.just(()), st.integers(0, 2**45)), min_size=1, max_size=6
)


class _XXH32:
    """Stand-in for the xxhash package, which kafka-python needs for magic-0 lz4."""

    def __init__(self, data: bytes) -> None:
        self._value = xxh32(bytes(data))

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


@pytest.fixture(scope="module", autouse=True)
def kafka_python_codecs() -> Iterator[None]:
    """Give kafka-python raw snappy (cramjam) and xxh32; its framing code stays its own."""
    snappy = types.SimpleNamespace(
        compress=lambda data: bytes(cramjam.snappy.compress_raw(bytes(data))),
        decompress=lambda data: bytes(cramjam.snappy.decompress_raw(bytes(data))),
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kafka.codec, "snappy", snappy)
        mp.setattr(kafka.codec, "xxhash", types.SimpleNamespace(xxh32=_XXH32))
        yield


def wrapper(magic: int, attributes: int, offset: int, value: bytes | None) -> bytes:
    """A hand-made legacy message with a null key (for wrappers kafka code would not build)."""
    body = bytes((magic, attributes)) + (struct.pack(">q", 0) if magic else b"")
    body += struct.pack(">i", -1)
    body += struct.pack(">i", -1) if value is None else struct.pack(">i", len(value)) + value
    return struct.pack(">qiI", offset, len(body) + 4, zlib.crc32(body)) + body


def triples(records: list[Record]) -> list[tuple[Any, ...]]:
    return [(r.offset, r.timestamp, r.key, r.value) for r in records]


def plain(n: int, base_ts: int = 1000) -> list[RecordTuple]:
    return [(b"k%d" % i, b"value %d " % i * 10, (), base_ts + i) for i in range(n)]


# --- round trips ------------------------------------------------------------------------------


@FAST
@given(
    records=RECORDS,
    magic=st.sampled_from([0, 1]),
    compression=st.sampled_from(LEGACY_CODECS),
    base_offset=st.integers(0, 2**40),
    log_append=st.booleans(),
)
def test_round_trip(
    records: list[RecordTuple],
    magic: int,
    compression: Compression,
    base_offset: int,
    log_append: bool,
) -> None:
    timestamp_type = TimestampType.LOG_APPEND_TIME if log_append else TimestampType.CREATE_TIME
    data = build_message_set(
        records,
        magic=magic,
        compression=compression,
        base_offset=base_offset,
        timestamp_type=timestamp_type,
        log_append_time=77,
    )
    decoded = decode_message_set(data)

    def timestamp(ts: int) -> int:
        if magic == 0:
            return -1
        return 77 if log_append else ts

    want = [(base_offset + i, timestamp(t), k, v) for i, (k, v, _, t) in enumerate(records)]
    assert triples(decoded) == want


def test_message_layout() -> None:
    data = build_message_set([(b"k", b"v", (), 5)], magic=1, base_offset=3)
    offset, size, crc, magic, attributes, timestamp = struct.unpack_from(">qiIbbq", data)
    assert (offset, size, magic, attributes, timestamp) == (3, len(data) - 12, 1, 0, 5)
    assert crc == zlib.crc32(data[16:])
    assert data[26:] == b"\x00\x00\x00\x01k\x00\x00\x00\x01v"
    header = check_message(data)
    assert header == MessageHeader(3, size, crc, 1, 0, 5)
    assert header.size == len(data) and header.compression == Compression.NONE
    v0 = build_message_set([(None, b"v", (), 5)], magic=0)
    assert v0[16:] == b"\x00\x00\xff\xff\xff\xff\x00\x00\x00\x01v"
    assert read_message_header(v0).timestamp == -1


@pytest.mark.parametrize("compression", LEGACY_CODECS[1:])
def test_magic1_wrapper_offsets_are_relative(compression: Compression) -> None:
    data = build_message_set(plain(4), magic=1, compression=compression, base_offset=100)
    [(_, outer)] = list(iter_message_headers(data))
    assert outer.offset == 103 and outer.compression == compression
    assert outer.timestamp == 1003  # the largest inner timestamp
    inner = decompress(compression, data[34:])  # 26-byte header + 4-byte null key + length
    assert [h.offset for _, h in iter_message_headers(inner)] == [0, 1, 2, 3]
    assert [r.offset for r in decode_message_set(data)] == [100, 101, 102, 103]
    # The wrapper offset is outside the CRC; the broker rewrites it to the last offset.
    moved = bytearray(data)
    struct.pack_into(">q", moved, 0, 503)
    assert [r.offset for r in decode_message_set(moved)] == [500, 501, 502, 503]
    struct.pack_into(">q", moved, 0, 0)  # "unassigned" (librdkafka): relative offsets as is
    assert [r.offset for r in decode_message_set(moved)] == [0, 1, 2, 3]
    struct.pack_into(">q", moved, 0, 2)
    with pytest.raises(InvalidRecordError, match="wrapper offset"):
        decode_message_set(moved)


def test_magic0_wrapper_offsets_are_absolute() -> None:
    data = build_message_set(plain(3), magic=0, compression=Compression.GZIP, base_offset=50)
    inner = decompress(1, data[26:])
    assert [h.offset for _, h in iter_message_headers(inner)] == [50, 51, 52]
    assert read_message_header(data).offset == 52


def test_log_append_time_wrapper() -> None:
    data = build_message_set(
        plain(3),
        magic=1,
        compression=Compression.LZ4,
        timestamp_type=TimestampType.LOG_APPEND_TIME,
        log_append_time=9999,
    )
    header = read_message_header(data)
    assert header.timestamp_type == TimestampType.LOG_APPEND_TIME and header.timestamp == 9999
    assert {r.timestamp for r in decode_message_set(data)} == {9999}
    theirs = [r for batch in MemoryRecords(data) for r in batch]
    assert {(r.timestamp, r.timestamp_type) for r in theirs} == {(9999, 1)}


# --- corrupt and invalid input ----------------------------------------------------------------


def test_flipped_bytes_fail_the_crc() -> None:
    for compression in LEGACY_CODECS:
        data = build_message_set(plain(2), magic=1, compression=compression)
        first = read_message_header(data).size
        for pos in range(12, first):  # crc .. value of the first message
            mutated = bytearray(data)
            mutated[pos] ^= 0x40
            with pytest.raises(ProtocolError):
                decode_message_set(mutated)


def test_partial_trailing_message_is_ignored() -> None:
    data = build_message_set(plain(3), magic=1)
    whole = len(data) // 3
    for cut in range(1, whole):
        assert len(decode_message_set(data[:-cut])) == 2
    with pytest.raises(CorruptRecordError, match="truncated"):
        list(iter_message_headers(data[:-1], allow_partial=False))


@pytest.mark.parametrize(
    ("magic", "attributes", "value", "error"),
    [
        (1, 1, None, "null value"),
        (1, 1, compress(1, b""), "no inner"),
        (1, 1, compress(1, build_message_set(plain(2), magic=1)[:-3]), "truncated"),
        (1, 1, compress(1, build_message_set(plain(2), magic=0)), "magic 0 inside"),
        (
            0,
            1,
            compress(1, build_message_set(plain(2), magic=0, compression=Compression.GZIP)),
            "compressed",
        ),
        (1, 4, compress(4, build_message_set(plain(1), magic=1)), "codec id 4"),
        (1, 2, b"\x82SNAPPY\x00 not snappy", "decompress"),
    ],
)
def test_bad_wrappers(magic: int, attributes: int, value: bytes | None, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        decode_message_set(wrapper(magic, attributes, 1, value))


def test_header_errors() -> None:
    good = build_message_set(plain(1), magic=1)
    bad_magic = bytearray(good)
    bad_magic[16] = 2
    with pytest.raises(CorruptRecordError, match="magic"):
        read_message_header(bad_magic)
    small = bytearray(good)
    struct.pack_into(">i", small, 8, 14)  # fine for magic 0, too small for magic 1
    with pytest.raises(CorruptRecordError, match="size"):
        read_message_header(small)
    tiny = bytearray(good)
    struct.pack_into(">i", tiny, 8, 13)
    with pytest.raises(CorruptRecordError):
        list(iter_message_headers(tiny))
    with pytest.raises(CorruptRecordError):
        read_message_header(good[:20])
    with pytest.raises(CorruptRecordError):
        check_message(good[:-1])
    lying = wrapper(0, 0, 0, b"abc")[:-3] + b"abcd"  # value length 3, 4 bytes follow
    lying = lying[:8] + struct.pack(">i", len(lying) - 12) + lying[12:]
    lying = lying[:12] + struct.pack(">I", zlib.crc32(lying[16:])) + lying[16:]
    with pytest.raises(InvalidRecordError, match="left over"):
        decode_message_set(lying)


def test_build_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="magic"):
        build_message_set(plain(1), magic=2)
    with pytest.raises(ValueError, match="ZSTD"):
        build_message_set(plain(1), magic=1, compression=Compression.ZSTD)


@FAST
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_message_set(data)
    with contextlib.suppress(ProtocolError):
        up_convert(data)


@pytest.mark.parametrize("compression", LEGACY_CODECS)
@pytest.mark.parametrize("magic", [0, 1])
def test_fuzz_mutations(magic: int, compression: Compression) -> None:
    rng = random.Random(magic * 10 + compression)
    data = build_message_set(plain(3), magic=magic, compression=compression)
    for _ in range(100):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        # Re-sealing the CRC sends the mutation past the checksum, into the parser.
        sealed = bytes(mutated[:12]) + struct.pack(">I", zlib.crc32(mutated[16:])) + mutated[16:]
        for candidate in (bytes(mutated), sealed):
            with contextlib.suppress(ProtocolError):
                decode_message_set(candidate)


# --- kafka-python cross-checks ----------------------------------------------------------------


def kafka_python_set(records: list[RecordTuple], magic: int, compression: Compression) -> bytes:
    builder = LegacyRecordBatchBuilder(magic, int(compression), 1 << 20)
    for i, (key, value, _, timestamp) in enumerate(records):
        builder.append(i, timestamp=timestamp, key=key, value=value)
    return bytes(builder.build())


@FAST
@given(records=RECORDS, magic=st.sampled_from([0, 1]), compression=st.sampled_from(LEGACY_CODECS))
def test_kafka_python_sets_decode_with_ours(
    records: list[RecordTuple], magic: int, compression: Compression
) -> None:
    data = kafka_python_set(records, magic, compression)
    want = [(i, t if magic else -1, k, v) for i, (k, v, _, t) in enumerate(records)]
    assert triples(decode_message_set(data)) == want


@FAST
@given(
    records=RECORDS,
    magic=st.sampled_from([0, 1]),
    compression=st.sampled_from(LEGACY_CODECS),
    base_offset=st.integers(0, 2**40),
)
def test_our_sets_decode_with_kafka_python(
    records: list[RecordTuple], magic: int, compression: Compression, base_offset: int
) -> None:
    data = build_message_set(records, magic=magic, compression=compression, base_offset=base_offset)
    batches = list(MemoryRecords(data))
    assert all(batch.validate_crc() for batch in batches)
    got = [(r.offset, r.timestamp, r.key, r.value) for batch in batches for r in batch]
    want = [(base_offset + i, t if magic else None, k, v) for i, (k, v, _, t) in enumerate(records)]
    assert got == want


# --- conversion -------------------------------------------------------------------------------


def test_up_convert() -> None:
    message_set = (
        build_message_set(plain(2), magic=0)
        + build_message_set(plain(3, 2000), magic=1, compression=Compression.SNAPPY)
        + build_message_set(plain(1, 3000), magic=1)
    )
    [batch] = up_convert(message_set)
    header = validate_batch(batch)
    assert header.compression == Compression.SNAPPY
    assert (header.base_offset, header.records_count, header.producer_id) == (0, 6, -1)
    _, records = decode_batch(batch)
    assert [r.offset for r in records] == list(range(6))
    assert [r.timestamp for r in records] == [-1, -1, 2000, 2001, 2002, 3000]
    assert [r.key for r in records] == [b"k0", b"k1", b"k0", b"k1", b"k2", b"k0"]
    [zstd] = up_convert(message_set, compression=Compression.ZSTD)
    assert decode_batch(zstd)[1] == records
    assert up_convert(b"") == []
    with pytest.raises(InvalidRecordError, match="timestamp"):
        up_convert(build_message_set([(b"k", b"v", (), -(2**63))], magic=1))
    assert decode_batch(up_convert(build_message_set(plain(2), magic=1))[0])[0].compression == 0


def v2_log() -> list[bytes]:
    headers = [("h", b"x")]
    return [
        build_batch([(b"a%d" % i, b"v" * 30, headers, 100 + i) for i in range(5)]),
        build_control_batch(
            ControlType.COMMIT, producer_id=1, producer_epoch=0, coordinator_epoch=0,
            timestamp_ms=0, base_offset=5,
        ),
        build_batch(
            [(b"b%d" % i, b"w" * 30, headers, 200 + i) for i in range(5)],
            base_offset=6,
            compression=Compression.GZIP,
        ),
    ]  # fmt: skip


@pytest.mark.parametrize("magic", [0, 1])
def test_down_convert(magic: int) -> None:
    log = b"".join(v2_log())
    data = down_convert(log + log[:40], magic)  # a partial trailing batch is ignored
    records = decode_message_set(data)
    assert [r.offset for r in records] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert [r.key for r in records][4:6] == [b"a4", b"b0"]
    assert all(r.headers == [] for r in records)
    expected_ts = [100, 101, 102, 103, 104, 200, 201, 202, 203, 204] if magic else [-1] * 10
    assert [r.timestamp for r in records] == expected_ts
    headers = [h for _, h in iter_message_headers(data)]
    assert {h.magic for h in headers} == {magic}
    assert [h.compression for h in headers] == [0] * 5 + [Compression.GZIP]
    theirs = [r.offset for batch in MemoryRecords(data) for r in batch]
    assert theirs == [r.offset for r in records]


def test_down_convert_drops_records_before_the_fetch_offset() -> None:
    log = b"".join(v2_log())
    assert [r.offset for r in decode_message_set(down_convert(log, 1, first_offset=3))] == [
        3, 4, 6, 7, 8, 9, 10,
    ]  # fmt: skip
    # A compressed batch goes whole: the consumer skips what it did not ask for.
    later = decode_message_set(down_convert(log, 1, first_offset=8))
    assert [r.offset for r in later] == [6, 7, 8, 9, 10]


def test_down_convert_log_append_time_and_zstd() -> None:
    batch = bytearray(build_batch(plain(2), base_offset=4, compression=Compression.LZ4))
    set_log_append_time(batch, 0, 5555)
    data = down_convert(batch, 1)
    assert read_message_header(data).timestamp_type == TimestampType.LOG_APPEND_TIME
    assert [(r.offset, r.timestamp) for r in decode_message_set(data)] == [(4, 5555), (5, 5555)]
    with pytest.raises(UnsupportedCompressionTypeError):
        down_convert(build_batch(plain(1), compression=Compression.ZSTD), 1)
    with pytest.raises(ValueError, match="magic"):
        down_convert(batch, 2)


def test_down_convert_offsets_wrapping_around_int64() -> None:
    batch = build_batch(plain(2), base_offset=2**63 - 1, compression=Compression.GZIP)
    with pytest.raises(InvalidRecordError, match="down-converted"):
        down_convert(batch, 1)


@FAST
@given(records=RECORDS, compression=st.sampled_from(LEGACY_CODECS), magic=st.sampled_from([0, 1]))
def test_down_then_up_keeps_keys_and_values(
    records: list[RecordTuple], compression: Compression, magic: int
) -> None:
    batch = build_batch(records, compression=compression)
    [back] = up_convert(down_convert(batch, magic))
    header, decoded = decode_batch(back)
    assert header.compression == compression
    assert [(r.key, r.value) for r in decoded] == [(k, v) for k, v, _, _ in records]
