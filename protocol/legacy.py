"""Legacy message sets, magic 0 and 1, and conversion to and from magic-2 batches.

Theory of operation. Before KIP-98 a partition's records were a message set: entries of
`offset int64` + `message_size int32` + a message (big-endian throughout):

    crc         uint32  CRC-32 (IEEE, zlib.crc32) of everything after it: magic .. value
    magic       int8    0 or 1
    attributes  int8    bits 0-2 codec (0-3; zstd never existed here), bit 3 LogAppendTime (v1)
    timestamp   int64   magic 1 only (KIP-32)
    key         int32 length (-1 = null) + bytes
    value       int32 length (-1 = null) + bytes

A compressed message is a wrapper: null key, and a value that is a whole inner message set
compressed with the wrapper's codec. The wrapper carries the offset of the last inner message.
Inner messages of a magic-1 wrapper hold offsets relative to the first (KIP-31), so the
absolute offset of inner message i is wrapper_offset - last_relative + relative_i; a wrapper
offset of 0 means "not assigned" (some librdkafka versions produce that) and the relative
offsets are used as they are. Magic-0 inner messages carry absolute offsets. With
LogAppendTime, every inner message of a magic-1 wrapper takes the wrapper's timestamp.

Kafka >= 0.11 stores only magic 2 and converts at the edges: Produce v0-2 (`up_convert`) and
Fetch v0-3 (`down_convert`); Kafka 4.0 dropped both (KIP-724, KIP-896). Down-conversion
skips control batches, refuses zstd, drops headers, and for an uncompressed batch drops the
records before the fetch offset (old librdkafka relies on that), as Kafka 3.x did.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from protocol import compression as codecs
from protocol.errors import ProtocolError
from protocol.records import (
    BatchHeader,
    Buffer,
    Compression,
    CorruptRecordError,
    InvalidRecordError,
    Record,
    RecordTuple,
    TimestampType,
    build_batch,
    decode_batch,
    iter_batch_headers,
)

__all__ = [
    "LOG_OVERHEAD",
    "RECORD_OVERHEAD",
    "MessageHeader",
    "UnsupportedCompressionTypeError",
    "build_message_set",
    "check_message",
    "decode_message_set",
    "down_convert",
    "iter_message_headers",
    "read_message_header",
    "up_convert",
]

LOG_OVERHEAD = 12
# crc + magic + attributes + key length + value length (+ timestamp for magic 1)
RECORD_OVERHEAD = {0: 14, 1: 22}
_HEADER_SIZE = {0: 18, 1: 26}  # offset through timestamp: where the key length starts

_PREFIX = struct.Struct(">qiIbb")  # offset, message_size, crc, magic, attributes
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_MAGIC_OFFSET = 16
_CODEC_MASK = 0x07
_TIMESTAMP_TYPE_MASK = 0x08


class UnsupportedCompressionTypeError(ProtocolError):
    """A batch cannot be expressed in the requested message format (UNSUPPORTED_COMPRESSION_TYPE).

    Raised when down-converting a zstd batch: magic 0 and 1 have no zstd.
    """


class MessageHeader(NamedTuple):
    """The fixed part of one legacy message; timestamp is -1 for magic 0."""

    offset: int
    message_size: int
    crc: int
    magic: int
    attributes: int
    timestamp: int

    @property
    def size(self) -> int:
        """Bytes the entry occupies, offset and size fields included."""
        return self.message_size + LOG_OVERHEAD

    @property
    def compression(self) -> Compression:
        codec = self.attributes & _CODEC_MASK
        if codec > Compression.LZ4:
            raise InvalidRecordError(
                f"codec id {codec} is not valid in a magic {self.magic} message"
            )
        return Compression(codec)

    @property
    def timestamp_type(self) -> TimestampType:
        if self.magic > 0 and self.attributes & _TIMESTAMP_TYPE_MASK:
            return TimestampType.LOG_APPEND_TIME
        return TimestampType.CREATE_TIME


def read_message_header(buf: Buffer, pos: int = 0) -> MessageHeader:
    """Unpack the header of the message at `pos`; checks its magic and minimum size."""
    if pos < 0 or len(buf) - pos < _PREFIX.size:
        raise CorruptRecordError(f"legacy message header truncated at position {pos}")
    offset, size, crc, magic, attributes = _PREFIX.unpack_from(buf, pos)
    if magic not in RECORD_OVERHEAD:
        raise CorruptRecordError(f"message magic {magic} at position {pos}, expected 0 or 1")
    if size < RECORD_OVERHEAD[magic]:
        raise CorruptRecordError(f"message size {size} is below the magic {magic} minimum")
    timestamp = -1
    if magic == 1:
        if len(buf) - pos < _HEADER_SIZE[1]:
            raise CorruptRecordError(f"legacy message header truncated at position {pos}")
        (timestamp,) = _INT64.unpack_from(buf, pos + _PREFIX.size)
    return MessageHeader(offset, size, crc, magic, attributes, timestamp)


def iter_message_headers(
    buf: Buffer, pos: int = 0, end: int | None = None, *, allow_partial: bool = True
) -> Iterator[tuple[int, MessageHeader]]:
    """Yield `(position, header)` of each complete (shallow) message in `buf[pos:end]`.

    A partial message at the end stops iteration silently when `allow_partial` (fetch
    responses cut message sets at the byte limit) and raises CorruptRecordError otherwise.
    """
    limit = len(buf) if end is None else min(end, len(buf))
    while pos < limit:
        if limit - pos >= LOG_OVERHEAD:
            (size,) = _INT32.unpack_from(buf, pos + 8)
            if size < RECORD_OVERHEAD[0]:
                raise CorruptRecordError(f"message size {size} at position {pos} is below 14")
            if pos + size + LOG_OVERHEAD <= limit:
                header = read_message_header(buf, pos)
                yield pos, header
                pos += header.size
                continue
        if allow_partial:
            return
        raise CorruptRecordError(f"message set truncated at position {pos}")


def check_message(buf: Buffer, pos: int = 0) -> MessageHeader:
    """Check the message at `pos`: framing and CRC-32."""
    header = read_message_header(buf, pos)
    end = pos + header.size
    if end > len(buf):
        raise CorruptRecordError("legacy message truncated")
    actual = zlib.crc32(memoryview(buf)[pos + _MAGIC_OFFSET : end])
    if actual != header.crc:
        raise CorruptRecordError(
            f"message crc mismatch: stored {header.crc:#010x}, computed {actual:#010x}"
        )
    return header


def _read_blob(buf: Buffer, pos: int, end: int) -> tuple[bytes | None, int]:
    if pos + 4 > end:
        raise InvalidRecordError("message key or value length overruns the message")
    (length,) = _INT32.unpack_from(buf, pos)
    pos += 4
    if length < 0:
        return None, pos
    if pos + length > end:
        raise InvalidRecordError(f"message field of {length} bytes overruns the message")
    return bytes(buf[pos : pos + length]), pos + length


def _key_value(buf: Buffer, pos: int, header: MessageHeader) -> tuple[bytes | None, bytes | None]:
    end = pos + header.size
    key, p = _read_blob(buf, pos + _HEADER_SIZE[header.magic], end)
    value, p = _read_blob(buf, p, end)
    if p != end:
        raise InvalidRecordError(f"{end - p} bytes left over at the end of a message")
    return key, value


# --- decoding ---------------------------------------------------------------------------------


def decode_message_set(
    buf: Buffer, *, max_size: int = codecs.DEFAULT_MAX_DECOMPRESSED_SIZE
) -> list[Record]:
    """Decode a message set, unwrapping compressed messages, into records.

    Offsets are absolute. Timestamps are -1 for magic 0 and the wrapper's for LogAppendTime
    wrappers. A partial message at the end is ignored. Every message's CRC is checked. At
    most `max_size` bytes are decompressed per wrapper.
    """
    records: list[Record] = []
    for pos, header in iter_message_headers(buf):
        check_message(buf, pos)
        if header.compression == Compression.NONE:
            key, value = _key_value(buf, pos, header)
            records.append(Record(header.offset, header.timestamp, key, value))
        else:
            records.extend(_unwrap(buf, pos, header, max_size))
    return records


def _unwrap(buf: Buffer, pos: int, wrapper: MessageHeader, max_size: int) -> list[Record]:
    """The inner records of a compressed wrapper message, offsets made absolute."""
    _, blob = _key_value(buf, pos, wrapper)
    if blob is None:
        raise InvalidRecordError("compressed message has a null value")
    try:
        inner = codecs.decompress(wrapper.compression, blob, max_size, magic=wrapper.magic)
    except codecs.CompressionError as exc:
        raise CorruptRecordError(f"cannot decompress message set: {exc}") from None
    records: list[Record] = []
    for ipos, header in iter_message_headers(inner, allow_partial=False):
        check_message(inner, ipos)
        if header.magic != wrapper.magic:
            raise InvalidRecordError(f"magic {header.magic} inside a magic {wrapper.magic} wrapper")
        if header.compression != Compression.NONE:
            raise InvalidRecordError("inner messages must not be compressed")
        key, value = _key_value(inner, ipos, header)
        timestamp = header.timestamp
        if wrapper.timestamp_type == TimestampType.LOG_APPEND_TIME:
            timestamp = wrapper.timestamp
        records.append(Record(header.offset, timestamp, key, value))
    if not records:
        raise InvalidRecordError("compressed message holds no inner messages")
    if wrapper.magic == 1 and wrapper.offset != 0:
        base = wrapper.offset - records[-1].offset
        if base < 0:
            raise InvalidRecordError(
                f"wrapper offset {wrapper.offset} is below its last inner offset "
                f"{records[-1].offset}"
            )
        for record in records:
            record.offset += base
    return records


# --- building ---------------------------------------------------------------------------------


def _blob(data: bytes | None) -> bytes:
    return _INT32.pack(-1) if data is None else _INT32.pack(len(data)) + data


_Entry = tuple[int, int, bytes | None, bytes | None]  # offset, timestamp, key, value


def _message(magic: int, attributes: int, entry: _Entry) -> bytes:
    offset, timestamp, key, value = entry
    body = bytes((magic, attributes))
    if magic == 1:
        body += _INT64.pack(timestamp)
    body += _blob(key) + _blob(value)
    return _PREFIX.pack(offset, len(body) + 4, zlib.crc32(body), magic, attributes) + body[2:]


def _entry(rec: Record | RecordTuple, index: int, base_offset: int) -> _Entry:
    if isinstance(rec, Record):
        return rec.offset, rec.timestamp, rec.key, rec.value
    return base_offset + index, rec[3], rec[0], rec[1]


def build_message_set(
    records: Sequence[Record | RecordTuple],
    *,
    magic: int,
    compression: Compression = Compression.NONE,
    base_offset: int = 0,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
    log_append_time: int = -1,
) -> bytes:
    """Encode records as a magic 0 or 1 message set; headers are dropped (they do not exist).

    Record objects keep their offsets; `(key, value, headers, timestamp)` tuples get
    base_offset, base_offset + 1, ... With a codec the records go into one wrapper message
    (offset of the last record; magic 1: relative inner offsets and the largest timestamp).
    With LogAppendTime (magic 1), `log_append_time` replaces every timestamp. Raises
    ValueError for a magic other than 0/1 or for zstd.
    """
    if magic not in RECORD_OVERHEAD:
        raise ValueError(f"legacy magic must be 0 or 1, not {magic}")
    if compression > Compression.LZ4:
        raise ValueError(f"{compression.name} cannot be used with magic {magic}")
    log_append = magic == 1 and timestamp_type == TimestampType.LOG_APPEND_TIME
    ts_bit = _TIMESTAMP_TYPE_MASK if log_append else 0
    entries = [_entry(rec, i, base_offset) for i, rec in enumerate(records)]
    if log_append:
        entries = [(o, log_append_time, k, v) for o, _, k, v in entries]
    if compression == Compression.NONE or not entries:
        return b"".join(_message(magic, ts_bit, e) for e in entries)
    shift = entries[0][0] if magic == 1 else 0
    inner = b"".join(_message(magic, ts_bit, (o - shift, t, k, v)) for o, t, k, v in entries)
    blob = codecs.compress(compression, inner, magic=magic)
    wrapper = (entries[-1][0], max(e[1] for e in entries), None, blob)
    return _message(magic, compression | ts_bit, wrapper)


# --- conversion -------------------------------------------------------------------------------


def up_convert(
    message_set: Buffer,
    *,
    compression: Compression | None = None,
    max_size: int = codecs.DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> list[bytes]:
    """Convert a produced message set (Produce v0-2) into magic-2 batches.

    All records go into one batch (Kafka appends a produce request's records atomically),
    with offsets 0..n-1 for the broker to rebase, CreateTime, and no producer id. The codec
    is `compression`, or else that of the first compressed wrapper. An empty set gives [].
    """
    records = decode_message_set(message_set, max_size=max_size)
    if not records:
        return []
    for record in records:
        if record.timestamp < -1:  # -1 is "no timestamp"; Kafka rejects other negatives
            raise InvalidRecordError(f"invalid message timestamp {record.timestamp}")
    if compression is None:
        compression = Compression.NONE
        for _, header in iter_message_headers(message_set):
            if header.compression != Compression.NONE:
                compression = header.compression
                break
    tuples: list[RecordTuple] = [(r.key, r.value, (), r.timestamp) for r in records]
    return [build_batch(tuples, compression=compression)]


def down_convert(
    records: Buffer,
    magic: int,
    *,
    first_offset: int = 0,
    max_size: int = codecs.DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> bytes:
    """Convert magic-2 batches (a fetch response's record bytes) into a magic 0/1 message set.

    One message set entry per uncompressed record, one wrapper per compressed batch (same
    codec). Control batches are skipped; records before `first_offset` are dropped from
    uncompressed batches; a partial trailing batch is ignored. Raises
    UnsupportedCompressionTypeError for a zstd batch, ValueError for a magic other than 0/1.
    """
    if magic not in RECORD_OVERHEAD:
        raise ValueError(f"legacy magic must be 0 or 1, not {magic}")
    out: list[bytes] = []
    for pos, header in iter_batch_headers(records):
        if header.is_control:
            continue
        if header.compression == Compression.ZSTD:
            raise UnsupportedCompressionTypeError("zstd batches cannot be down-converted")
        _, decoded = decode_batch(records, pos, max_size=max_size)
        if header.compression == Compression.NONE:
            decoded = [r for r in decoded if r.offset >= first_offset]
        if decoded:
            out.append(_down_convert_batch(header, decoded, magic))
    return b"".join(out)


def _down_convert_batch(header: BatchHeader, records: list[Record], magic: int) -> bytes:
    try:
        return build_message_set(
            records,
            magic=magic,
            compression=header.compression,
            timestamp_type=header.timestamp_type,
            log_append_time=header.max_timestamp,
        )
    except (ValueError, struct.error) as exc:
        # Reachable only with offsets that wrap around int64: the CRC was fine, so the batch
        # is intact, but it cannot be expressed as a message set.
        raise InvalidRecordError(
            f"batch at offset {header.base_offset} cannot be down-converted: {exc}"
        ) from None
