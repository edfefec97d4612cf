"""AddOffsetsToTxn (key 25), v0-4: a consumer group's offsets join a producer's transaction.

Kafka adds the group's `__consumer_offsets` partition (the one that coordinates the group) to
the transaction, so that EndTxn writes a marker there too and the offsets the producer then
commits with TxnOffsetCommit become visible (or are dropped) with the transaction. The topic
is created if the group coordinator has not yet. v0-1 clients get INVALID_PRODUCER_EPOCH where
newer ones get PRODUCER_FENCED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.coordinator_runtime import partition_for
from kbroker.groups.runtime import GROUP_METADATA_TOPIC
from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.add_offsets_to_txn_request import AddOffsetsToTxnRequest
from protocol.messages.add_offsets_to_txn_response import AddOffsetsToTxnResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.ADD_OFFSETS_TO_TXN, 0, 4)
async def add_offsets_to_txn(
    ctx: RequestContext, request: AddOffsetsToTxnRequest
) -> AddOffsetsToTxnResponse:
    txn_id, pid, epoch = request.transactional_id, request.producer_id, request.producer_epoch
    if not txn_id:
        return AddOffsetsToTxnResponse(error_code=ErrorCode.INVALID_REQUEST)
    groups = ctx.broker.groups
    groups.ensure_topic()
    partitions = {(GROUP_METADATA_TOPIC, partition_for(request.group_id, groups.num_partitions))}
    error = await ctx.broker.txn.call(
        txn_id, lambda shard, reply: shard.add_partitions(reply, txn_id, pid, epoch, partitions)
    )
    assert isinstance(error, ErrorCode)
    if ctx.api_version < 2 and error == ErrorCode.PRODUCER_FENCED:
        error = ErrorCode.INVALID_PRODUCER_EPOCH
    return AddOffsetsToTxnResponse(error_code=error)
