"""Batch-level work of an append: stamping a leader's batches, checking a follower's.

Both walk the 61-byte headers of an append's batches once and touch no record: the leader
path patches base offset, partition leader epoch and (LogAppendTime) the timestamp in place;
the follower path keeps everything and only checks that offsets rise.
"""

from __future__ import annotations

from protocol.records import (
    LOG_OVERHEAD,
    CorruptRecordError,
    InvalidRecordError,
    read_batch_header,
    set_base_offset,
    set_log_append_time,
    set_partition_leader_epoch,
)
from storage.errors import RecordTooLargeError, UnexpectedAppendOffsetError
from storage.segment import BatchMeta


def stamp_leader_batches(
    view: memoryview,
    offset: int,
    epoch: int,
    now_ms: int,
    log_append_time: bool,
    max_message_bytes: int,
) -> list[BatchMeta]:
    """Assign offsets from `offset` (and the epoch, and maybe the time) to every batch."""
    batches: list[BatchMeta] = []
    pos, end = 0, len(view)
    while pos < end:
        header = read_batch_header(view, pos)
        size = header.batch_length + LOG_OVERHEAD
        if pos + size > end:
            raise CorruptRecordError(f"partial batch at byte {pos} of the append")
        if size > max_message_bytes:
            raise RecordTooLargeError(
                f"batch of {size} bytes > max.message.bytes {max_message_bytes}"
            )
        set_base_offset(view, pos, offset)
        set_partition_leader_epoch(view, pos, epoch)
        timestamp = header.max_timestamp
        if log_append_time:
            set_log_append_time(view, pos, now_ms)
            timestamp = now_ms
        offset += header.last_offset_delta
        batches.append(BatchMeta(size, offset, timestamp))
        offset += 1
        pos += size
    if not batches:
        raise InvalidRecordError("an append must hold at least one batch")
    return batches


def scan_follower_batches(
    view: memoryview, log_end_offset: int
) -> tuple[list[BatchMeta], list[tuple[int, int]]]:
    """Batch metadata and `(epoch, base_offset)` of each stamped batch of a replicated append.

    Offsets must start at or after `log_end_offset` and rise from batch to batch.
    """
    batches: list[BatchMeta] = []
    epochs: list[tuple[int, int]] = []
    pos, end, prev_last = 0, len(view), log_end_offset - 1
    while pos < end:
        header = read_batch_header(view, pos)
        size = header.batch_length + LOG_OVERHEAD
        if pos + size > end:
            raise CorruptRecordError(f"partial batch at byte {pos} of the append")
        if header.base_offset <= prev_last:
            raise UnexpectedAppendOffsetError(
                f"replicated batch at offset {header.base_offset} does not follow {prev_last}"
            )
        last = header.base_offset + header.last_offset_delta
        batches.append(BatchMeta(size, last, header.max_timestamp))
        if header.partition_leader_epoch >= 0:
            epochs.append((header.partition_leader_epoch, header.base_offset))
        prev_last, pos = last, pos + size
    if not batches:
        raise InvalidRecordError("an append must hold at least one batch")
    return batches, epochs
