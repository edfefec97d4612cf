"""Record batches v2: header access, validation, patches, round trips, kafka-python cross-checks."""

from __future__ import annotations

import contextlib
import random
import struct
import types
from collections.abc import Iterator
from typing import Any

import cramjam
import crc32c
import kafka.codec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from protocol.errors import ProtocolError
from protocol.records import (
    LOG_OVERHEAD,
    RECORD_BATCH_OVERHEAD,
    BatchHeader,
    Compression,
    ControlType,
    CorruptRecordError,
    InvalidRecordError,
    Record,
    RecordTuple,
    TimestampType,
    build_batch,
    build_control_batch,
    check_batch,
    decode_batch,
    iter_batch_headers,
    parse_control_record,
    read_batch_header,
    recompress_batch,
    set_base_offset,
    set_log_append_time,
    set_partition_leader_epoch,
    validate_batch,
)

FAST = settings(max_examples=30, deadline=None, database=None)
INT64 = st.integers(-(2**63), 2**63 - 1)
INT32 = st.integers(-(2**31), 2**31 - 1)
TIMESTAMPS = st.integers(0, 2**45)
BLOBS = st.none() | st.binary(max_size=40)
HEADERS = st.lists(st.tuples(st.text(max_size=8), BLOBS), max_size=3)
RECORDS = st.lists(st.tuples(BLOBS, BLOBS, HEADERS, TIMESTAMPS), min_size=1, max_size=8)


@pytest.fixture(scope="module", autouse=True)
def kafka_python_snappy() -> Iterator[None]:
    """kafka-python's snappy needs python-snappy: hand it cramjam's raw block codec."""
    shim = types.SimpleNamespace(
        compress=lambda data: bytes(cramjam.snappy.compress_raw(bytes(data))),
        decompress=lambda data: bytes(cramjam.snappy.decompress_raw(bytes(data))),
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kafka.codec, "snappy", shim)
        yield


def as_tuples(records: list[Record]) -> list[tuple[Any, ...]]:
    return [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in records]


def expected(records: list[RecordTuple], base_offset: int) -> list[tuple[Any, ...]]:
    return [(base_offset + i, ts, k, v, list(h)) for i, (k, v, h, ts) in enumerate(records)]


def raw_batch(body: bytes, count: int, attributes: int = 0, last_offset_delta: int = 0) -> bytes:
    """A batch around arbitrary record bytes, with a correct CRC."""
    out = bytearray(build_batch([]))
    out[RECORD_BATCH_OVERHEAD:] = body
    struct.pack_into(">i", out, 8, len(out) - LOG_OVERHEAD)
    struct.pack_into(">hi", out, 21, attributes, last_offset_delta)
    struct.pack_into(">i", out, 57, count)
    struct.pack_into(">I", out, 17, crc32c.crc32c(bytes(out[21:])))
    return bytes(out)


def sample(compression: Compression = Compression.NONE, **kwargs: Any) -> bytes:
    records: list[RecordTuple] = [
        (b"key-%d" % i, b"value " * 20, [("trace", b"%d" % i)], 1_700_000_000_000 + i)
        for i in range(5)
    ]
    return build_batch(records, compression=compression, **kwargs)


# --- header layout ----------------------------------------------------------------------------


def test_header_layout_and_properties() -> None:
    batch = build_batch(
        [(b"k", b"v", [], 1000), (None, b"w", [], 990)],
        base_offset=100,
        producer_id=42,
        producer_epoch=3,
        base_sequence=2**31 - 1,
        is_transactional=True,
        partition_leader_epoch=7,
    )
    header = read_batch_header(batch)
    assert header == BatchHeader(
        base_offset=100,
        batch_length=len(batch) - 12,
        partition_leader_epoch=7,
        magic=2,
        crc=crc32c.crc32c(batch[21:]),
        attributes=0x10,
        last_offset_delta=1,
        base_timestamp=1000,
        max_timestamp=1000,
        producer_id=42,
        producer_epoch=3,
        base_sequence=2**31 - 1,
        records_count=2,
    )
    assert header.size == len(batch)
    assert (header.last_offset, header.next_offset) == (101, 102)
    assert header.compression == Compression.NONE
    assert header.timestamp_type == TimestampType.CREATE_TIME
    assert header.is_transactional and not header.is_control and not header.has_delete_horizon
    assert header.delete_horizon_ms is None
    assert header.last_sequence == 0  # wraps past int32 max, as Kafka's incrementSequence
    assert RECORD_BATCH_OVERHEAD == 61 and LOG_OVERHEAD == 12


