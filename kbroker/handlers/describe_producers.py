"""DescribeProducers (key 61), v0: the producer state of partitions this broker leads (KIP-664).

Per partition, every producer id the partition's producer state holds: its epoch, last
sequence (-1 when no batch of the current epoch is retained, e.g. after a marker bumped the
epoch), the timestamp of its last batch, the coordinator epoch of its last marker (-1 if none)
and the first offset of its open transaction (-1 if none), as Kafka's
`ReplicaManager.activeProducerState` reports them. Tools use it to find hanging transactions
(`kafka-transactions.sh find-hanging`). Unknown partitions answer UNKNOWN_TOPIC_OR_PARTITION.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import KafkaError
from protocol.messages.describe_producers_request import DescribeProducersRequest
from protocol.messages.describe_producers_response import (
    DescribeProducersResponse,
    PartitionResponse,
    ProducerState,
    TopicResponse,
)

if TYPE_CHECKING:
    from kbroker.context import RequestContext


def _partition(ctx: RequestContext, topic: str, index: int) -> PartitionResponse:
    try:
        partition = ctx.broker.partition(topic, index)
    except KafkaError as exc:
        return PartitionResponse(
            partition_index=index, error_code=exc.code, error_message=exc.message
        )
    producers = [
        ProducerState(
            producer_id=entry.producer_id,
            producer_epoch=entry.producer_epoch,
            last_sequence=entry.last_sequence,
            last_timestamp=entry.last_timestamp,
            coordinator_epoch=entry.coordinator_epoch,
            current_txn_start_offset=entry.current_txn_start_offset,
        )
        for entry in partition.producers.producers().values()
    ]
    return PartitionResponse(partition_index=index, active_producers=producers)


@handles(ApiKey.DESCRIBE_PRODUCERS, 0, 0)
async def describe_producers(
    ctx: RequestContext, request: DescribeProducersRequest
) -> DescribeProducersResponse:
    topics = [
        TopicResponse(
            name=t.name, partitions=[_partition(ctx, t.name, i) for i in t.partition_indexes]
        )
        for t in request.topics
    ]
    return DescribeProducersResponse(topics=topics)
