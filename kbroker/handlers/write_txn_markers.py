"""WriteTxnMarkers (key 27), v0-1: append COMMIT/ABORT markers for a transaction (KIP-98).

The transaction coordinator sends this to each partition leader once a transaction is decided.
Per marker and partition the broker appends a control batch through `Broker.write_txn_marker`
(which also settles pending transactional offsets on `__consumer_offsets`) and answers that
partition's error code: UNKNOWN_TOPIC_OR_PARTITION, INVALID_PRODUCER_EPOCH for a marker from an
older producer epoch, TRANSACTION_COORDINATOR_FENCED for a marker from an older coordinator
epoch, KAFKA_STORAGE_ERROR, as Kafka does. Markers are written in request order, so two markers
for one producer in one request are applied in that order. A single-process broker's own
coordinator calls `Broker.write_txn_marker` directly; this handler serves another broker's
coordinator and tools. Not v2: it adds the transaction version (KIP-890 part 2), whose
stricter epoch rule the marker path does not take yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kbroker.handlers import handles
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages.write_txn_markers_request import WritableTxnMarker, WriteTxnMarkersRequest
from protocol.messages.write_txn_markers_response import (
    WritableTxnMarkerPartitionResult,
    WritableTxnMarkerResult,
    WritableTxnMarkerTopicResult,
    WriteTxnMarkersResponse,
)

if TYPE_CHECKING:
    from kbroker.context import RequestContext


def _write(ctx: RequestContext, marker: WritableTxnMarker, topic: str, index: int) -> int:
    """The error code of writing `marker` to one partition."""
    try:
        ctx.broker.write_txn_marker(
            topic,
            index,
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch,
            marker.transaction_result,
        )
    except KafkaError as exc:
        return exc.code
    return ErrorCode.NONE


def _marker(ctx: RequestContext, marker: WritableTxnMarker) -> WritableTxnMarkerResult:
    topics = [
        WritableTxnMarkerTopicResult(
            name=t.name,
            partitions=[
                WritableTxnMarkerPartitionResult(
                    partition_index=index, error_code=_write(ctx, marker, t.name, index)
                )
                for index in t.partition_indexes
            ],
        )
        for t in marker.topics
    ]
    return WritableTxnMarkerResult(producer_id=marker.producer_id, topics=topics)


@handles(ApiKey.WRITE_TXN_MARKERS, 0, 1)
async def write_txn_markers(
    ctx: RequestContext, request: WriteTxnMarkersRequest
) -> WriteTxnMarkersResponse:
    return WriteTxnMarkersResponse(markers=[_marker(ctx, m) for m in request.markers])
