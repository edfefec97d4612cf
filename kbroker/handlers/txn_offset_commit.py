"""TxnOffsetCommit (key 28), v0-4: a transactional producer commits a group's offsets (KIP-98).

The offsets are written to the group's `__consumer_offsets` partition as one transactional
batch of the request's producer id and epoch, and stay invisible to OffsetFetch until the
transaction's marker commits them (or aborts them); see `kbroker/groups/txn_offsets.py`.
v2 adds each partition's leader epoch (KIP-320), v3 the group's generation, member id and
group instance id so that the group fences zombie producers (KIP-447), and is flexible.
Not v5: it is transaction version 2 (KIP-890 part 2, no AddOffsetsToTxn before it), which the
broker does not advertise.

Per partition: UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist (as Kafka). An
empty group id is INVALID_GROUP_ID; a request with no producer id (-1) cannot belong to a
transaction and gets INVALID_PRODUCER_ID_MAPPING (Kafka's transaction verification refuses it
there). v0-1 clients are told COORDINATOR_NOT_AVAILABLE instead of COORDINATOR_LOAD_IN_PROGRESS,
which producers older than 2.0 did not handle (KAFKA-7296).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from kbroker.groups import offsets, txn_offsets
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.txn_offset_commit_request import TxnOffsetCommitRequest
from protocol.messages.txn_offset_commit_response import (
    TxnOffsetCommitResponse,
    TxnOffsetCommitResponsePartition,
    TxnOffsetCommitResponseTopic,
)

if TYPE_CHECKING:
    from kbroker.context import RequestContext


def _response(results: offsets.CommitResults, version: int) -> TxnOffsetCommitResponse:
    topics: dict[str, TxnOffsetCommitResponseTopic] = {}
    for topic, partition, code in results:
        told = code
        if version < 2 and code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
            told = ErrorCode.COORDINATOR_NOT_AVAILABLE
        entry = topics.setdefault(topic, TxnOffsetCommitResponseTopic(name=topic))
        entry.partitions.append(TxnOffsetCommitResponsePartition(partition, told))
    return TxnOffsetCommitResponse(topics=list(topics.values()))


def _all(request: TxnOffsetCommitRequest, code: ErrorCode) -> offsets.CommitResults:
    return [(t.name, p.partition_index, code) for t in request.topics for p in t.partitions]


@handles(ApiKey.TXN_OFFSET_COMMIT, 0, 4)
async def txn_offset_commit(
    ctx: RequestContext, request: TxnOffsetCommitRequest
) -> TxnOffsetCommitResponse:
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
        return _response(unknown, version)
    if not request.group_id:
        return _response(_all(request, ErrorCode.INVALID_GROUP_ID) + unknown, version)
    if request.producer_id < 0:
        return _response(_all(request, ErrorCode.INVALID_PRODUCER_ID_MAPPING) + unknown, version)
    done: asyncio.Future[offsets.CommitResults] = asyncio.get_running_loop().create_future()

    def respond(results: offsets.CommitResults) -> None:
        if not done.done():
            done.set_result(results)

    ctx.broker.groups.run(
        request.group_id,
        lambda shard: txn_offsets.commit_transactional_offsets(shard, request, version, respond),
    )
    return _response(await done + unknown, version)
