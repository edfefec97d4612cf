"""DeleteGroups (key 42), v0-2: delete empty groups and their committed offsets.

Per group: GROUP_ID_NOT_FOUND if unknown, NON_EMPTY_GROUP while it has members; otherwise
tombstones for its offsets and its metadata are written to `__consumer_offsets`, and the group's
result is known once they are appended (a failed append keeps the group: NOT_COORDINATOR,
COORDINATOR_NOT_AVAILABLE, ... as Kafka maps append errors).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING

from kbroker.groups import group_admin
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.delete_groups_request import DeleteGroupsRequest
from protocol.messages.delete_groups_response import DeletableGroupResult, DeleteGroupsResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.DELETE_GROUPS, 0, 2)
async def delete_groups(ctx: RequestContext, request: DeleteGroupsRequest) -> DeleteGroupsResponse:
    results = []
    for group_id in request.groups_names:
        done: asyncio.Future[ErrorCode] = asyncio.get_running_loop().create_future()
        ctx.broker.groups.run(
            group_id, partial(group_admin.delete_group, group_id=group_id, done=done.set_result)
        )
        results.append(DeletableGroupResult(group_id, await done))
    return DeleteGroupsResponse(results=results)
