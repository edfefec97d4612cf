"""Metadata (key 3), v0-12: brokers, and topics with their partitions, leaders and epochs.

v0: an empty topic list means all topics; v1+: null means all, empty means none. Topics named
in the request that do not exist are created when `auto.create.topics.enable` is true and the
request allows it (always before v4, `allow_auto_topic_creation` from v4), with
`num.partitions`; on a single node the new topic is ready at once, so its metadata is returned
in the same response. v10+ carry topic ids; v12 may ask for topics by id alone. Not served above
12, so that no client switches to topic-id-only Produce/Fetch before those resolve ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.admin import CLUSTER_OPERATIONS, TOPIC_OPERATIONS
from kbroker.handlers import handles
from kbroker.topic_store import TopicInfo
from kbroker.topics_naming import is_internal
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages.metadata_request import MetadataRequest
from protocol.messages.metadata_response import (
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)

if TYPE_CHECKING:
    from kbroker.broker import Broker
    from kbroker.context import RequestContext


NOT_REQUESTED = -(2**31)  # authorized operations the client did not ask for


def topic_metadata(broker: Broker, info: TopicInfo, operations: int) -> MetadataResponseTopic:
    node = broker.node_id
    partitions = [
        MetadataResponsePartition(
            error_code=ErrorCode.NONE,
            partition_index=index,
            leader_id=node,
            leader_epoch=broker.partition(info.name, index).leader_epoch,
            replica_nodes=[node],
            isr_nodes=[node],
            offline_replicas=[],
        )
        for index in range(info.partitions)
    ]
    return MetadataResponseTopic(
        error_code=ErrorCode.NONE,
        name=info.name,
        topic_id=info.topic_id,
        is_internal=is_internal(info.name),
        partitions=partitions,
        topic_authorized_operations=operations,
    )


def _requested(broker: Broker, request: MetadataRequest, version: int) -> list[str] | None:
    """Topic names asked for; None for all topics."""
    if request.topics is None or (version == 0 and not request.topics):
        return None
    names = []
    for topic in request.topics:
        if topic.name is None:  # v12+: by id
            info = broker.topics.by_id.get(topic.topic_id)
            names.append(info.name if info else f"\0{topic.topic_id}")
        else:
            names.append(topic.name)
    return names


def _lookup(broker: Broker, name: str, auto_create: bool, ops: int) -> MetadataResponseTopic:
    if name.startswith("\0"):
        return MetadataResponseTopic(error_code=ErrorCode.UNKNOWN_TOPIC_ID, name=None)
    info = broker.topics.topics.get(name)
    if info is None and auto_create:
        try:
            info = broker.auto_create_topic(name)
        except KafkaError as exc:
            return MetadataResponseTopic(error_code=exc.code, name=name)
    if info is None:
        return MetadataResponseTopic(error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name=name)
    return topic_metadata(broker, info, ops)


@handles(ApiKey.METADATA, 0, 12)
async def metadata(ctx: RequestContext, request: MetadataRequest) -> MetadataResponse:
    broker = ctx.broker
    version = ctx.api_version
    names = _requested(broker, request, version)
    # no ACLs: every operation is allowed, reported only when asked for (v8+)
    ops = TOPIC_OPERATIONS if request.include_topic_authorized_operations else NOT_REQUESTED
    if names is None:
        topics = [topic_metadata(broker, info, ops) for info in broker.topics.topics.values()]
    else:
        allowed = version < 4 or request.allow_auto_topic_creation
        auto_create = allowed and bool(broker.config.get("auto.create.topics.enable"))
        topics = [_lookup(broker, name, auto_create, ops) for name in names]
    host, port = broker.advertised
    cluster_ops = request.include_cluster_authorized_operations
    return MetadataResponse(
        brokers=[MetadataResponseBroker(node_id=broker.node_id, host=host, port=port, rack=None)],
        cluster_id=broker.cluster_id,
        controller_id=broker.node_id,
        topics=topics,
        cluster_authorized_operations=CLUSTER_OPERATIONS if cluster_ops else NOT_REQUESTED,
    )
