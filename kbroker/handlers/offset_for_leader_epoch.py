"""OffsetForLeaderEpoch (key 23), v0-4: the end offset of a leader epoch (KIP-101, KIP-320).

For the requested epoch, the largest epoch <= it that this log has, and the start offset of the
next epoch (or the log end offset for the latest one). Consumers use it to detect truncation
after a leader change; a lazy answer (-1) makes the Java consumer reset its position, so this is
answered from the log's leader-epoch cache. Fenced like ListOffsets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import KafkaError
from protocol.messages.offset_for_leader_epoch_request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
)
from protocol.messages.offset_for_leader_epoch_response import (
    EpochEndOffset,
    OffsetForLeaderEpochResponse,
    OffsetForLeaderTopicResult,
)

if TYPE_CHECKING:
    from kbroker.context import RequestContext


def _partition(ctx: RequestContext, topic: str, p: OffsetForLeaderPartition) -> EpochEndOffset:
    try:
        partition = ctx.broker.partition(topic, p.partition)
        partition.check_leader_epoch(p.current_leader_epoch)
        epoch, end_offset = partition.log.end_offset_for_epoch(p.leader_epoch)
    except KafkaError as exc:
        return EpochEndOffset(error_code=exc.code, partition=p.partition)
    return EpochEndOffset(partition=p.partition, leader_epoch=epoch, end_offset=end_offset)


@handles(ApiKey.OFFSET_FOR_LEADER_EPOCH, 0, 4)
async def offset_for_leader_epoch(
    ctx: RequestContext, request: OffsetForLeaderEpochRequest
) -> OffsetForLeaderEpochResponse:
    topics = [
        OffsetForLeaderTopicResult(
            topic=t.topic, partitions=[_partition(ctx, t.topic, p) for p in t.partitions]
        )
        for t in request.topics
    ]
    return OffsetForLeaderEpochResponse(topics=topics)
