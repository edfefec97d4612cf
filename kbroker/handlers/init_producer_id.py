"""InitProducerId (key 22), v0-5: producer ids for idempotent producers (KIP-98, KIP-360).

An idempotent producer (no transactional id) gets a fresh producer id with epoch 0 on every
call, including a KIP-360 re-initialisation that names its current id and epoch (Kafka's
TransactionCoordinator does the same for non-transactional producers). Ids come from
kbroker/producer_ids.py and are never reused across restarts. Transactional ids are not served
yet (the transaction coordinator is a later piece): clients reach this only after FindCoordinator
for a transaction, which is not advertised, so a request with one gets INVALID_REQUEST.
v6 (KIP-939 two-phase commit) is unstable in Kafka 4.3 and not served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.init_producer_id_response import InitProducerIdResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.INIT_PRODUCER_ID, 0, 5)
async def init_producer_id(
    ctx: RequestContext, request: InitProducerIdRequest
) -> InitProducerIdResponse:
    if request.transactional_id is not None:
        return InitProducerIdResponse(error_code=ErrorCode.INVALID_REQUEST)
    return InitProducerIdResponse(producer_id=ctx.broker.producer_ids.next_id(), producer_epoch=0)
