"""LeaveGroup (key 13), v0-5: members leave a classic group, which then rebalances.

v3+ removes several members in one request, each with its own error (KIP-345), including the
administrative removal of a static member by its instance id alone; v5 adds a reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from kbroker.groups import classic_ops
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.messages.leave_group_request import LeaveGroupRequest
from protocol.messages.leave_group_response import LeaveGroupResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.LEAVE_GROUP, 0, 5)
async def leave_group(ctx: RequestContext, request: LeaveGroupRequest) -> LeaveGroupResponse:
    version = ctx.api_version
    return cast(
        LeaveGroupResponse,
        await ctx.broker.groups.call(
            request.group_id,
            lambda shard, reply: classic_ops.leave_group(shard, request, version, reply),
        ),
    )
