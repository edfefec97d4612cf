"""EndTxn (key 26), v0-4: commit or abort a producer's transaction (KIP-98).

The coordinator writes PREPARE_COMMIT/PREPARE_ABORT to `__transaction_state` and answers once
that record is appended (the outcome is then decided; a restart finishes it), then writes the
markers and the COMPLETE record. A retried EndTxn for a transaction that already ended the same
way answers NONE (or CONCURRENT_TRANSACTIONS while its markers are still being written); the
opposite outcome is INVALID_TXN_STATE. v5 is transaction version 2 (KIP-890 part 2: an epoch
bump per transaction) and is not served, nor is the `transaction.version` feature advertised.
v0-1 clients get INVALID_PRODUCER_EPOCH where newer ones get PRODUCER_FENCED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.end_txn_request import EndTxnRequest
from protocol.messages.end_txn_response import EndTxnResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.END_TXN, 0, 4)
async def end_txn(ctx: RequestContext, request: EndTxnRequest) -> EndTxnResponse:
    txn_id, pid, epoch = request.transactional_id, request.producer_id, request.producer_epoch
    commit = request.committed
    if not txn_id:
        return EndTxnResponse(error_code=ErrorCode.INVALID_REQUEST)
    if ctx.broker.txn.find(txn_id) is None:
        return EndTxnResponse(error_code=ErrorCode.INVALID_PRODUCER_ID_MAPPING)
    error = await ctx.broker.txn.call(
        txn_id, lambda shard, reply: shard.end_txn(reply, txn_id, pid, epoch, commit)
    )
    assert isinstance(error, ErrorCode)
    if ctx.api_version < 2 and error == ErrorCode.PRODUCER_FENCED:
        error = ErrorCode.INVALID_PRODUCER_EPOCH
    return EndTxnResponse(error_code=error)
