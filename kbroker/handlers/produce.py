"""Produce (key 0), v0-11: append record batches as received (magic 2).

Durability: page cache by default, as Kafka; on topics with `kbroker.flush.before.ack=true` the
response waits until the appended offsets are fsynced (a group commit on the storage thread:
concurrent producers share one fsync round); a failed fsync answers KAFKA_STORAGE_ERROR.

Per partition: validate the batch headers (CRC-32C, lengths, offset deltas, timestamps) without
decompressing, check idempotent and transactional producer state (KIP-98: duplicates, fenced
epochs, sequence gaps, INVALID_TXN_STATE for a non-transactional batch mid-transaction), append,
answer with the base offset. `verify_before_append` is the hook for KIP-890 verification.
Errors are per partition (CORRUPT_MESSAGE,
INVALID_RECORD, MESSAGE_TOO_LARGE, UNKNOWN_TOPIC_OR_PARTITION, KAFKA_STORAGE_ERROR, ...). acks
must be -1, 0 or 1 (else INVALID_REQUIRED_ACKS); acks=0 gets no response at all, and a failed
acks=0 produce closes the connection so the client notices (Kafka does the same). On a single
node the high watermark follows the append, so acks=all completes at once. Not above v11: v12
is transaction version 2 (KIP-890) and v13 addresses topics by id.

v0-2 (clients before Kafka 0.11) send magic 0/1 message sets: each partition's set is checked
(CRC-32 per message) and up-converted into one magic-2 batch, as Kafka 0.11-3.x did with the
0.11+ message format; that costs a decode and an encode, off the v3+ path. Kafka 4.0 removed
Produce v0-2 (KIP-896); they are served here for very old clients only.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from kbroker.handlers import handles
from kbroker.network import CloseConnection
from protocol import legacy
from protocol import records as records_module
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages.produce_request import PartitionProduceData, ProduceRequest
from protocol.messages.produce_response import (
    PartitionProduceResponse,
    ProduceResponse,
    TopicProduceResponse,
)
from protocol.records import CorruptRecordError, InvalidRecordError

if TYPE_CHECKING:
    from kbroker.broker import Broker
    from kbroker.context import RequestContext
    from kbroker.partition import Partition

_Sync = tuple["asyncio.Future[int]", int]  # (flushed-up-to future, partition index)
LEGACY_MAX_VERSION = 2  # Produce v0-2 carry magic 0/1 message sets


def _up_convert(message_set: memoryview) -> memoryview:
    """A v0-2 message set as one writable magic-2 batch (KafkaError with Kafka's codes)."""
    try:
        batches = legacy.up_convert(message_set)
    except legacy.UnsupportedCompressionTypeError as exc:
        raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, str(exc)) from None
    except InvalidRecordError as exc:
        raise KafkaError(ErrorCode.INVALID_RECORD, str(exc)) from None
    except CorruptRecordError as exc:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, str(exc)) from None
    if not batches:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "no message in the message set")
    return memoryview(bytearray(batches[0]))


# Coordinator answers that mean "not verified yet, retry": Kafka hands older clients
# NOT_ENOUGH_REPLICAS for them, a retriable error that does not refresh metadata.
_RETRY_VERIFICATION = frozenset(
    {
        ErrorCode.COORDINATOR_NOT_AVAILABLE,
        ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
        ErrorCode.NOT_COORDINATOR,
        ErrorCode.CONCURRENT_TRANSACTIONS,
    }
)
TRANSACTION_ABORTABLE_MIN_VERSION = 11  # KIP-890: Produce v11 clients handle it


