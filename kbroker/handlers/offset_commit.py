"""OffsetCommit (key 8), v2-9: store a group's consumed positions in `__consumer_offsets`.

Per partition: UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist (as Kafka),
OFFSET_METADATA_TOO_LARGE for metadata over `offset.metadata.max.bytes`; otherwise the group's
rules apply to the whole request (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
REBALANCE_IN_PROGRESS; see `kbroker/groups/offsets.py`). The response is sent once the records
are appended. v1 may carry each partition's commit time (sarama 1.22 still sends v1, which
Kafka 3.9 serves); v2-4 a retention time; v6 the leader epoch (KIP-320); v7 the group instance
id (KIP-345); v8 is flexible. Not v0 (offsets in ZooKeeper; removed in Kafka 4), nor v10
(topic ids, KIP-848's offset commit by id), which kbroker's topic-id lookups do not serve yet.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from kbroker.groups import offsets
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.offset_commit_request import OffsetCommitRequest
from protocol.messages.offset_commit_response import (
    OffsetCommitResponse,
    OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
)

if TYPE_CHECKING:
    from kbroker.context import RequestContext


def _response(results: offsets.CommitResults) -> OffsetCommitResponse:
    topics: dict[str, OffsetCommitResponseTopic] = {}
    for topic, partition, code in results:
        entry = topics.setdefault(topic, OffsetCommitResponseTopic(name=topic))
        entry.partitions.append(OffsetCommitResponsePartition(partition, code))
    return OffsetCommitResponse(topics=list(topics.values()))


@handles(ApiKey.OFFSET_COMMIT, 1, 9)
async def offset_commit(ctx: RequestContext, request: OffsetCommitRequest) -> OffsetCommitResponse:
    version = ctx.api_version
    unknown: offsets.CommitResults = []
    for topic in request.topics:
        known = []
        for p in topic.partitions:
            if (topic.name, p.partition_index) in ctx.broker.partitions:
                known.append(p)
            else:
                unknown.append(
                    (topic.name, p.partition_index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
                )
        topic.partitions = known
    request.topics = [t for t in request.topics if t.partitions]
    if not request.topics:
        return _response(unknown)
    done: asyncio.Future[offsets.CommitResults] = asyncio.get_running_loop().create_future()

    def respond(results: offsets.CommitResults) -> None:
        if not done.done():
            done.set_result(results)

    ctx.broker.groups.run(
        request.group_id,
        lambda shard: offsets.commit_offsets(shard, request, version, respond),
    )
    return _response(await done + unknown)
