"""ConsumerGroupHeartbeat (key 68), v0-1: join, stay in and leave a KIP-848 consumer group.

The coordinator assigns partitions itself (`uniform` or `range`, `group.consumer.assignors`) and
hands them out through this heartbeat, which members send every
`group.consumer.heartbeat.interval.ms` with the partitions they still own; member epoch 0 joins,
-1 leaves, -2 is a static member's temporary leave. v1 (KIP-848's regex subscriptions) adds
`subscribed_topic_regex` and requires the member to choose its own member id (KIP-1082).
Rules and errors: `kbroker/groups/consumer_ops.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from kbroker.groups import consumer_ops
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.messages.consumer_group_heartbeat_request import ConsumerGroupHeartbeatRequest
from protocol.messages.consumer_group_heartbeat_response import ConsumerGroupHeartbeatResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, 1)
async def consumer_group_heartbeat(
    ctx: RequestContext, request: ConsumerGroupHeartbeatRequest
) -> ConsumerGroupHeartbeatResponse:
    version = ctx.api_version
    client_id = ctx.client_id or ""
    host = ctx.client_host
    return cast(
        ConsumerGroupHeartbeatResponse,
        await ctx.broker.groups.call(
            request.group_id,
            lambda shard, reply: consumer_ops.heartbeat(
                shard, request, version, client_id, host, reply
            ),
        ),
    )