def test_read_batch_header_errors() -> None:
    batch = sample()
    with pytest.raises(CorruptRecordError):
        read_batch_header(batch[:60])
    with pytest.raises(CorruptRecordError):
        read_batch_header(batch, len(batch) - 10)
    legacy = bytearray(batch)
    legacy[16] = 1
    with pytest.raises(CorruptRecordError, match="magic"):
        read_batch_header(legacy)


def test_iter_batch_headers() -> None:
    batches = [sample(base_offset=0), sample(Compression.GZIP, base_offset=5), sample()]
    buf = b"".join(batches)
    positions = [0, len(batches[0]), len(batches[0]) + len(batches[1])]
    found = list(iter_batch_headers(buf))
    assert [pos for pos, _ in found] == positions
    assert [h.base_offset for _, h in found] == [0, 5, 0]
    # A partial trailing batch is dropped silently, whatever its size.
    for cut in range(1, len(batches[2])):
        assert [p for p, _ in iter_batch_headers(buf[:-cut])] == positions[:2]
    assert [p for p, _ in iter_batch_headers(buf, positions[1], positions[2])] == [positions[1]]
    assert list(iter_batch_headers(memoryview(buf), len(buf))) == []


def test_iter_batch_headers_rejects_garbage() -> None:
    bad_length = bytearray(sample())
    struct.pack_into(">i", bad_length, 8, 48)
    with pytest.raises(CorruptRecordError):
        list(iter_batch_headers(bad_length))
    bad_magic = bytearray(sample())
    bad_magic[16] = 0
    with pytest.raises(CorruptRecordError):
        list(iter_batch_headers(bad_magic))


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", list(Compression))
def test_validate_accepts_what_we_build(compression: Compression) -> None:
    header = validate_batch(sample(compression), from_client=True)
    assert header.compression == compression
    assert validate_batch(b"junk" + sample(compression), 4).records_count == 5


@FAST
@given(data=st.data(), compression=st.sampled_from(list(Compression)))
def test_any_flipped_byte_after_the_crc_fails(
    data: st.DataObject, compression: Compression
) -> None:
    batch = bytearray(sample(compression))
    pos = data.draw(st.integers(17, len(batch) - 1))
    batch[pos] ^= data.draw(st.integers(1, 255))
    with pytest.raises(CorruptRecordError):
        validate_batch(batch)


def test_fields_outside_the_crc_may_change() -> None:
    batch = bytearray(sample(Compression.LZ4))
    set_base_offset(batch, 0, 123456789)
    set_partition_leader_epoch(batch, 0, 17)
    header = validate_batch(batch)
    assert (header.base_offset, header.partition_leader_epoch) == (123456789, 17)
    assert [r.offset for r in decode_batch(batch)[1]] == list(range(123456789, 123456794))


def test_truncated_batches_are_corrupt() -> None:
    batch = sample(Compression.ZSTD)
    for cut in range(len(batch)):
        for check in (validate_batch, check_batch, decode_batch):
            with pytest.raises(CorruptRecordError):
                check(batch[:cut])


def test_offset_delta_must_match_count() -> None:
    batch = raw_batch(sample()[61:], count=5, last_offset_delta=7)
    with pytest.raises(InvalidRecordError, match="offset range"):
        validate_batch(batch)
    # A compacted batch keeps its original delta with fewer records: framing is fine.
    assert check_batch(batch).records_count == 5
    compressed = raw_batch(sample(Compression.GZIP)[61:], 5, attributes=1, last_offset_delta=3)
    with pytest.raises(InvalidRecordError):
        validate_batch(compressed)


def test_count_rules() -> None:
    with pytest.raises(InvalidRecordError, match="negative"):
        validate_batch(raw_batch(b"", count=-1))
    with pytest.raises(InvalidRecordError, match="cannot fit"):
        validate_batch(raw_batch(b"\x00" * 20, count=3, last_offset_delta=2))
    empty = build_batch([], last_offset_delta=4)
    assert validate_batch(empty).records_count == 0
    with pytest.raises(InvalidRecordError):
        validate_batch(empty, from_client=True)