async def verify_before_append(
    broker: Broker,
    partition: Partition,
    records: memoryview,
    transactional_id: str | None,
    version: int,
) -> None:
    """KIP-890 part 1: the first transactional batch of a producer on this partition is
    appended only if the transaction coordinator says the partition was added to the producer's
    open transaction (`transaction.partition.verification.enable`). Without it, a late batch
    from an aborted or timed-out transaction could start a transaction nobody will ever end,
    holding the last stable offset back for good ("hanging transaction").

    Once the partition has an open transaction of this producer and epoch there is nothing to
    ask. Raises KafkaError with the answer Kafka gives a Produce of this version. Coordinator
    and partition are on this broker's event loop, with no await between the check and the
    append, so the answer cannot go stale before the append (Kafka's VerificationGuard).
    """
    if transactional_id is None:  # every non-transactional produce: nothing to look up
        return
    if broker.config.get("transaction.partition.verification.enable") is False:
        return
    header = records_module.read_batch_header(records)
    if header.producer_id < 0 or not header.is_transactional:
        return
    pid, epoch = header.producer_id, header.producer_epoch
    entry = partition.producers.last_entry(pid)
    if entry is not None and entry.producer_epoch == epoch and entry.current_txn_start_offset >= 0:
        return  # verified when this transaction's first batch came
    code = broker.txn.verify_partition(
        transactional_id, pid, epoch, partition.topic, partition.index
    )
    if code == ErrorCode.NONE:
        return
    if code == ErrorCode.PRODUCER_FENCED:
        code = ErrorCode.INVALID_PRODUCER_EPOCH
    elif code == ErrorCode.TRANSACTION_ABORTABLE and version < TRANSACTION_ABORTABLE_MIN_VERSION:
        code = ErrorCode.INVALID_TXN_STATE
    elif code in _RETRY_VERIFICATION:
        code = ErrorCode.NOT_ENOUGH_REPLICAS
    raise KafkaError(
        code, "the partition was not added to the transaction, or could not be verified"
    )


async def _append(
    broker: Broker,
    topic: str,
    data: PartitionProduceData,
    now: int,
    syncs: list[_Sync],
    version: int,
    transactional_id: str | None,
) -> PartitionProduceResponse:
    try:
        partition = broker.partition(topic, data.index)
        records = data.records
        if not isinstance(records, memoryview):  # decoded records are views of the frame
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "no records")
        if version <= LEGACY_MAX_VERSION:
            records = _up_convert(records)
        await verify_before_append(broker, partition, records, transactional_id, version)
        info = partition.append(memoryview(records), now)
        if partition.flush_before_ack:
            syncs.append((partition.flushed(info.last_offset + 1), data.index))
    except KafkaError as exc:
        return PartitionProduceResponse(
            index=data.index,
            error_code=exc.code,
            base_offset=-1,
            error_message=exc.message,
        )
    return PartitionProduceResponse(
        index=data.index,
        error_code=ErrorCode.NONE,
        base_offset=info.first_offset,
        log_append_time_ms=info.log_append_time_ms,
        log_start_offset=partition.log_start_offset,
    )


async def _wait_for_flush(syncs: list[_Sync], results: list[PartitionProduceResponse]) -> None:
    """flush-before-ack: a partition whose fsync failed is answered KAFKA_STORAGE_ERROR."""
    if not syncs:
        return
    outcomes = await asyncio.gather(*(f for f, _ in syncs), return_exceptions=True)
    failed = {
        index
        for (_, index), out in zip(syncs, outcomes, strict=True)
        if isinstance(out, BaseException)
    }
    for result in results:
        if result.index in failed:
            result.error_code = ErrorCode.KAFKA_STORAGE_ERROR
            result.base_offset = -1
            result.error_message = "fsync before acknowledging failed"


@handles(ApiKey.PRODUCE, 0, 11)
async def produce(ctx: RequestContext, request: ProduceRequest) -> ProduceResponse | None:
    now = time.time_ns() // 1_000_000
    responses = []
    failed = False
    for topic in request.topic_data:
        partitions = []
        syncs: list[_Sync] = []
        for data in topic.partition_data:
            if request.acks not in (-1, 0, 1):
                result = PartitionProduceResponse(
                    index=data.index, error_code=ErrorCode.INVALID_REQUIRED_ACKS, base_offset=-1
                )
            else:
                result = await _append(
                    ctx.broker, topic.name, data, now, syncs, ctx.api_version,
                    request.transactional_id if ctx.api_version >= 3 else None,
                )  # fmt: skip
            partitions.append(result)
        await _wait_for_flush(syncs, partitions)
        failed |= any(p.error_code != ErrorCode.NONE for p in partitions)
        responses.append(TopicProduceResponse(name=topic.name, partition_responses=partitions))
    if request.acks == 0:
        if failed:
            raise CloseConnection("an acks=0 produce failed; closing so the client notices")
        return None
    return ProduceResponse(responses=responses)
