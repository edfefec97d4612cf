"""CreatePartitions (key 37), v0-3: add partitions to existing topics (KIP-195).

Only increases: the same count or fewer is INVALID_PARTITIONS. Manual assignments (one per new
partition) may name only this broker, once (INVALID_REPLICA_ASSIGNMENT otherwise), since a single
node holds the one replica. New partitions are empty logs led by this broker, visible in the next
Metadata response. A topic named twice gets one INVALID_REQUEST result; `validate_only` checks
without creating; `timeout_ms` does not matter on a single node, where creation is immediate.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from kbroker.admin import create_partitions as grow_topic
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages.create_partitions_request import CreatePartitionsRequest
from protocol.messages.create_partitions_response import (
    CreatePartitionsResponse,
    CreatePartitionsTopicResult,
)

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.CREATE_PARTITIONS, 0, 3)
async def create_partitions(
    ctx: RequestContext, request: CreatePartitionsRequest
) -> CreatePartitionsResponse:
    counts = Counter(t.name for t in request.topics)
    results = [
        CreatePartitionsTopicResult(
            name=name, error_code=ErrorCode.INVALID_REQUEST, error_message="Duplicate topic name."
        )
        for name, n in counts.items()
        if n > 1
    ]
    for topic in request.topics:
        if counts[topic.name] > 1:
            continue
        result = CreatePartitionsTopicResult(name=topic.name)
        assignments = None
        if topic.assignments is not None:
            assignments = [a.broker_ids for a in topic.assignments]
        try:
            grow_topic(ctx.broker, topic.name, topic.count, assignments, request.validate_only)
        except KafkaError as exc:
            result.error_code, result.error_message = exc.code, exc.message
        results.append(result)
    return CreatePartitionsResponse(results=results)
