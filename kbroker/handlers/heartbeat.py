"""Heartbeat (key 12), v0-4: keep a classic group member's session alive.

REBALANCE_IN_PROGRESS tells the member to rejoin; ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID and
FENCED_INSTANCE_ID (static members, v3+) tell it that it is no longer part of the generation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from kbroker.groups import classic_ops
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.messages.heartbeat_request import HeartbeatRequest
from protocol.messages.heartbeat_response import HeartbeatResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.HEARTBEAT, 0, 4)
async def heartbeat(ctx: RequestContext, request: HeartbeatRequest) -> HeartbeatResponse:
    return cast(
        HeartbeatResponse,
        await ctx.broker.groups.call(
            request.group_id,
            lambda shard, reply: classic_ops.heartbeat(shard, request, reply),
        ),
    )
