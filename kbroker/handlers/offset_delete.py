"""OffsetDelete (key 47), v0: delete a group's committed offsets for some partitions (KIP-496).

GROUP_ID_NOT_FOUND for an unknown group; GROUP_SUBSCRIBED_TO_TOPIC for a partition of a topic
the (non-empty) group's members subscribe to; NON_EMPTY_GROUP when the group is active and its
subscriptions cannot be read (not the consumer protocol).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.groups import offsets
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.offset_delete_request import OffsetDeleteRequest
from protocol.messages.offset_delete_response import (
    OffsetDeleteResponse,
    OffsetDeleteResponsePartition,
    OffsetDeleteResponseTopic,
)

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.OFFSET_DELETE, 0, 0)
async def offset_delete(ctx: RequestContext, request: OffsetDeleteRequest) -> OffsetDeleteResponse:
    wanted = [(t.name, p.partition_index) for t in request.topics for p in t.partitions]
    response = OffsetDeleteResponse()

    def reply(code: ErrorCode, results: list[tuple[str, int, ErrorCode]]) -> None:
        response.error_code = code
        topics: dict[str, OffsetDeleteResponseTopic] = {}
        for topic, partition, error in results:
            entry = topics.setdefault(topic, OffsetDeleteResponseTopic(name=topic))
            entry.partitions.append(OffsetDeleteResponsePartition(partition, error))
        response.topics = list(topics.values())

    ctx.broker.groups.run(
        request.group_id,
        lambda shard: offsets.delete_offsets(shard, request.group_id, wanted, reply),
    )
    return response
