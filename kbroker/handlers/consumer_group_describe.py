"""ConsumerGroupDescribe (key 69), v0-1: state, epochs and members of KIP-848 consumer groups.

Per member: its epoch, subscription, current assignment (partitions being revoked included:
the member answers for them until it has let them go) and target assignment, by topic id and
name; v1 adds the member type (1: the consumer protocol). A classic group, or an unknown one,
is GROUP_ID_NOT_FOUND, which tells admin clients to fall back to DescribeGroups. Without an
authorizer `include_authorized_operations` is answered with the int32 minimum.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from kbroker.groups import consumer_admin
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.messages.consumer_group_describe_request import ConsumerGroupDescribeRequest
from protocol.messages.consumer_group_describe_response import ConsumerGroupDescribeResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.CONSUMER_GROUP_DESCRIBE, 0, 1)
async def consumer_group_describe(
    ctx: RequestContext, request: ConsumerGroupDescribeRequest
) -> ConsumerGroupDescribeResponse:
    described = [
        ctx.broker.groups.run(group_id, partial(consumer_admin.describe, group_id=group_id))
        for group_id in request.group_ids
    ]
    return ConsumerGroupDescribeResponse(groups=described)
