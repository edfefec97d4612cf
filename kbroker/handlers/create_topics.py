"""CreateTopics (key 19), v0-7: validate-only, configs, manual assignment; per-topic errors.

num_partitions / replication_factor -1 (v4+) take the broker defaults. A single node can only
hold one replica: a replication factor above 1 is INVALID_REPLICATION_FACTOR and a manual
assignment naming another broker INVALID_REPLICA_ASSIGNMENT. Configs are validated as
Kafka does (unknown name or bad value: INVALID_CONFIG). v5+ responses carry the topic's
effective configs; v7 its id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from protocol.messages.create_topics_response import (
    CreatableTopicConfigs,
    CreatableTopicResult,
    CreateTopicsResponse,
)

if TYPE_CHECKING:
    from kbroker.broker import Broker
    from kbroker.context import RequestContext


def _partitions(broker: Broker, topic: CreatableTopic) -> int:
    if topic.assignments:
        if topic.num_partitions != -1 or topic.replication_factor != -1:
            raise KafkaError(
                ErrorCode.INVALID_REQUEST,
                "Both numPartitions or replicationFactor and replicasAssignments were set.",
            )
        indexes = sorted(a.partition_index for a in topic.assignments)
        if indexes != list(range(len(indexes))):
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, "partitions must be 0..n-1")
        for assignment in topic.assignments:
            if assignment.broker_ids != [broker.node_id]:
                raise KafkaError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    f"replicas {assignment.broker_ids}: only broker {broker.node_id} exists",
                )
        return len(indexes)
    rf = topic.replication_factor
    if rf == -1:
        rf = broker.int_config("default.replication.factor")
    if rf != 1:
        raise KafkaError(
            ErrorCode.INVALID_REPLICATION_FACTOR,
            f"Replication factor: {rf} larger than available brokers: 1.",
        )
    if topic.num_partitions == -1:
        return broker.int_config("num.partitions")
    return topic.num_partitions


def _create(
    ctx: RequestContext, topic: CreatableTopic, validate_only: bool
) -> CreatableTopicResult:
    broker = ctx.broker
    configs = {c.name: c.value for c in topic.configs if c.value is not None}
    try:
        partitions = _partitions(broker, topic)
        info = broker.create_topic(topic.name, partitions, configs, validate_only)
    except KafkaError as exc:
        return CreatableTopicResult(name=topic.name, error_code=exc.code, error_message=exc.message)
    result = CreatableTopicResult(
        name=topic.name, error_message=None, num_partitions=partitions, replication_factor=1
    )
    if info is not None:
        result.topic_id = info.topic_id
        entries = broker.topic_config(info).describe()
        result.configs = [
            CreatableTopicConfigs(
                name=e.name,
                value=e.value,
                read_only=e.read_only,
                config_source=e.source,
                is_sensitive=e.sensitive,
            )
            for e in entries
        ]
    return result


@handles(ApiKey.CREATE_TOPICS, 0, 7)
async def create_topics(ctx: RequestContext, request: CreateTopicsRequest) -> CreateTopicsResponse:
    seen: set[str] = set()
    results = []
    for topic in request.topics:
        if topic.name in seen:  # Kafka rejects every duplicate after the first
            results.append(
                CreatableTopicResult(
                    name=topic.name,
                    error_code=ErrorCode.INVALID_REQUEST,
                    error_message=f"Found multiple entries for topic {topic.name}",
                )
            )
            continue
        seen.add(topic.name)
        results.append(_create(ctx, topic, request.validate_only))
    return CreateTopicsResponse(topics=results)
