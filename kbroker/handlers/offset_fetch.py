"""OffsetFetch (key 9), v1-9: a group's committed offsets.

A partition with no committed offset answers -1 with empty metadata (no error); a null topic
list (v2+) means every partition the group committed. v8+ asks for several groups at once
(KIP-709). Offsets a transaction committed (TxnOffsetCommit) are not returned until its
marker commits them; v7+'s `require_stable` (KIP-447) asks to be told about them: a partition
with a pending transactional offset answers UNSTABLE_OFFSET_COMMIT, which clients retry, and
without it the last committed offset is returned. v9 carries the member id and epoch of a
KIP-848 group's member: UNKNOWN_MEMBER_ID or STALE_MEMBER_EPOCH unless it is current. Not v10
(topics by id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.groups import consumer_admin, offsets
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.offset_commit_value import OffsetCommitValue
from protocol.messages.offset_fetch_request import OffsetFetchRequest, OffsetFetchRequestGroup
from protocol.messages.offset_fetch_response import (
    OffsetFetchResponse,
    OffsetFetchResponseGroup,
    OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
)

if TYPE_CHECKING:
    from kbroker.context import RequestContext

Found = list[tuple[str, int, OffsetCommitValue | None, ErrorCode]]


def _fetch(
    ctx: RequestContext, group_id: str, wanted: list[tuple[str, int]] | None, stable: bool
) -> Found:
    if stable:
        return ctx.broker.groups.run(
            group_id, lambda shard: offsets.fetch_stable_offsets(shard, group_id, wanted)
        )
    found = ctx.broker.groups.run(
        group_id, lambda shard: offsets.fetch_offsets(shard, group_id, wanted)
    )
    return [(t, p, value, ErrorCode.NONE) for t, p, value in found]


def _by_topic(found: Found) -> dict[str, list[OffsetFetchResponsePartitions]]:
    topics: dict[str, list[OffsetFetchResponsePartitions]] = {}
    for topic, partition, value, error in found:
        topics.setdefault(topic, []).append(
            OffsetFetchResponsePartitions(
                partition_index=partition,
                committed_offset=-1 if value is None else value.offset,
                committed_leader_epoch=-1 if value is None else value.leader_epoch,
                metadata="" if value is None else value.metadata,
                error_code=error,
            )
        )
    return topics


def _member_error(ctx: RequestContext, group: OffsetFetchRequestGroup) -> ErrorCode:
    """v9 names the member of a KIP-848 group, which must be current (Kafka's rule)."""
    group_id, member_id, epoch = group.group_id, group.member_id, group.member_epoch
    return ctx.broker.groups.run(
        group_id, lambda shard: consumer_admin.offset_fetch_error(shard, group_id, member_id, epoch)
    )


@handles(ApiKey.OFFSET_FETCH, 1, 9)
async def offset_fetch(ctx: RequestContext, request: OffsetFetchRequest) -> OffsetFetchResponse:
    stable = ctx.api_version >= 7 and request.require_stable
    if ctx.api_version >= 8:
        groups = []
        for group in request.groups:
            error = _member_error(ctx, group) if ctx.api_version >= 9 else ErrorCode.NONE
            if error != ErrorCode.NONE:
                groups.append(OffsetFetchResponseGroup(group_id=group.group_id, error_code=error))
                continue
            wanted = (
                None
                if group.topics is None
                else [(t.name, p) for t in group.topics for p in t.partition_indexes]
            )
            topics = _by_topic(_fetch(ctx, group.group_id, wanted, stable))
            groups.append(
                OffsetFetchResponseGroup(
                    group_id=group.group_id,
                    topics=[
                        OffsetFetchResponseTopics(name=n, partitions=p) for n, p in topics.items()
                    ],
                )
            )
        return OffsetFetchResponse(groups=groups)
    wanted_v1 = (
        None
        if request.topics is None
        else [(t.name, p) for t in request.topics for p in t.partition_indexes]
    )
    topics = _by_topic(_fetch(ctx, request.group_id, wanted_v1, stable))
    return OffsetFetchResponse(
        topics=[
            OffsetFetchResponseTopic(
                name=name,
                partitions=[
                    OffsetFetchResponsePartition(
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.metadata,
                        p.error_code,
                    )
                    for p in partitions
                ],
            )
            for name, partitions in topics.items()
        ]
    )