def test_client_rules() -> None:
    marker = build_control_batch(
        ControlType.ABORT, producer_id=1, producer_epoch=0, coordinator_epoch=0, timestamp_ms=0
    )
    validate_batch(marker)
    with pytest.raises(InvalidRecordError, match="control"):
        validate_batch(marker, from_client=True)
    no_sequence = build_batch([(b"k", b"v", [], 0)], producer_id=5, producer_epoch=0)
    validate_batch(no_sequence)
    with pytest.raises(InvalidRecordError, match="sequence"):
        validate_batch(no_sequence, from_client=True)


@pytest.mark.parametrize("codec", [5, 6, 7])
def test_undefined_codec_ids(codec: int) -> None:
    batch = raw_batch(b"", 0, attributes=codec)
    with pytest.raises(CorruptRecordError, match="codec"):
        validate_batch(batch)
    with pytest.raises(CorruptRecordError):
        read_batch_header(batch).compression  # noqa: B018


# --- LogAppendTime ----------------------------------------------------------------------------


@pytest.mark.parametrize("compression", list(Compression))
def test_log_append_time_patch(compression: Compression) -> None:
    batch = bytearray(b"prefix" + sample(compression, producer_id=9, base_sequence=0))
    set_log_append_time(batch, 6, 1_800_000_000_000)
    header = validate_batch(batch, 6)
    assert header.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert header.max_timestamp == 1_800_000_000_000
    assert header.compression == compression and header.producer_id == 9
    assert {r.timestamp for r in decode_batch(batch, 6)[1]} == {1_800_000_000_000}
    theirs = DefaultRecordBatch(bytes(batch[6:]))
    assert theirs.validate_crc()
    assert theirs.timestamp_type == 1
    assert {r.timestamp for r in theirs} == {1_800_000_000_000}


# --- round trips ------------------------------------------------------------------------------


@FAST
@given(
    records=RECORDS,
    compression=st.sampled_from(list(Compression)),
    base_offset=st.integers(0, 2**62),
    producer=st.tuples(INT64, st.integers(-(2**15), 2**15 - 1), INT32),
    flags=st.tuples(st.booleans(), st.sampled_from(list(TimestampType))),
    epoch=INT32,
)
def test_build_decode_round_trip(
    records: list[RecordTuple],
    compression: Compression,
    base_offset: int,
    producer: tuple[int, int, int],
    flags: tuple[bool, TimestampType],
    epoch: int,
) -> None:
    transactional, timestamp_type = flags
    batch = build_batch(
        records,
        base_offset=base_offset,
        compression=compression,
        producer_id=producer[0],
        producer_epoch=producer[1],
        base_sequence=producer[2],
        is_transactional=transactional,
        timestamp_type=timestamp_type,
        partition_leader_epoch=epoch,
    )
    header, decoded = decode_batch(batch)
    assert header == validate_batch(batch)
    assert header.compression == compression
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == producer
    assert header.is_transactional == transactional
    assert header.timestamp_type == timestamp_type
    assert header.partition_leader_epoch == epoch
    assert header.max_timestamp == max(r[3] for r in records)
    want = expected(records, base_offset)
    if timestamp_type == TimestampType.LOG_APPEND_TIME:
        want = [(o, header.max_timestamp, k, v, h) for o, _, k, v, h in want]
    assert as_tuples(decoded) == want


def test_record_objects_keep_offsets_and_surrogates() -> None:
    records = [
        Record(10, 5, b"a", None, [("\udcff\udcfe", b"binary key")]),
        Record(13, 2**40, None, b"", []),
    ]
    batch = build_batch(records, base_offset=10, last_offset_delta=6, max_timestamp=2**41)
    header, decoded = decode_batch(batch)
    assert decoded == records
    assert (header.last_offset_delta, header.records_count, header.max_timestamp) == (6, 2, 2**41)
    assert b"\xff\xfe" in batch  # the header key went out as the original bytes


def test_delete_horizon() -> None:
    batch = build_batch([(b"k", None, [], 500)], delete_horizon_ms=1000)
    header, records = decode_batch(batch)
    assert header.has_delete_horizon and header.delete_horizon_ms == 1000
    assert records[0].timestamp == 500


def test_empty_batch_is_uncompressed() -> None:
    header, records = decode_batch(build_batch([], compression=Compression.ZSTD, max_timestamp=9))
    assert records == [] and header.compression == Compression.NONE
    assert (header.base_timestamp, header.max_timestamp, header.records_count) == (-1, 9, 0)


