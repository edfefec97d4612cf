"""SyncGroup (key 14), v0-5: the leader sends the assignment, every member receives its share.

A follower's request is parked until the leader's arrives and the assignment is written to
`__consumer_offsets`. v5 carries the protocol type and name, checked against the group's
(INCONSISTENT_GROUP_PROTOCOL, KIP-559). Rules: `kbroker/groups/classic_ops.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from kbroker.groups import classic_ops
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.messages.sync_group_request import SyncGroupRequest
from protocol.messages.sync_group_response import SyncGroupResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.SYNC_GROUP, 0, 5)
async def sync_group(ctx: RequestContext, request: SyncGroupRequest) -> SyncGroupResponse:
    return cast(
        SyncGroupResponse,
        await ctx.broker.groups.call(
            request.group_id,
            lambda shard, reply: classic_ops.sync_group(shard, request, reply),
        ),
    )
