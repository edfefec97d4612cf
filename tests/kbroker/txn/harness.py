"""Drives a TransactionCoordinatorShard the way the runtime does, with a fake clock and log.

Appends succeed into `log` (each record encoded and decoded again, so the record format is
exercised too) unless `fail_append` is set; markers succeed into `markers` unless their
partition is in `fail_markers`. Nothing sleeps: `advance` moves the clock and fires timers.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from kbroker.txn import records as rec
from kbroker.txn.coordinator import (
    Effects,
    InitResult,
    TransactionCoordinatorShard,
    TxnConfig,
)
from kbroker.txn.state import TopicPartition, TransactionMetadata
from protocol.error_codes import ErrorCode

CONFIG = TxnConfig(
    max_timeout_ms=60_000,
    transactional_id_expiration_ms=100_000,
    abort_timed_out_interval_ms=1000,
    remove_expired_interval_ms=50_000,
)


class Harness:
    def __init__(self, config: TxnConfig = CONFIG, first_producer_id: int = 1000) -> None:
        self.ids = itertools.count(first_producer_id)
        self.shard = TransactionCoordinatorShard(0, config, lambda: next(self.ids))
        self.now = 0
        self.log: list[rec.TxnLogRecord] = []
        # (topic, partition, producer id, epoch, commit) of every marker written
        self.markers: list[tuple[str, int, int, int, bool]] = []
        self.fail_append: ErrorCode | None = None
        self.fail_markers: dict[TopicPartition, ErrorCode] = {}
        self.replies: dict[object, object] = {}
        self.apply(self.shard.run(self.now, self.shard.after_load))

    def apply(self, effects: Effects) -> None:
        queue = deque([effects])
        while queue:
            current = queue.popleft()
            if current.records or current.on_appended:
                error = None
                if current.records and self.fail_append is not None:
                    error = self.fail_append
                elif current.records:
                    self.log += [rec.decode(*r.encode()) for r in current.records]
                queue.append(self.shard.appended(self.now, current, error))
            for job in current.markers:
                errors = {tp: self.fail_markers.get(tp, ErrorCode.NONE) for tp in job.partitions}
                for (topic, index), error in sorted(errors.items()):
                    if error == ErrorCode.NONE:
                        entry = (topic, index, job.producer_id, job.producer_epoch, job.commit)
                        self.markers.append(entry)
                queue.append(self.shard.markers_written(self.now, job, errors))
            for reply, result in current.replies:
                self.replies[reply] = result

    def call(self, op: Callable[[object], None]) -> Any:
        token = object()
        self.apply(self.shard.run(self.now, lambda: op(token)))
        return self.replies.pop(token)

    def init(
        self, txn_id: str = "tx", timeout_ms: int = 10_000, expected: tuple[int, int] | None = None
    ) -> InitResult:
        result = self.call(lambda r: self.shard.init_producer_id(r, txn_id, timeout_ms, expected))
        assert isinstance(result, InitResult)
        return result

    def add(self, pid: int, epoch: int, *partitions: TopicPartition, txn_id: str = "tx") -> Any:
        return self.call(
            lambda r: self.shard.add_partitions(r, txn_id, pid, epoch, set(partitions))
        )

    def end(self, pid: int, epoch: int, commit: bool, txn_id: str = "tx") -> Any:
        return self.call(lambda r: self.shard.end_txn(r, txn_id, pid, epoch, commit))

    def advance(self, ms: int) -> None:
        self.now += ms
        self.apply(self.shard.tick(self.now))

    def meta(self, txn_id: str = "tx") -> TransactionMetadata:
        return self.shard.txns[txn_id]

    def logged_states(self, txn_id: str = "tx") -> list[str]:
        return [
            r.value.state.name if r.value is not None else "TOMBSTONE"
            for r in self.log
            if r.transactional_id == txn_id
        ]