def test_build_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="increase"):
        build_batch([Record(5, 0, None, None), Record(5, 0, None, None)], base_offset=5)
    with pytest.raises(ValueError, match="increase"):
        build_batch([Record(4, 0, None, None)], base_offset=5)
    with pytest.raises(ValueError, match="last_offset_delta"):
        build_batch([(None, None, [], 0)] * 3, last_offset_delta=1)
    with pytest.raises(ValueError, match="varint"):
        build_batch([Record(2**31, 0, None, None)])


# --- control batches --------------------------------------------------------------------------


@pytest.mark.parametrize("control", list(ControlType))
def test_control_batch(control: ControlType) -> None:
    batch = build_control_batch(
        control,
        producer_id=77,
        producer_epoch=4,
        coordinator_epoch=12,
        timestamp_ms=1234,
        base_offset=50,
        partition_leader_epoch=3,
    )
    header, records = decode_batch(batch)
    assert header.is_control and header.is_transactional
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (77, 4, -1)
    assert (header.base_offset, header.partition_leader_epoch, header.records_count) == (50, 3, 1)
    assert records[0].key == struct.pack(">hh", 0, control)
    assert records[0].value == struct.pack(">hi", 0, 12)
    assert parse_control_record(records[0]) == (control, 12)
    theirs = list(DefaultRecordBatch(batch))
    assert theirs[0].type == control and theirs[0].version == 0


def test_parse_control_record_errors() -> None:
    good_value = struct.pack(">hi", 0, 1)
    for key, value in [
        (None, good_value),
        (b"\x00\x00\x00", good_value),
        (struct.pack(">hh", -1, 0), good_value),
        (struct.pack(">hh", 0, 2), good_value),  # LeaderChange is a control record, not a marker
        (struct.pack(">hh", 0, 1), b"\x00\x00\x00"),
        (struct.pack(">hh", 0, 1), struct.pack(">hi", -1, 1)),
    ]:
        with pytest.raises(InvalidRecordError):
            parse_control_record(Record(0, 0, key, value))
    newer = Record(0, 0, struct.pack(">hhx", 1, 0), struct.pack(">hiq", 3, 9, 0))
    assert parse_control_record(newer) == (ControlType.ABORT, 9)


# --- recompression ----------------------------------------------------------------------------


@pytest.mark.parametrize("source", list(Compression))
@pytest.mark.parametrize("target", list(Compression))
def test_recompress(source: Compression, target: Compression) -> None:
    original = bytearray(sample(source, base_offset=7, producer_id=3, base_sequence=10))
    set_log_append_time(original, 0, 99)
    before, records = decode_batch(original)
    out = recompress_batch(b"xy" + original, 2, target)
    after = validate_batch(out)
    assert decode_batch(out)[1] == records
    assert after.compression == target
    assert after._replace(attributes=0, batch_length=0, crc=0) == before._replace(
        attributes=0, batch_length=0, crc=0
    )
    assert after.attributes & ~7 == before.attributes & ~7


# --- malformed records inside a batch with a valid CRC ----------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"\x10\x00\x00\x00\x01\x01\x00\x00\x00",  # declares 8 bytes, fields use 6
        b"\x0a\x00\x00\x00\x01\x01",  # ends before its header count
        b"\x20\x00" + b"\xff" * 10 + b"\x01\x00\x01\x01\x00",  # 11-byte varlong
        b"\x16\x00\x00\xff\xff\xff\xff\xff\x01\x01\x01\x00",  # 6-byte varint
        b"\x08\x00\x00\x00\x40",  # key of 32 bytes overruns the record
        b"\x0c\x00\x00\x00\x01\x01\x01",  # header count -1
        b"\x10\x00\x00\x00\x01\x01\x02\x01\x01",  # null header key
        b"\x01",  # record length -1
    ],
)
def test_malformed_records_are_invalid(body: bytes) -> None:
    # Padding keeps the count plausible, so the record parser itself must notice.
    with pytest.raises(InvalidRecordError):
        decode_batch(raw_batch(body + bytes(8), count=1))


def test_leftover_bytes_after_last_record() -> None:
    body = sample()[61:]
    with pytest.raises(InvalidRecordError, match="left over"):
        decode_batch(raw_batch(body + b"\x00", count=5, last_offset_delta=4))
    with pytest.raises(InvalidRecordError):
        decode_batch(raw_batch(body, count=6, last_offset_delta=5))


