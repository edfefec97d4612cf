"""ListOffsets (key 2), v1-10: offsets by timestamp, and the special timestamps.

-1 latest: the high watermark (the last stable offset for read_committed); -2 earliest: the log
start offset; -3 (v7+) the record with the largest timestamp (KIP-734); -4 (v8+) earliest local,
equal to earliest without tiered storage; -5 (v9+) latest tiered: offset -1 (no tiered storage);
t >= 0: the first offset whose timestamp is >= t, or -1/-1 when none is, or when that offset is
not yet fetchable at the request's isolation level (at or above the high watermark, or the
last stable offset for read_committed), as Kafka's Partition.fetchOffsetForTimestamp.
A current leader epoch other than ours is fenced (KIP-320). v0 (several "old style" offsets)
is not served, as in Kafka 4.
"""

from __future__ import annotations

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


@handles(ApiKey.LIST_OFFSETS, 1, 10)
async def list_offsets(ctx: RequestContext, request: ListOffsetsRequest) -> ListOffsetsResponse:
    committed = request.isolation_level == 1
    topics = [
        ListOffsetsTopicResponse(
            name=t.name, partitions=[_partition(ctx, t.name, p, committed) for p in t.partitions]
        )
        for t in request.topics
    ]
    return ListOffsetsResponse(topics=topics)
