"""JoinGroup (key 11), v0-9: join a classic group and wait for the rebalance to complete.

The request is parked in the coordinator until the join phase ends (all members rejoined, or
the rebalance timeout), so the response may come seconds later; the connection serves nothing
else meanwhile, as in Kafka. Shapes: member id required from v4 (KIP-394), static membership
from v5 (KIP-345), protocol type in the response from v7, `reason` from v8 (KIP-800),
`skip_assignment` for a rejoining static leader from v9 (KIP-814). Rules: `kbroker/groups`; a
KIP-848 consumer group with members refuses classic members (INCONSISTENT_GROUP_PROTOCOL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from kbroker.groups import classic_ops, consumer_admin
from kbroker.groups.coordinator import GroupCoordinatorShard, Reply
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.messages.join_group_request import JoinGroupRequest
from protocol.messages.join_group_response import JoinGroupResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.JOIN_GROUP, 0, 9)
async def join_group(ctx: RequestContext, request: JoinGroupRequest) -> JoinGroupResponse:
    version = ctx.api_version
    client_id = ctx.client_id or ""
    host = ctx.client_host

    def join(shard: GroupCoordinatorShard, reply: Reply) -> None:
        if not consumer_admin.before_classic_join(shard, request.group_id, reply):
            classic_ops.join_group(shard, request, version, client_id, host, reply)

    response = cast(JoinGroupResponse, await ctx.broker.groups.call(request.group_id, join))
    if version < 7 and response.protocol_name is None:
        response.protocol_name = ""  # nullable only from v7
    return response
