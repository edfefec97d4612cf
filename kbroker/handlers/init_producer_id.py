"""InitProducerId (key 22), v0-5: producer ids for idempotent and transactional producers
(KIP-98, KIP-360).

An idempotent producer (no transactional id) gets a fresh producer id with epoch 0 on every
call, including a KIP-360 re-initialisation that names its current id and epoch (Kafka's
TransactionCoordinator does the same for non-transactional producers). A transactional id goes
to the transaction coordinator (kbroker/txn/), which keeps its producer id, bumps its epoch,
fences a previous incarnation and (KIP-360) lets a producer recover with its current id and
epoch. Versions below 4 get INVALID_PRODUCER_EPOCH where Kafka would say PRODUCER_FENCED, as
Kafka answers them. v6 (KIP-939 two-phase commit) is unstable in Kafka 4.3 and not served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.handlers import handles
from kbroker.txn.coordinator import InitResult
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.init_producer_id_response import InitProducerIdResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1


@handles(ApiKey.INIT_PRODUCER_ID, 0, 5)
async def init_producer_id(
    ctx: RequestContext, request: InitProducerIdRequest
) -> InitProducerIdResponse:
    pid, epoch = request.producer_id, request.producer_epoch
    if (pid == NO_PRODUCER_ID) != (epoch == NO_PRODUCER_EPOCH):
        return _error(ErrorCode.INVALID_REQUEST)
    txn_id = request.transactional_id
    if txn_id is None:
        return InitProducerIdResponse(
            producer_id=ctx.broker.producer_ids.next_id(), producer_epoch=0
        )
    if not txn_id:
        return _error(ErrorCode.INVALID_REQUEST)
    expected = None if pid == NO_PRODUCER_ID else (pid, epoch)
    timeout = request.transaction_timeout_ms
    result = await ctx.broker.txn.call(
        txn_id, lambda shard, reply: shard.init_producer_id(reply, txn_id, timeout, expected)
    )
    assert isinstance(result, InitResult)
    error = result.error
    if ctx.api_version < 4 and error == ErrorCode.PRODUCER_FENCED:
        error = ErrorCode.INVALID_PRODUCER_EPOCH
    return InitProducerIdResponse(
        error_code=error, producer_id=result.producer_id, producer_epoch=result.producer_epoch
    )


def _error(code: ErrorCode) -> InitProducerIdResponse:
    return InitProducerIdResponse(
        error_code=code, producer_id=NO_PRODUCER_ID, producer_epoch=NO_PRODUCER_EPOCH
    )
