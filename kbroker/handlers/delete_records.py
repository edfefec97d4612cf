"""DeleteRecords (key 21), v0-2: move partitions' log start offsets up (KIP-107).

Per partition, offset -1 means the high watermark; the answer is the new low watermark (the log
start offset: a single node has no other replica to wait for). An offset above the high
watermark, or below zero, is OFFSET_OUT_OF_RANGE; an offset below the current start changes
nothing. Segments wholly below the new start are deleted. Internal topics are
INVALID_TOPIC_EXCEPTION, compact-only topics POLICY_VIOLATION, unknown partitions
UNKNOWN_TOPIC_OR_PARTITION, all with low watermark -1, as in Kafka.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.admin import delete_records as delete_before
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import KafkaError
from protocol.messages.delete_records_request import DeleteRecordsPartition, DeleteRecordsRequest
from protocol.messages.delete_records_response import (
    DeleteRecordsPartitionResult,
    DeleteRecordsResponse,
    DeleteRecordsTopicResult,
)

if TYPE_CHECKING:
    from kbroker.context import RequestContext

UNKNOWN_LOW_WATERMARK = -1


def _delete(
    ctx: RequestContext, topic: str, p: DeleteRecordsPartition
) -> DeleteRecordsPartitionResult:
    try:
        low_watermark = delete_before(ctx.broker, topic, p.partition_index, p.offset)
    except KafkaError as exc:
        return DeleteRecordsPartitionResult(
            partition_index=p.partition_index,
            low_watermark=UNKNOWN_LOW_WATERMARK,
            error_code=exc.code,
        )
    return DeleteRecordsPartitionResult(
        partition_index=p.partition_index, low_watermark=low_watermark
    )


@handles(ApiKey.DELETE_RECORDS, 0, 2)
async def delete_records(
    ctx: RequestContext, request: DeleteRecordsRequest
) -> DeleteRecordsResponse:
    topics = [
        DeleteRecordsTopicResult(
            name=t.name, partitions=[_delete(ctx, t.name, p) for p in t.partitions]
        )
        for t in request.topics
    ]
    return DeleteRecordsResponse(topics=topics)
