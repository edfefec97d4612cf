"""The records of `__transaction_state`, in Kafka's format so Kafka's tools can read the topic.

Key: int16 record type 0, then TransactionLogKey (the transactional id). Value: int16 version,
then TransactionLogValue; a null value is a tombstone (the id expired). We write value
version 1 (flexible; it carries the previous and next producer ids in tagged fields, which a
KIP-360 retry across a restart needs); version 0 values written by older brokers read the
same. The partitions list is null for EMPTY, as Kafka writes it. The last producer epoch is not
in the record (Kafka does not write it either) and reads back as -1.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from itertools import groupby

from kbroker.txn.state import NO_PRODUCER_EPOCH, TransactionState, TxnTransit
from protocol.messages.transaction_log_key import TransactionLogKey
from protocol.messages.transaction_log_value import PartitionsSchema, TransactionLogValue

_INT16 = struct.Struct(">h")

TRANSACTION_LOG_RECORD_TYPE = 0
VALUE_VERSION = 1


class UnknownRecord(ValueError):
    """A key or value version this broker does not know (a newer Kafka's record): skipped."""


@dataclass(frozen=True, slots=True)
class TxnLogRecord:
    transactional_id: str
    value: TxnTransit | None  # None: tombstone

    def encode(self) -> tuple[bytes, bytes | None]:
        key = _INT16.pack(TRANSACTION_LOG_RECORD_TYPE) + bytes(
            TransactionLogKey(self.transactional_id).encode(0)
        )
        if self.value is None:
            return key, None
        t = self.value
        partitions: list[PartitionsSchema] | None = None
        if t.state != TransactionState.EMPTY:
            ordered = sorted(t.partitions)
            partitions = [
                PartitionsSchema(topic, [p for _, p in group])
                for topic, group in groupby(ordered, key=lambda tp: tp[0])
            ]
        value = TransactionLogValue(
            producer_id=t.producer_id,
            previous_producer_id=t.prev_producer_id,
            next_producer_id=t.next_producer_id,
            producer_epoch=t.producer_epoch,
            transaction_timeout_ms=t.txn_timeout_ms,
            transaction_status=t.state.id,
            transaction_partitions=partitions,
            transaction_last_update_timestamp_ms=t.txn_last_update_timestamp,
            transaction_start_timestamp_ms=t.txn_start_timestamp,
        )
        return key, _INT16.pack(VALUE_VERSION) + bytes(value.encode(VALUE_VERSION))


def decode(key: bytes, value: bytes | None) -> TxnLogRecord:
    """Parse a record read back from the log; UnknownRecord for versions we do not know."""
    if len(key) < 2:
        raise ValueError("transaction log key shorter than its type")
    (record_type,) = _INT16.unpack_from(key)
    if record_type != TRANSACTION_LOG_RECORD_TYPE:
        raise UnknownRecord(f"key version {record_type}")
    transactional_id = TransactionLogKey.decode(memoryview(key)[2:], 0).transactional_id
    if value is None:
        return TxnLogRecord(transactional_id, None)
    (version,) = _INT16.unpack_from(value)
    if not TransactionLogValue.MIN_VERSION <= version <= TransactionLogValue.MAX_VERSION:
        raise UnknownRecord(f"value version {version}")
    v = TransactionLogValue.decode(memoryview(value)[2:], version)
    state = TransactionState.from_id(v.transaction_status)
    partitions: frozenset[tuple[str, int]] = frozenset()
    if state != TransactionState.EMPTY and v.transaction_partitions:
        partitions = frozenset(
            (p.topic, index) for p in v.transaction_partitions for index in p.partition_ids
        )
    transit = TxnTransit(
        producer_id=v.producer_id,
        prev_producer_id=v.previous_producer_id,
        next_producer_id=v.next_producer_id,
        producer_epoch=v.producer_epoch,
        last_producer_epoch=NO_PRODUCER_EPOCH,
        txn_timeout_ms=v.transaction_timeout_ms,
        state=state,
        partitions=partitions,
        txn_start_timestamp=v.transaction_start_timestamp_ms,
        txn_last_update_timestamp=v.transaction_last_update_timestamp_ms,
    )
    return TxnLogRecord(transactional_id, transit)
