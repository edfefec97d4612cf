"""ListTransactions (key 66), v0-2: the transactional ids this coordinator holds (KIP-664).

Filters, all optional and combined: states (by Kafka's names; unknown names are echoed back in
`unknown_state_filters`), producer ids, v1 (KIP-994) `duration_filter`, only transactions
running longer than that many ms, and v2 (KIP-1152) `transactional_id_pattern`, a regular
expression the whole id must match (INVALID_REGULAR_EXPRESSION if it does not compile). Ids
being expired (Dead) are never listed.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from kbroker.handlers import handles
from kbroker.txn.state import TransactionMetadata, TransactionState
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.list_transactions_request import ListTransactionsRequest
from protocol.messages.list_transactions_response import (
    ListTransactionsResponse,
)
from protocol.messages.list_transactions_response import (
    TransactionState as ListedState,
)

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.LIST_TRANSACTIONS, 0, 2)
async def list_transactions(
    ctx: RequestContext, request: ListTransactionsRequest
) -> ListTransactionsResponse:
    states = {TransactionState.from_name(name) for name in request.state_filters}
    unknown = [name for name in request.state_filters if TransactionState.from_name(name) is None]
    pattern: re.Pattern[str] | None = None
    if request.transactional_id_pattern:
        try:
            pattern = re.compile(request.transactional_id_pattern)
        except re.error:
            return ListTransactionsResponse(error_code=ErrorCode.INVALID_REGULAR_EXPRESSION)
    producer_ids = set(request.producer_id_filters)
    now = time.time_ns() // 1_000_000

    def included(meta: TransactionMetadata) -> bool:
        if meta.state == TransactionState.DEAD:
            return False
        if producer_ids and meta.producer_id not in producer_ids:
            return False
        if request.state_filters and meta.state not in states:
            return False
        if (
            request.duration_filter >= 0
            and now - meta.txn_start_timestamp <= request.duration_filter
        ):
            return False
        return pattern is None or pattern.fullmatch(meta.transactional_id) is not None

    listed = [
        ListedState(meta.transactional_id, meta.producer_id, meta.state.state_name)
        for meta in ctx.broker.txn.all_transactions()
        if included(meta)
    ]
    return ListTransactionsResponse(unknown_state_filters=unknown, transaction_states=listed)
