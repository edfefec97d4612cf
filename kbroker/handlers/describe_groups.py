"""DescribeGroups (key 15), v0-6: state, protocol and members of classic groups.

A KIP-848 consumer group is not a classic group: as in Kafka it is described like an unknown
one (clients ask ConsumerGroupDescribe first, and fall back here for classic groups).

Members' metadata and assignments are reported only for a Stable group (before that they are
not settled), as Kafka does. An unknown group is "Dead": with GROUP_ID_NOT_FOUND from v6
(KIP-1043), with no error before. Without an authorizer `include_authorized_operations` is
answered with the int32 minimum ("not requested").
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from kbroker.groups import group_admin
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.messages.describe_groups_request import DescribeGroupsRequest
from protocol.messages.describe_groups_response import DescribeGroupsResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.DESCRIBE_GROUPS, 0, 6)
async def describe_groups(
    ctx: RequestContext, request: DescribeGroupsRequest
) -> DescribeGroupsResponse:
    version = ctx.api_version
    described = [
        ctx.broker.groups.run(
            group_id, partial(group_admin.describe_group, group_id=group_id, version=version)
        )
        for group_id in request.groups
    ]
    return DescribeGroupsResponse(groups=described)
