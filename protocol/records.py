"""Record batches, magic 2 (KIP-98): header access, validation, patching, decode and build.

Theory of operation. A batch is a fixed 61-byte header followed by `records_count` records
(or, when attribute bits 0-2 name a codec, one compressed blob holding them). All integers
are big-endian:

    offset  size  field
         0     8  base_offset            assigned by the broker; not covered by the CRC
         8     4  batch_length           bytes after this field (batch size = length + 12)
        12     4  partition_leader_epoch stamped by the broker; not covered by the CRC
        16     1  magic                  2
        17     4  crc                    CRC-32C (Castagnoli) of bytes [21, end of batch)
        21     2  attributes             0-2 codec, 3 LogAppendTime, 4 transactional,
                                         5 control, 6 base_timestamp is a delete horizon
        23     4  last_offset_delta      also the last sequence delta
        27     8  base_timestamp
        35     8  max_timestamp          the broker's time for LogAppendTime batches
        43     8  producer_id            -1 when not idempotent
        51     2  producer_epoch
        53     4  base_sequence
        57     4  records_count
        61        records

Each record is: length varint, attributes int8 (unused), timestamp_delta varlong,
offset_delta varint, key (varint length, -1 = null), value (same), header count varint and
per header a key (varint length + UTF-8) and a value (varint length, -1 = null). Varints are
zig-zag encoded base-128 (protobuf sint32/sint64): at most 5 bytes for a varint and 10 for a
varlong; like Kafka's reader, bits beyond 32/64 are dropped.

The produce and fetch paths touch only headers: `read_batch_header`, `iter_batch_headers`,
`validate_batch` (CRC and counts, no decompression) and the in-place `set_*` patches. The
record-level functions (`decode_batch`, `build_batch`, control records, `recompress_batch`)
serve tests, transaction markers, internal topics and compaction.

Errors follow Kafka: a batch whose framing or CRC is wrong raises CorruptRecordError
(CORRUPT_MESSAGE); a batch whose bytes are intact but break a rule, including a malformed
record inside a batch with a good CRC, raises InvalidRecordError (INVALID_RECORD).
"""

from __future__ import annotations

import enum
import itertools
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeAlias

import crc32c

from protocol import compression as codecs
from protocol.errors import ProtocolError

__all__ = [
    "LOG_OVERHEAD",
    "MAGIC",
    "MIN_BATCH_LENGTH",
    "RECORD_BATCH_OVERHEAD",
    "BatchHeader",
    "Compression",
    "ControlType",
    "CorruptRecordError",
    "InvalidRecordError",
    "Record",
    "RecordTuple",
    "TimestampType",
    "build_batch",
    "build_control_batch",
    "check_batch",
    "decode_batch",
    "iter_batch_headers",
    "parse_control_record",
    "read_batch_header",
    "recompress_batch",
    "repair_max_timestamp",
    "set_base_offset",
    "set_log_append_time",
    "set_partition_leader_epoch",
    "validate_batch",
]

Buffer: TypeAlias = bytes | bytearray | memoryview

RECORD_BATCH_OVERHEAD = 61
LOG_OVERHEAD = 12
MAGIC = 2
MIN_BATCH_LENGTH = RECORD_BATCH_OVERHEAD - LOG_OVERHEAD  # 49

_LENGTH_OFFSET = 8
_EPOCH_OFFSET = 12
_MAGIC_OFFSET = 16
_CRC_OFFSET = 17
_ATTRIBUTES_OFFSET = 21
_MAX_TIMESTAMP_OFFSET = 35

_CODEC_MASK = 0x07
_TIMESTAMP_TYPE_MASK = 0x08
_TRANSACTIONAL_MASK = 0x10
_CONTROL_MASK = 0x20
_DELETE_HORIZON_MASK = 0x40

# The smallest record: length, attributes, timestamp delta, offset delta, key length,
# value length and header count, one byte each.
_MIN_RECORD_SIZE = 7
_INT32_MAX = 2**31 - 1

