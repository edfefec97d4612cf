"""ListOffsets (key 2), v0-10: offsets by timestamp, and the special timestamps.

-1 latest: the high watermark (the last stable offset for read_committed); -2 earliest: the log
start offset; -3 (v7+) the record with the largest timestamp (KIP-734); -4 (v8+) earliest local,
equal to earliest without tiered storage; -5 (v9+) latest tiered: offset -1 (no tiered storage);
t >= 0: the first offset whose timestamp is >= t, or -1/-1 when none is, or when that offset is
not yet fetchable at the request's isolation level (at or above the high watermark, or the
last stable offset for read_committed), as Kafka's Partition.fetchOffsetForTimestamp.
A current leader epoch other than ours is fenced (KIP-320).

v0, which Kafka 4 dropped (KIP-896) but old clients still send (kafka-python with api_version
(0, 9), sarama before V0_10_1_0), is answered as Kafka 2.x-3.x did, in `_old_style_offsets`:
up to `max_num_offsets` segment boundaries, newest first, chosen by file modification time.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages.list_offsets_request import ListOffsetsPartition, ListOffsetsRequest
from protocol.messages.list_offsets_response import (
    ListOffsetsPartitionResponse,
    ListOffsetsResponse,
    ListOffsetsTopicResponse,
)

if TYPE_CHECKING:
    from kbroker.context import RequestContext
    from kbroker.partition import Partition

LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED = -1, -2, -3, -4, -5
CONSUMER_REPLICA_ID = -1


def _lookup(partition: Partition, timestamp: int, committed: bool) -> tuple[int, int, int]:
    """(timestamp, offset, leader epoch) for one request timestamp."""
    epoch = partition.leader_epoch
    if timestamp == LATEST:
        return -1, partition.last_stable_offset if committed else partition.high_watermark, epoch
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return -1, partition.log_start_offset, epoch
    if timestamp == LATEST_TIERED:
        return -1, -1, -1
    if timestamp == MAX_TIMESTAMP:
        found = partition.log.max_timestamp_offset()
    elif timestamp < 0:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"unknown special timestamp {timestamp}")
    else:
        found = partition.log.offset_for_timestamp(timestamp)
    fetchable = partition.last_stable_offset if committed else partition.high_watermark
    if found is None or found.offset >= fetchable:  # Kafka's lastFetchableOffset rule
        return -1, -1, -1
    leader_epoch = found.leader_epoch if found.leader_epoch is not None else -1
    return found.timestamp, found.offset, leader_epoch


def _partition(
    ctx: RequestContext, topic: str, p: ListOffsetsPartition, committed: bool
) -> ListOffsetsPartitionResponse:
    try:
        partition = ctx.broker.partition(topic, p.partition_index)
        partition.check_leader_epoch(p.current_leader_epoch)
        timestamp, offset, epoch = _lookup(partition, p.timestamp, committed)
    except KafkaError as exc:
        return ListOffsetsPartitionResponse(partition_index=p.partition_index, error_code=exc.code)
    return ListOffsetsPartitionResponse(
        partition_index=p.partition_index, timestamp=timestamp, offset=offset, leader_epoch=epoch
    )


def _old_style_offsets(
    partition: Partition, timestamp: int, max_num_offsets: int, from_consumer: bool, now_ms: int
) -> list[int]:
    """ListOffsets v0 for one partition: Kafka's legacy "offsets before" answer.

    The candidates are each segment's base offset (at least the log start offset) stamped
    with the segment file's modification time, plus, when the active segment holds data,
    the log end offset stamped `now_ms`. -1 starts from the last candidate, -2 from the
    first, a time from the last candidate modified at or before it (none: an empty list);
    from there up to `max_num_offsets` candidates going back, newest first. For a consumer
    (replica id -1), offsets past the high watermark give way to the high watermark.
    """
    if max_num_offsets < 0:  # Kafka fails allocating the array: an unexpected server error
        raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, f"max_num_offsets {max_num_offsets}")
    log = partition.log
    segments = log.segments
    try:
        candidates = [
            (max(s.base_offset, log.log_start_offset), os.stat(s.log.path).st_mtime_ns // 10**6)
            for s in segments
        ]
    except OSError as exc:  # a segment deleted meanwhile, or a failing disk
        raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, str(exc)) from None
    if segments[-1].size > 0:
        candidates.append((log.log_end_offset, now_ms))
    if timestamp == LATEST:
        start = len(candidates) - 1
    elif timestamp == EARLIEST:
        start = 0
    else:
        newer = [i for i, (_, modified) in enumerate(candidates) if modified <= timestamp]
        start = newer[-1] if newer else -1
    count = min(max_num_offsets, start + 1)
    offsets = sorted((candidates[start - j][0] for j in range(count)), reverse=True)
    high_watermark = partition.high_watermark
    if from_consumer and any(o > high_watermark for o in offsets):
        offsets = [high_watermark] + [o for o in offsets if o <= high_watermark]
    return offsets


def _list_offsets_v0(ctx: RequestContext, request: ListOffsetsRequest) -> ListOffsetsResponse:
    """v0: `old_style_offsets` per partition; timestamps below -2 are UNSUPPORTED_VERSION."""
    from_consumer = request.replica_id == CONSUMER_REPLICA_ID
    now_ms = time.time_ns() // 1_000_000
    topics = []
    for t in request.topics:
        answers = []
        for p in t.partitions:
            answer = ListOffsetsPartitionResponse(partition_index=p.partition_index)
            try:
                if p.timestamp < EARLIEST:
                    raise KafkaError(ErrorCode.UNSUPPORTED_VERSION)
                partition = ctx.broker.partition(t.name, p.partition_index)
                answer.old_style_offsets = _old_style_offsets(
                    partition, p.timestamp, p.max_num_offsets, from_consumer, now_ms
                )
            except KafkaError as exc:
                answer.error_code = exc.code
            answers.append(answer)
        topics.append(ListOffsetsTopicResponse(name=t.name, partitions=answers))
    return ListOffsetsResponse(topics=topics)


@handles(ApiKey.LIST_OFFSETS, 0, 10)
async def list_offsets(ctx: RequestContext, request: ListOffsetsRequest) -> ListOffsetsResponse:
    if ctx.api_version == 0:
        return _list_offsets_v0(ctx, request)
    committed = request.isolation_level == 1
    topics = [
        ListOffsetsTopicResponse(
            name=t.name, partitions=[_partition(ctx, t.name, p, committed) for p in t.partitions]
        )
        for t in request.topics
    ]
    return ListOffsetsResponse(topics=topics)
