"""AddPartitionsToTxn (key 24), v0-5: partitions join a producer's transaction (KIP-98).

v0-3 is the client's form: one transactional id, its topics, one error per partition. v4-5
(KIP-890 part 1) is the broker-to-coordinator form: a batch of transactions, each answered on
its own, and `verify_only` asks whether the partitions are already in the transaction without
adding them. A partition of a topic that does not exist fails the whole transaction's request
(UNKNOWN_TOPIC_OR_PARTITION for it, OPERATION_NOT_ATTEMPTED for the others), as in Kafka.
v0-1 clients get INVALID_PRODUCER_EPOCH where newer ones get PRODUCER_FENCED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.handlers import handles
from kbroker.txn.state import TopicPartition
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.add_partitions_to_txn_request import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnTransaction,
)
from protocol.messages.add_partitions_to_txn_response import (
    AddPartitionsToTxnPartitionResult,
    AddPartitionsToTxnResponse,
    AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
)

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.ADD_PARTITIONS_TO_TXN, 0, 5)
async def add_partitions_to_txn(
    ctx: RequestContext, request: AddPartitionsToTxnRequest
) -> AddPartitionsToTxnResponse:
    if ctx.api_version < 4:
        one = AddPartitionsToTxnTransaction(
            transactional_id=request.v3_and_below_transactional_id,
            producer_id=request.v3_and_below_producer_id,
            producer_epoch=request.v3_and_below_producer_epoch,
            topics=request.v3_and_below_topics,
        )
        result = await _transaction(ctx, one)
        return AddPartitionsToTxnResponse(results_by_topic_v3_and_below=result.topic_results)
    results = [await _transaction(ctx, txn) for txn in request.transactions]
    return AddPartitionsToTxnResponse(results_by_transaction=results)


async def _transaction(
    ctx: RequestContext, txn: AddPartitionsToTxnTransaction
) -> AddPartitionsToTxnResult:
    wanted = [(t.name, p) for t in txn.topics for p in t.partitions]
    if not txn.transactional_id:
        return _result(txn.transactional_id, dict.fromkeys(wanted, ErrorCode.INVALID_REQUEST))
    missing = {tp for tp in wanted if (tp[0], tp[1]) not in ctx.broker.partitions}
    if missing:
        errors = {
            tp: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            if tp in missing
            else ErrorCode.OPERATION_NOT_ATTEMPTED
            for tp in wanted
        }
        return _result(txn.transactional_id, errors)
    txn_id, pid, epoch = txn.transactional_id, txn.producer_id, txn.producer_epoch
    if txn.verify_only:
        if ctx.broker.txn.find(txn_id) is None:
            errors = dict.fromkeys(wanted, ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        else:
            shard = ctx.broker.txn.shard_for(txn_id)
            errors = shard.verify_partitions(txn_id, pid, epoch, wanted)
        return _result(txn_id, errors)
    if ctx.broker.txn.find(txn_id) is None:
        return _result(txn_id, dict.fromkeys(wanted, ErrorCode.INVALID_PRODUCER_ID_MAPPING))
    partitions = set(wanted)
    error = await ctx.broker.txn.call(
        txn_id, lambda shard, reply: shard.add_partitions(reply, txn_id, pid, epoch, partitions)
    )
    assert isinstance(error, ErrorCode)
    if ctx.api_version < 2 and error == ErrorCode.PRODUCER_FENCED:
        error = ErrorCode.INVALID_PRODUCER_EPOCH
    return _result(txn_id, dict.fromkeys(wanted, error))


def _result(txn_id: str, errors: dict[TopicPartition, ErrorCode]) -> AddPartitionsToTxnResult:
    topics: dict[str, list[AddPartitionsToTxnPartitionResult]] = {}
    for (topic, index), error in errors.items():
        topics.setdefault(topic, []).append(AddPartitionsToTxnPartitionResult(index, error))
    return AddPartitionsToTxnResult(
        transactional_id=txn_id,
        topic_results=[AddPartitionsToTxnTopicResult(name, rs) for name, rs in topics.items()],
    )
