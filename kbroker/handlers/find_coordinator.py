"""FindCoordinator (key 10), v0-6: which broker coordinates a group (or a transactional id).

Always this broker on a single node. The coordinator of a group is the leader of its
`__consumer_offsets` partition, and that of a transactional id (key type 1) the leader of its
`__transaction_state` partition, so the first lookup creates that topic (Kafka does the same).
v4+ batches several keys in one request (KIP-699). Share groups (key type 2) are not served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.find_coordinator_response import Coordinator, FindCoordinatorResponse

if TYPE_CHECKING:
    from kbroker.context import RequestContext

GROUP_KEY_TYPE = 0
TRANSACTION_KEY_TYPE = 1


def _no_coordinator(key: str, code: ErrorCode, message: str) -> Coordinator:
    return Coordinator(
        key=key, node_id=-1, host="", port=-1, error_code=code, error_message=message
    )


def _lookup(ctx: RequestContext, key: str, key_type: int) -> Coordinator:
    broker = ctx.broker
    if key_type not in (GROUP_KEY_TYPE, TRANSACTION_KEY_TYPE):
        return _no_coordinator(key, ErrorCode.INVALID_REQUEST, f"Unsupported key type {key_type}")
    try:
        if key_type == TRANSACTION_KEY_TYPE:
            broker.txn.ensure_topic()
        else:
            broker.groups.ensure_topic()
    except KafkaError as exc:  # e.g. a full disk: the client retries, as with Kafka
        return _no_coordinator(key, ErrorCode.COORDINATOR_NOT_AVAILABLE, str(exc))
    host, port = broker.advertised
    return Coordinator(key=key, node_id=broker.node_id, host=host, port=port)


@handles(ApiKey.FIND_COORDINATOR, 0, 6)
async def find_coordinator(
    ctx: RequestContext, request: FindCoordinatorRequest
) -> FindCoordinatorResponse:
    if ctx.api_version >= 4:
        found = [_lookup(ctx, key, request.key_type) for key in request.coordinator_keys]
        return FindCoordinatorResponse(coordinators=found)
    one = _lookup(ctx, request.key, request.key_type)
    return FindCoordinatorResponse(
        error_code=one.error_code,
        error_message=one.error_message,
        node_id=one.node_id,
        host=one.host,
        port=one.port,
    )
