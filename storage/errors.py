"""Typed failures of the log, each carrying the Kafka error code the broker reports.

Everything the broker may see from `storage/` is a `KafkaError` subclass (one boundary per
API turns it into a per-partition error code) or, for bytes that do not parse as batches on
append, the protocol's `CorruptRecordError`/`InvalidRecordError`.
"""

from __future__ import annotations

from protocol.error_codes import ErrorCode, KafkaError


class KafkaStorageError(KafkaError):
    """The disk failed under this log (ENOSPC, EIO, failed fsync) or the log is offline."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(ErrorCode.KAFKA_STORAGE_ERROR, message)


class CorruptSegmentError(KafkaStorageError):
    """Bytes stored in a segment fail their CRC or framing: never served, always reported.

    `path` is the segment file and `position` the byte offset of the first bad batch.
    """

    def __init__(self, path: str, position: int, detail: str) -> None:
        super().__init__(f"corrupt record batch in {path} at byte {position}: {detail}")
        self.path = path
        self.position = position


class OffsetOutOfRangeError(KafkaError):
    """A fetch or a log-start move asked for an offset the log does not hold."""

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        super().__init__(
            ErrorCode.OFFSET_OUT_OF_RANGE,
            f"offset {offset} is outside [{log_start_offset}, {log_end_offset}]",
        )
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class RecordTooLargeError(KafkaError):
    """One batch is larger than the topic's `max.message.bytes`."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.MESSAGE_TOO_LARGE, message)


class RecordBatchTooLargeError(KafkaError):
    """One append is larger than a whole segment (`segment.bytes`)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.RECORD_LIST_TOO_LARGE, message)


class UnexpectedAppendOffsetError(KafkaError):
    """A follower append whose offsets go backwards from the log end (replication bug)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.UNKNOWN_SERVER_ERROR, message)


class CorruptIndexError(Exception):
    """An index file fails its sanity check; the loader rebuilds it from the log file."""
