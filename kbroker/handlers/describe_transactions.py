"""DescribeTransactions (key 65), v0: the state of transactional ids (KIP-664).

Per id: its state's name (Kafka's: Empty, Ongoing, PrepareCommit, ...), producer id and epoch,
timeout, the open transaction's start time and partitions. An unknown id, or one being
expired, is TRANSACTIONAL_ID_NOT_FOUND; an empty id is INVALID_REQUEST.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.handlers import handles
from kbroker.txn.state import TransactionState
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.describe_transactions_request import DescribeTransactionsRequest
from protocol.messages.describe_transactions_response import (
    DescribeTransactionsResponse,
    TopicData,
)
from protocol.messages.describe_transactions_response import (
    TransactionState as DescribedState,
)

if TYPE_CHECKING:
    from kbroker.context import RequestContext


@handles(ApiKey.DESCRIBE_TRANSACTIONS, 0, 0)
async def describe_transactions(
    ctx: RequestContext, request: DescribeTransactionsRequest
) -> DescribeTransactionsResponse:
    return DescribeTransactionsResponse(
        transaction_states=[_describe(ctx, txn_id) for txn_id in request.transactional_ids]
    )


def _describe(ctx: RequestContext, txn_id: str) -> DescribedState:
    if not txn_id:
        return DescribedState(error_code=ErrorCode.INVALID_REQUEST, transactional_id=txn_id)
    meta = ctx.broker.txn.find(txn_id)
    if meta is None or meta.state == TransactionState.DEAD:
        return DescribedState(
            error_code=ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, transactional_id=txn_id
        )
    topics: dict[str, list[int]] = {}
    for topic, index in sorted(meta.partitions):
        topics.setdefault(topic, []).append(index)
    return DescribedState(
        transactional_id=txn_id,
        transaction_state=meta.state.state_name,
        transaction_timeout_ms=meta.txn_timeout_ms,
        transaction_start_time_ms=meta.txn_start_timestamp,
        producer_id=meta.producer_id,
        producer_epoch=meta.producer_epoch,
        topics=[TopicData(topic, indexes) for topic, indexes in topics.items()],
    )
