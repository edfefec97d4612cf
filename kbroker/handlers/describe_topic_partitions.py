"""DescribeTopicPartitions (key 75), v0: topics and partitions, paged by a cursor (KIP-966).

Topics asked for (an empty list: all) are described in name order from the cursor's topic and
partition, up to `response_partition_limit` partitions (at most Kafka's default
max.request.partition.size.limit, 2000, at least 1); when the limit cuts a topic or the next
topic, `next_cursor` says where to resume. Unknown named topics get UNKNOWN_TOPIC_OR_PARTITION
(INVALID_TOPIC_EXCEPTION for illegal names) and are skipped when listing all. Every partition is
led by this broker, its only replica and in-sync replica; eligible leader replicas and last known
ELR are empty (no ELR on a single node). A cursor naming a topic not in the list, or a negative
partition, is INVALID_REQUEST for every topic asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker import topics_naming
from kbroker.admin import TOPIC_OPERATIONS
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.describe_topic_partitions_request import Cursor as RequestCursor
from protocol.messages.describe_topic_partitions_request import DescribeTopicPartitionsRequest
from protocol.messages.describe_topic_partitions_response import (
    Cursor,
    DescribeTopicPartitionsResponse,
    DescribeTopicPartitionsResponsePartition,
    DescribeTopicPartitionsResponseTopic,
)

if TYPE_CHECKING:
    from kbroker.broker import Broker
    from kbroker.context import RequestContext
    from kbroker.topic_store import TopicInfo

MAX_PARTITIONS_PER_RESPONSE = 2000  # Kafka's max.request.partition.size.limit default


def _partitions(
    broker: Broker, info: TopicInfo, start: int, limit: int
) -> list[DescribeTopicPartitionsResponsePartition]:
    node = broker.node_id
    return [
        DescribeTopicPartitionsResponsePartition(
            partition_index=index,
            leader_id=node,
            leader_epoch=broker.partition(info.name, index).leader_epoch,
            replica_nodes=[node],
            isr_nodes=[node],
            eligible_leader_replicas=[],
            last_known_elr=[],
            offline_replicas=[],
        )
        for index in range(start, min(info.partitions, start + limit))
    ]


def _missing(name: str) -> DescribeTopicPartitionsResponseTopic:
    legal = topics_naming.is_valid_topic_name(name)
    return DescribeTopicPartitionsResponseTopic(
        error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        if legal
        else ErrorCode.INVALID_TOPIC_EXCEPTION,
        name=name,
        is_internal=topics_naming.is_internal(name),
        topic_authorized_operations=TOPIC_OPERATIONS,
    )


def _page(
    broker: Broker, names: list[str], cursor: RequestCursor | None, limit: int, listing_all: bool
) -> DescribeTopicPartitionsResponse:
    response = DescribeTopicPartitionsResponse()
    remaining = limit
    for name in names:
        if remaining == 0:
            response.next_cursor = Cursor(topic_name=name, partition_index=0)
            break
        info = broker.topics.topics.get(name)
        if info is None:
            if not listing_all:
                response.topics.append(_missing(name))
            continue
        start = cursor.partition_index if cursor is not None and cursor.topic_name == name else 0
        partitions = _partitions(broker, info, start, remaining)
        response.topics.append(
            DescribeTopicPartitionsResponseTopic(
                name=name,
                topic_id=info.topic_id,
                is_internal=topics_naming.is_internal(name),
                partitions=partitions,
                topic_authorized_operations=TOPIC_OPERATIONS,
            )
        )
        end = start + len(partitions)
        if end < info.partitions:
            response.next_cursor = Cursor(topic_name=name, partition_index=end)
            break
        remaining -= len(partitions)
    return response


def _invalid(request: DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse:
    return DescribeTopicPartitionsResponse(
        topics=[
            DescribeTopicPartitionsResponseTopic(error_code=ErrorCode.INVALID_REQUEST, name=t.name)
            for t in request.topics
        ]
    )


@handles(ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, 0)
async def describe_topic_partitions(
    ctx: RequestContext, request: DescribeTopicPartitionsRequest
) -> DescribeTopicPartitionsResponse:
    broker = ctx.broker
    cursor = request.cursor
    first = cursor.topic_name if cursor is not None else ""
    listing_all = not request.topics
    requested = broker.topics.topics if listing_all else [t.name for t in request.topics]
    names = sorted({name for name in requested if name >= first})
    if cursor is not None and (
        cursor.partition_index < 0 or (not listing_all and cursor.topic_name not in names)
    ):
        return _invalid(request)
    limit = max(min(MAX_PARTITIONS_PER_RESPONSE, request.response_partition_limit), 1)
    return _page(broker, names, cursor, limit, listing_all)