def test_varint_upper_bits_dropped_like_java() -> None:
    # A 5-byte varint whose last byte carries more than 4 bits: Java keeps the low 32 bits.
    record = b"\x00\x00" + b"\x82\x80\x80\x80\x70" + b"\x01\x01\x00"
    batch = raw_batch(bytes([len(record) * 2]) + record, count=1)
    assert decode_batch(batch)[1][0].offset == 1


def test_offsets_and_timestamps_wrap_like_java_longs() -> None:
    batch = bytearray(build_batch([(None, None, [], 2**63 - 1)] * 2, base_offset=2**63 - 1))
    assert [(r.offset, r.timestamp) for r in decode_batch(batch)[1]] == [
        (2**63 - 1, 2**63 - 1),
        (-(2**63), 2**63 - 1),
    ]


# --- fuzzing ----------------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data: bytes) -> None:
    for call in (read_batch_header, check_batch, validate_batch, decode_batch):
        with contextlib.suppress(ProtocolError):
            call(data)
    with contextlib.suppress(ProtocolError):
        list(iter_batch_headers(data))


@FAST
@given(body=st.binary(max_size=120), count=st.integers(-2, 12), codec=st.integers(0, 7))
def test_fuzz_record_bytes_with_valid_crc(body: bytes, count: int, codec: int) -> None:
    batch = raw_batch(body, count, attributes=codec, last_offset_delta=max(count - 1, 0))
    for call in (validate_batch, decode_batch):
        with contextlib.suppress(ProtocolError):
            call(batch)


@pytest.mark.parametrize("compression", list(Compression))
def test_fuzz_mutations_of_valid_batches(compression: Compression) -> None:
    rng = random.Random(int(compression))
    batch = sample(compression)
    for _ in range(200):
        mutated = bytearray(batch)
        for _ in range(rng.randint(1, 3)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        candidate = raw_batch(
            bytes(mutated[61:]), 5, attributes=int(compression), last_offset_delta=4
        )
        for data in (bytes(mutated), candidate):
            with contextlib.suppress(ProtocolError):
                decode_batch(data)


# --- kafka-python cross-checks ----------------------------------------------------------------


def kafka_python_batch(records: list[RecordTuple], compression: Compression) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=int(compression),
        is_transactional=False,
        producer_id=11,
        producer_epoch=2,
        base_sequence=40,
        batch_size=1 << 20,
    )
    for i, (key, value, headers, timestamp) in enumerate(records):
        builder.append(i, timestamp=timestamp, key=key, value=value, headers=list(headers))
    return bytes(builder.build())


COMPRESSIBLE = st.lists(
    st.tuples(
        st.none() | st.just(b"key" * 10),
        st.none() | st.binary(max_size=8).map(lambda b: b * 20),
        HEADERS,
        TIMESTAMPS,
    ),
    min_size=1,
    max_size=8,
)


@FAST
@given(records=COMPRESSIBLE, compression=st.sampled_from(list(Compression)))
def test_kafka_python_batches_decode_with_ours(
    records: list[RecordTuple], compression: Compression
) -> None:
    batch = kafka_python_batch(records, compression)
    header, decoded = decode_batch(batch)
    validate_batch(batch, from_client=True)
    assert as_tuples(decoded) == expected(records, 0)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (11, 2, 40)


@pytest.mark.parametrize("compression", list(Compression))
def test_kafka_python_compresses_with_every_codec(compression: Compression) -> None:
    # kafka-python falls back to no compression when it does not help; make sure it helps.
    records: list[RecordTuple] = [(b"k", b"payload " * 50, [], 1000 + i) for i in range(20)]
    header, decoded = decode_batch(kafka_python_batch(records, compression))
    assert header.compression == compression
    assert as_tuples(decoded) == expected(records, 0)


@FAST
@given(
    records=RECORDS,
    compression=st.sampled_from(list(Compression)),
    base_offset=st.integers(0, 2**40),
)
def test_our_batches_decode_with_kafka_python(
    records: list[RecordTuple], compression: Compression, base_offset: int
) -> None:
    batch = build_batch(
        records, base_offset=base_offset, compression=compression, producer_id=5, base_sequence=1
    )
    theirs = DefaultRecordBatch(batch)
    assert theirs.validate_crc()
    assert theirs.compression_type == compression
    assert (theirs.base_offset, theirs.producer_id, theirs.base_sequence) == (base_offset, 5, 1)
    got = [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in theirs]
    assert got == expected(records, base_offset)
