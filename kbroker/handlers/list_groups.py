"""ListGroups (key 16), v0-5: every group this broker coordinates.

v4 filters by state (KIP-518), v5 by type (KIP-848: "classic", "consumer"); filters compare
case-insensitively and an empty filter matches all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.groups import group_admin
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.messages.list_groups_request import ListGroupsRequest
from protocol.messages.list_groups_response import ListedGroup, ListGroupsResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.LIST_GROUPS, 0, 5)
async def list_groups(ctx: RequestContext, request: ListGroupsRequest) -> ListGroupsResponse:
    states = {s.lower() for s in request.states_filter}
    types = {t.lower() for t in request.types_filter}
    listed = []
    for shard in ctx.broker.groups.all_shards():
        for group_id, protocol_type, state, group_type in group_admin.list_groups(
            shard, states, types
        ):
            listed.append(ListedGroup(group_id, protocol_type, state, group_type))
    return ListGroupsResponse(groups=sorted(listed, key=lambda g: g.group_id))