_HEADER = struct.Struct(">qiibIhiqqqhii")
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT16 = struct.Struct(">h")
_CONTROL_KEY = struct.Struct(">hh")
_CONTROL_VALUE = struct.Struct(">hi")
assert _HEADER.size == RECORD_BATCH_OVERHEAD


class CorruptRecordError(ProtocolError):
    """Batch framing is broken: CRC mismatch, bad length or magic, truncation (CORRUPT_MESSAGE)."""


class InvalidRecordError(ProtocolError):
    """Batch is intact but breaks a rule: offset deltas, counts, record layout (INVALID_RECORD)."""


class Compression(enum.IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


class TimestampType(enum.IntEnum):
    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


class ControlType(enum.IntEnum):
    """Control record types that end a transaction (2-6 are KRaft-internal)."""

    ABORT = 0
    COMMIT = 1


class BatchHeader(NamedTuple):
    """The 61-byte header of a magic-2 batch, fields in wire order."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Bytes the whole batch occupies, header included."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> Compression:
        """The codec; raises CorruptRecordError for the undefined ids 5-7."""
        return _codec(self.attributes)

    @property
    def timestamp_type(self) -> TimestampType:
        if self.attributes & _TIMESTAMP_TYPE_MASK:
            return TimestampType.LOG_APPEND_TIME
        return TimestampType.CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & _TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & _CONTROL_MASK)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & _DELETE_HORIZON_MASK)

    @property
    def delete_horizon_ms(self) -> int | None:
        """The compaction delete horizon, stored in base_timestamp when bit 6 is set."""
        return self.base_timestamp if self.attributes & _DELETE_HORIZON_MASK else None

    @property
    def last_sequence(self) -> int:
        """base_sequence + last_offset_delta, wrapping past int32 max to 0 as Kafka does."""
        if self.base_sequence < 0:
            return -1
        return (self.base_sequence + self.last_offset_delta) % (_INT32_MAX + 1)


_make_header = BatchHeader._make


def _codec(attributes: int) -> Compression:
    codec = attributes & _CODEC_MASK
    if codec > Compression.ZSTD:
        raise CorruptRecordError(f"unknown compression codec id {codec} in batch attributes")
    return Compression(codec)


# --- headers ----------------------------------------------------------------------------------


def read_batch_header(buf: Buffer, pos: int = 0) -> BatchHeader:
    """Unpack the header of the batch at `pos`; checks only that it is there and is magic 2."""
    if pos < 0 or len(buf) - pos < RECORD_BATCH_OVERHEAD:
        raise CorruptRecordError(
            f"record batch header truncated: {max(len(buf) - pos, 0)} of "
            f"{RECORD_BATCH_OVERHEAD} bytes at position {pos}"
        )
    header = _make_header(_HEADER.unpack_from(buf, pos))
    if header.magic != MAGIC:
        raise CorruptRecordError(f"record batch magic {header.magic} at position {pos}, not 2")
    if header.batch_length < MIN_BATCH_LENGTH:
        raise CorruptRecordError(f"record batch length {header.batch_length} is below 49")
    return header


def iter_batch_headers(
    buf: Buffer, pos: int = 0, end: int | None = None
) -> Iterator[tuple[int, BatchHeader]]:
    """Yield `(position, header)` for each complete batch in `buf[pos:end]`.

    A partial batch at the end is not an error (fetch responses cut batches at the byte
    limit): iteration just stops. A batch length below 49 or a magic other than 2 raises
    CorruptRecordError.
    """
    limit = len(buf) if end is None else min(end, len(buf))
    while limit - pos >= LOG_OVERHEAD:
        (length,) = _INT32.unpack_from(buf, pos + _LENGTH_OFFSET)
        if length < MIN_BATCH_LENGTH:
            raise CorruptRecordError(f"record batch length {length} at position {pos} is below 49")
        size = length + LOG_OVERHEAD
        if pos + size > limit:
            return
        yield pos, read_batch_header(buf, pos)
        pos += size


def check_batch(buf: Buffer, pos: int = 0) -> BatchHeader:
    """Check the framing of the batch at `pos`: length within `buf`, magic, codec id, CRC.

    This is what a batch read back from a log (recovery) or replicated from a leader must
    pass. Compacted batches keep their original last_offset_delta with fewer records, so
    the client-side offset rule is left to `validate_batch`.
    """
    header = read_batch_header(buf, pos)
    end = pos + header.batch_length + LOG_OVERHEAD
    if end > len(buf):
        raise CorruptRecordError(
            f"record batch truncated: size {header.size}, {len(buf) - pos} bytes available"
        )
    _codec(header.attributes)
    actual = int(crc32c.crc32c(memoryview(buf)[pos + _ATTRIBUTES_OFFSET : end]))
    if actual != header.crc:
        raise CorruptRecordError(
            f"record batch crc mismatch: stored {header.crc:#010x}, computed {actual:#010x}"
        )
    if header.records_count < 0:
        raise InvalidRecordError(f"record batch has a negative count {header.records_count}")
    return header


def validate_batch(buf: Buffer, pos: int = 0, *, from_client: bool = False) -> BatchHeader:
    """Validate one incoming batch as the broker does on produce, without decompressing.

    On top of `check_batch`: a non-empty batch must have last_offset_delta equal to
    records_count - 1 (Kafka checks this for compressed batches too), and an uncompressed
    batch must be large enough for its count. With `from_client`, also Kafka's rules for
    producer-originated batches: at least one record, no control batch, and a producer id
    requires a base sequence.
    """
    header = check_batch(buf, pos)
    count = header.records_count
    if count > 0 and header.last_offset_delta != count - 1:
        raise InvalidRecordError(
            f"record batch offset range [{header.base_offset}, {header.last_offset}] "
            f"does not match its count of {count} records"
        )
    body = header.batch_length + LOG_OVERHEAD - RECORD_BATCH_OVERHEAD
    if header.attributes & _CODEC_MASK == 0 and count * _MIN_RECORD_SIZE > body:
        raise InvalidRecordError(f"{count} records cannot fit in {body} bytes")
    if from_client:
        _check_client_rules(header)
    return header


def _check_client_rules(header: BatchHeader) -> None:
    if header.records_count == 0:
        raise InvalidRecordError("a produced record batch must hold at least one record")
    if header.is_control:
        raise InvalidRecordError("clients may not write control batches")
    if header.producer_id >= 0 and header.base_sequence < 0:
        raise InvalidRecordError(
            f"invalid sequence {header.base_sequence} with producer id {header.producer_id}"
        )


# --- in-place patches -------------------------------------------------------------------------


def set_base_offset(buf: bytearray | memoryview, pos: int, base_offset: int) -> None:
    """Stamp the base offset (outside the CRC: no recomputation)."""
    _INT64.pack_into(buf, pos, base_offset)


def set_partition_leader_epoch(buf: bytearray | memoryview, pos: int, epoch: int) -> None:
    """Stamp the partition leader epoch (outside the CRC: no recomputation)."""
    _INT32.pack_into(buf, pos + _EPOCH_OFFSET, epoch)


def set_log_append_time(buf: bytearray | memoryview, pos: int, timestamp_ms: int) -> None:
    """Mark the batch LogAppendTime with `timestamp_ms` as max_timestamp; rewrites the CRC.

    Every record of the batch then reads as `timestamp_ms` (the deltas are left alone).
    """
    header = read_batch_header(buf, pos)
    end = pos + header.size
    if end > len(buf):
        raise CorruptRecordError("record batch truncated: cannot patch its timestamp")
    _INT16.pack_into(buf, pos + _ATTRIBUTES_OFFSET, header.attributes | _TIMESTAMP_TYPE_MASK)
    _INT64.pack_into(buf, pos + _MAX_TIMESTAMP_OFFSET, timestamp_ms)
    _write_crc(buf, pos, end)


def repair_max_timestamp(
    buf: bytearray | memoryview,
    pos: int,
    header: BatchHeader,
    *,
    max_size: int = codecs.DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> BatchHeader:
    """Recompute a CreateTime batch's max_timestamp from its records when the header is wrong.

    Kafka's broker never trusts the header: its LogValidator walks every record of every
    produced batch and writes the largest record timestamp (-1 if none is larger) into
    max_timestamp, fixing the CRC. Old producers depend on it: sarama before 1.24 leaves
    max_timestamp at -1, so without the rewrite the time index, ListOffsets by timestamp and
    time-based retention never see their records. We keep produce header-only and decode only
    a batch whose header contradicts itself: max_timestamp below base_timestamp (the first
    record's timestamp). A wrong maximum at or above base_timestamp is not detected.

    Returns `header` untouched (nothing decoded) or the patched header. LogAppendTime,
    control and delete-horizon batches are left alone. A malformed record raises
    InvalidRecordError, an undecompressable payload CorruptRecordError.
    """
    skip = _TIMESTAMP_TYPE_MASK | _CONTROL_MASK | _DELETE_HORIZON_MASK
    if (
        header.max_timestamp >= header.base_timestamp
        or header.records_count <= 0
        or header.attributes & skip
    ):
        return header
    decoded = _decode_records(_records_body(buf, pos, header, max_size), header)
    max_timestamp = max(-1, *(r.timestamp for r in decoded))
    _INT64.pack_into(buf, pos + _MAX_TIMESTAMP_OFFSET, max_timestamp)
    _write_crc(buf, pos, pos + header.size)
    (crc,) = _UINT32.unpack_from(buf, pos + _CRC_OFFSET)
    return header._replace(max_timestamp=max_timestamp, crc=crc)


def _write_crc(buf: bytearray | memoryview, pos: int, end: int) -> None:
    crc = crc32c.crc32c(memoryview(buf)[pos + _ATTRIBUTES_OFFSET : end])
    _UINT32.pack_into(buf, pos + _CRC_OFFSET, crc)


# --- varints ----------------------------------------------------------------------------------

_MASK32 = (1 << 32) - 1
_MASK64 = (1 << 64) - 1
_MIN64, _MAX64 = -(1 << 63), (1 << 63) - 1


def _wrap64(n: int) -> int:
    """`n` as Java's long arithmetic leaves it (two's complement wrap-around)."""
    return ((n - _MIN64) & _MASK64) + _MIN64


def _read_zigzag(buf: bytes, pos: int, end: int, last_shift: int, mask: int) -> tuple[int, int]:
    """Decode one zig-zag varint (last_shift 28) or varlong (63) at `pos`; bound by `end`."""
    if pos >= end:
        raise InvalidRecordError("record truncated inside a varint")
    b = buf[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    value, shift = b & 0x7F, 0
    while True:
        pos += 1
        shift += 7
        if pos >= end:
            raise InvalidRecordError("record truncated inside a varint")
        b = buf[pos]
        value |= (b & 0x7F) << shift
        if b < 0x80:
            break
        if shift >= last_shift:
            raise InvalidRecordError("varint longer than its type allows")
    value &= mask
    return (value >> 1) ^ -(value & 1), pos + 1


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    return _read_zigzag(buf, pos, end, 28, _MASK32)


def _read_varlong(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    return _read_zigzag(buf, pos, end, 63, _MASK64)


_ONE_BYTE = [bytes((i,)) for i in range(128)]


def _varint(n: int, bits: int = 32) -> bytes:
    """Zig-zag varint (bits 32) or varlong (bits 64) encoding of `n`."""
    if not -(1 << (bits - 1)) <= n < 1 << (bits - 1):
        raise ValueError(f"{n} does not fit a {bits}-bit varint")
    u = (n << 1) ^ (n >> (bits - 1))
    if u < 0x80:
        return _ONE_BYTE[u]
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


# --- records ----------------------------------------------------------------------------------

Header: TypeAlias = tuple[str, bytes | None]


@dataclass(slots=True)
class Record:
    """One record with its absolute offset and timestamp.

    Header keys are decoded from UTF-8 with `surrogateescape`, so a key that is not valid
    UTF-8 still encodes back to the same bytes.
    """

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[Header] = field(default_factory=list)


# (key, value, headers, timestamp): offsets come from the position in the sequence.
RecordTuple: TypeAlias = tuple[bytes | None, bytes | None, Sequence[Header], int]


def _read_bytes(buf: bytes, pos: int, end: int) -> tuple[bytes | None, int]:
    length, pos = _read_varint(buf, pos, end)
    if length < 0:
        return None, pos
    if pos + length > end:
        raise InvalidRecordError(f"record field of {length} bytes overruns the record")
    return buf[pos : pos + length], pos + length


def _read_headers(buf: bytes, pos: int, end: int) -> tuple[list[Header], int]:
    count, pos = _read_varint(buf, pos, end)
    if count < 0 or count > end - pos:
        raise InvalidRecordError(f"invalid record header count {count}")
    headers: list[Header] = []
    for _ in range(count):
        key, pos = _read_bytes(buf, pos, end)
        if key is None:
            raise InvalidRecordError("record header key is null")
        value, pos = _read_bytes(buf, pos, end)
        headers.append((key.decode("utf-8", "surrogateescape"), value))
    return headers, pos


def _decode_records(body: bytes, header: BatchHeader) -> list[Record]:
    """Decode `header.records_count` records from the uncompressed record array `body`."""
    count, end = header.records_count, len(body)
    if count * _MIN_RECORD_SIZE > end:
        raise InvalidRecordError(f"{count} records cannot fit in {end} bytes")
    log_append = header.timestamp_type == TimestampType.LOG_APPEND_TIME
    records: list[Record] = []
    pos = 0
    for _ in range(count):
        length, pos = _read_varint(body, pos, end)
        stop = pos + length
        if length < 0 or stop > end:
            raise InvalidRecordError(f"record length {length} overruns the batch")
        ts_delta, p = _read_varlong(body, pos + 1, stop)  # +1: the unused attributes byte
        offset_delta, p = _read_varint(body, p, stop)
        key, p = _read_bytes(body, p, stop)
        value, p = _read_bytes(body, p, stop)
        headers, p = _read_headers(body, p, stop)
        if p != stop:
            raise InvalidRecordError(f"record declares {length} bytes but holds {p - pos}")
        timestamp = header.max_timestamp if log_append else header.base_timestamp + ts_delta
        offset = header.base_offset + offset_delta
        if not (_MIN64 <= timestamp <= _MAX64 and _MIN64 <= offset <= _MAX64):
            timestamp, offset = _wrap64(timestamp), _wrap64(offset)
        records.append(Record(offset, timestamp, key, value, headers))
        pos = stop
    if pos != end:
        raise InvalidRecordError(f"{end - pos} bytes left over after the last record")
    return records


def _records_body(buf: Buffer, pos: int, header: BatchHeader, max_size: int) -> bytes:
    """The uncompressed record array of a checked batch."""
    blob = memoryview(buf)[pos + RECORD_BATCH_OVERHEAD : pos + header.size]
    codec = header.compression
    if codec == Compression.NONE:
        return bytes(blob)
    try:
        return codecs.decompress(codec, blob, max_size)
    except codecs.CompressionError as exc:
        raise CorruptRecordError(f"cannot decompress {codec.name} record batch: {exc}") from None


def decode_batch(
    buf: Buffer, pos: int = 0, *, max_size: int = codecs.DEFAULT_MAX_DECOMPRESSED_SIZE
) -> tuple[BatchHeader, list[Record]]:
    """Check and decode the batch at `pos` into its header and records.

    Offsets and timestamps are absolute; in a LogAppendTime batch every record carries
    max_timestamp. At most `max_size` bytes are decompressed.
    """
    header = check_batch(buf, pos)
    if header.records_count == 0:
        return header, []
    return header, _decode_records(_records_body(buf, pos, header, max_size), header)


def _encode_record(offset_delta: int, ts_delta: int, rec: Record | RecordTuple) -> bytes:
    headers: Sequence[Header]
    if isinstance(rec, Record):
        key, value, headers = rec.key, rec.value, rec.headers
    else:
        key, value, headers = rec[0], rec[1], rec[2]
    parts = [b"\x00", _varint(ts_delta, 64), _varint(offset_delta)]
    for blob in (key, value):
        parts.append(_varint(-1) if blob is None else _varint(len(blob)) + blob)
    parts.append(_varint(len(headers)))
    for hkey, hvalue in headers:
        encoded = hkey.encode("utf-8", "surrogateescape")
        parts.append(_varint(len(encoded)) + encoded)
        parts.append(_varint(-1) if hvalue is None else _varint(len(hvalue)) + hvalue)
    body = b"".join(parts)
    return _varint(len(body)) + body


def _offset_deltas(records: Sequence[Record | RecordTuple], base_offset: int) -> list[int]:
    """Record objects keep their offsets (relative to base_offset); tuples count from 0."""
    deltas = [r.offset - base_offset if isinstance(r, Record) else i for i, r in enumerate(records)]
    if (deltas and deltas[0] < 0) or any(b <= a for a, b in itertools.pairwise(deltas)):
        raise ValueError(f"record offsets must increase from base offset {base_offset}")
    return deltas


def _timestamp(rec: Record | RecordTuple) -> int:
    return rec.timestamp if isinstance(rec, Record) else rec[3]


def _attributes(
    codec: int, timestamp_type: int, transactional: bool, control: bool, horizon: bool
) -> int:
    attrs = codec | (_TIMESTAMP_TYPE_MASK if timestamp_type else 0)
    attrs |= _TRANSACTIONAL_MASK if transactional else 0
    attrs |= _CONTROL_MASK if control else 0
    return attrs | (_DELETE_HORIZON_MASK if horizon else 0)


def build_batch(
    records: Sequence[Record | RecordTuple],
    *,
    base_offset: int = 0,
    compression: Compression = Compression.NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    is_transactional: bool = False,
    is_control: bool = False,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
    partition_leader_epoch: int = -1,
    max_timestamp: int | None = None,
    last_offset_delta: int | None = None,
    delete_horizon_ms: int | None = None,
) -> bytes:
    """Encode one magic-2 batch.

    `records` are Record objects (offsets kept relative to `base_offset`, so gaps survive,
    as compaction needs) or `(key, value, headers, timestamp)` tuples (offsets 0, 1, ...).
    base_timestamp is the first record's timestamp (or `delete_horizon_ms`, which also sets
    attribute bit 6); max_timestamp defaults to the largest record timestamp;
    last_offset_delta defaults to the last record's delta and may be larger (compaction).
    An empty batch is written uncompressed, as Kafka does, with base_timestamp -1.
    Raises ValueError for arguments that cannot be encoded.
    """
    deltas = _offset_deltas(records, base_offset)
    timestamps = [_timestamp(r) for r in records]
    base_ts = timestamps[0] if timestamps else -1
    if delete_horizon_ms is not None:
        base_ts = delete_horizon_ms
    max_ts = max(timestamps, default=-1) if max_timestamp is None else max_timestamp
    last_delta = deltas[-1] if deltas else 0
    if last_offset_delta is not None:
        if last_offset_delta < last_delta:
            raise ValueError(f"last_offset_delta {last_offset_delta} is below {last_delta}")
        last_delta = last_offset_delta
    body = b"".join(map(_encode_record, deltas, [t - base_ts for t in timestamps], records))
    codec = int(compression) if records else 0
    if codec:
        body = codecs.compress(codec, body)
    flags = (is_transactional, is_control, delete_horizon_ms is not None)
    attrs = _attributes(codec, timestamp_type, *flags)
    header = BatchHeader(
        base_offset=base_offset,
        batch_length=0,
        partition_leader_epoch=partition_leader_epoch,
        magic=MAGIC,
        crc=0,
        attributes=attrs,
        last_offset_delta=last_delta,
        base_timestamp=base_ts,
        max_timestamp=max_ts,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        records_count=len(records),
    )
    return _seal(header, body)


def _seal(header: BatchHeader, body: bytes) -> bytes:
    """`header` + `body` as one batch; batch_length and crc are computed here."""
    out = bytearray(RECORD_BATCH_OVERHEAD + len(body))
    _HEADER.pack_into(out, 0, *header)
    _INT32.pack_into(out, _LENGTH_OFFSET, len(out) - LOG_OVERHEAD)
    out[RECORD_BATCH_OVERHEAD:] = body
    _write_crc(out, 0, len(out))
    return bytes(out)


# --- control batches --------------------------------------------------------------------------


def build_control_batch(
    control: ControlType,
    *,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int,
    timestamp_ms: int,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
) -> bytes:
    """A transaction marker: a transactional control batch of one record.

    Key: int16 version 0 + int16 type. Value: int16 version 0 + int32 coordinator epoch.
    """
    key = _CONTROL_KEY.pack(0, control)
    value = _CONTROL_VALUE.pack(0, coordinator_epoch)
    return build_batch(
        [(key, value, (), timestamp_ms)],
        base_offset=base_offset,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        is_transactional=True,
        is_control=True,
        partition_leader_epoch=partition_leader_epoch,
    )


def parse_control_record(record: Record) -> tuple[ControlType, int]:
    """`(type, coordinator_epoch)` of a transaction marker record.

    Versions newer than 0 are read as version 0 (their extra bytes ignored), as Kafka does.
    Raises InvalidRecordError for a malformed record or a non-transaction control type.
    """
    key, value = record.key or b"", record.value or b""
    if len(key) < _CONTROL_KEY.size:
        raise InvalidRecordError(f"control record key of {len(key)} bytes, need 4")
    key_version, type_id = _CONTROL_KEY.unpack_from(key)
    if key_version < 0:
        raise InvalidRecordError(f"control record key version {key_version}")
    if type_id not in (ControlType.ABORT, ControlType.COMMIT):
        raise InvalidRecordError(f"control record type {type_id} is not a transaction marker")
    if len(value) < _CONTROL_VALUE.size:
        raise InvalidRecordError(f"transaction marker value of {len(value)} bytes, need 6")
    value_version, coordinator_epoch = _CONTROL_VALUE.unpack_from(value)
    if value_version < 0:
        raise InvalidRecordError(f"transaction marker value version {value_version}")
    return ControlType(type_id), coordinator_epoch


# --- recompression ----------------------------------------------------------------------------


def recompress_batch(
    buf: Buffer,
    pos: int,
    compression: Compression,
    *,
    max_size: int = codecs.DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> bytes:
    """Re-encode the batch at `pos` with another codec; everything else stays as it was.

    The record array is decoded once to prove it well-formed, then its bytes (not the
    decoded records) are compressed again, so offsets, timestamp deltas, producer fields
    and headers survive exactly. Only the codec bits, the length and the CRC change. An
    empty batch, or one already in `compression`, comes back as it is.
    """
    header = check_batch(buf, pos)
    if header.records_count == 0 or header.compression == compression:
        return bytes(memoryview(buf)[pos : pos + header.size])
    body = _records_body(buf, pos, header, max_size)
    _decode_records(body, header)
    if compression != Compression.NONE:
        body = codecs.compress(int(compression), body)
    attributes = (header.attributes & ~_CODEC_MASK) | compression
    return _seal(header._replace(attributes=attributes, crc=0), body)
