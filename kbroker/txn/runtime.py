"""The transaction coordinator's I/O shell: routes transactional ids to shards, appends their
records, writes their transaction markers, fires their timers, and loads them at start-up.

The coordinator of a transactional id is the leader of partition `abs(java_hash(id)) % N` of
`__transaction_state` (N = `transaction.state.log.num.partitions`, 50), exactly as in Kafka.
On a single node every partition is local: one `TransactionCoordinatorShard` per partition,
created with the topic on first use (FindCoordinator for a transaction, InitProducerId),
loaded by replaying the partition's records when the broker starts; after loading, transactions
found half-ended get their markers and are completed.

Records are appended through `Partition.append` like any produce; markers through
`Broker.write_txn_marker`, which on one node is a synchronous local append (Kafka sends
WriteTxnMarkers to each partition's leader). Everything runs on the broker's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from kbroker.coordinator_runtime import ShardTimer, log_batches, now_ms, partition_for
from kbroker.txn import records as rec
from kbroker.txn.coordinator import (
    Effects,
    MarkerJob,
    Reply,
    TransactionCoordinatorShard,
    TxnConfig,
)
from kbroker.txn.state import TopicPartition, TransactionMetadata
from protocol import records
from protocol.error_codes import ErrorCode, KafkaError

if TYPE_CHECKING:
    from kbroker.broker import Broker

log = logging.getLogger("kbroker.txn")

TRANSACTION_STATE_TOPIC = "__transaction_state"

Op = Callable[[TransactionCoordinatorShard, Reply], None]
T = TypeVar("T")


class TransactionCoordinator:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.config = TxnConfig.from_properties(broker.config.get)
        self.num_partitions = broker.int_config("transaction.state.log.num.partitions")
        self.shards: dict[int, TransactionCoordinatorShard] = {}
        self.timer = ShardTimer(self.shards, lambda shard, now: self._apply(shard, shard.tick(now)))

    # ------------------------------------------------------------------ topic and loading

    def start(self) -> None:
        """Load the transactional ids of an existing `__transaction_state`."""
        info = self.broker.topics.topics.get(TRANSACTION_STATE_TOPIC)
        if info is None:
            return
        self.num_partitions = info.partitions  # fixed once the topic exists, as in Kafka
        started = time.monotonic()
        count = sum(self._load(index) for index in range(info.partitions))
        log.info(
            "loaded %d transactional ids from %d records of %s in %.2f s",
            sum(len(s.txns) for s in self.shards.values()),
            count,
            TRANSACTION_STATE_TOPIC,
            time.monotonic() - started,
        )

    def _load(self, index: int) -> int:
        partition = self.broker.partition(TRANSACTION_STATE_TOPIC, index)
        shard = TransactionCoordinatorShard(
            index, self.config, self.broker.producer_ids.next_id, partition.leader_epoch
        )
        shard.now = now_ms()
        count = 0
        for data, pos, header in log_batches(partition):
            if header.is_control:
                continue
            for record in records.decode_batch(data, pos)[1]:
                if record.key is None:
                    continue
                try:
                    shard.replay(rec.decode(record.key, record.value), loading=True)
                except rec.UnknownRecord as exc:
                    log.warning("%s-%d: skipped %s", TRANSACTION_STATE_TOPIC, index, exc)
                    continue
                count += 1
        self.shards[index] = shard
        self._apply(shard, shard.run(now_ms(), shard.after_load))
        return count

    def ensure_topic(self) -> None:
        """Create `__transaction_state` on first use (compacted, uncompressed, as Kafka)."""
        if TRANSACTION_STATE_TOPIC in self.broker.topics.topics:
            return
        configs = {
            "cleanup.policy": "compact",
            "compression.type": "uncompressed",
            "min.insync.replicas": str(self.broker.int_config("transaction.state.log.min.isr")),
            "segment.bytes": str(self.broker.int_config("transaction.state.log.segment.bytes")),
        }
        self.broker.create_topic(TRANSACTION_STATE_TOPIC, self.num_partitions, configs)
        for index in range(self.num_partitions):
            self._load(index)

    def partition_for(self, transactional_id: str) -> int:
        return partition_for(transactional_id, self.num_partitions)

    def shard_for(self, transactional_id: str) -> TransactionCoordinatorShard:
        self.ensure_topic()
        return self.shards[self.partition_for(transactional_id)]

    def find(self, transactional_id: str) -> TransactionMetadata | None:
        """The id's metadata, without creating the topic (admin reads, verification)."""
        if TRANSACTION_STATE_TOPIC not in self.broker.topics.topics:
            return None
        shard = self.shards.get(self.partition_for(transactional_id))
        return None if shard is None else shard.txns.get(transactional_id)

    # ------------------------------------------------------------------ requests

    async def call(self, transactional_id: str, op: Op) -> object:
        """Run `op` on the id's shard and wait for the reply it (or a later event) sends."""
        shard = self.shard_for(transactional_id)
        reply: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._apply(shard, shard.run(now_ms(), lambda: op(shard, reply)))
        return await reply

    def verify_partition(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        topic: str,
        partition: int,
    ) -> ErrorCode:
        """For the produce path: NONE iff the producer's open transaction has the partition
        (the AddPartitionsToTxn verify_only rule, KIP-890 part 1)."""
        if TRANSACTION_STATE_TOPIC not in self.broker.topics.topics:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        shard = self.shards[self.partition_for(transactional_id)]
        tp = (topic, partition)
        return shard.verify_partitions(transactional_id, producer_id, producer_epoch, [tp])[tp]

    def all_transactions(self) -> list[TransactionMetadata]:
        return [meta for shard in self.shards.values() for meta in shard.txns.values()]

    # ------------------------------------------------------------------ effects

    def _apply(self, shard: TransactionCoordinatorShard, effects: Effects) -> None:
        queue: deque[Effects] = deque([effects])
        while queue:
            current = queue.popleft()
            if current.records or current.on_appended:
                error = self._append(shard.partition, current) if current.records else None
                queue.append(shard.appended(now_ms(), current, error))
            for job in current.markers:
                queue.append(shard.markers_written(now_ms(), job, self._write_markers(job)))
            for reply, message in current.replies:
                if isinstance(reply, asyncio.Future) and not reply.done():
                    reply.set_result(message)  # a cancelled one: its client went away
        self.timer.arm(shard)

    def _append(self, index: int, effects: Effects) -> ErrorCode | None:
        now = now_ms()
        batch = records.build_batch([(*r.encode(), (), now) for r in effects.records])
        try:
            partition = self.broker.partition(TRANSACTION_STATE_TOPIC, index)
            partition.append(memoryview(bytearray(batch)), now)
        except KafkaError as exc:
            log.warning("%s-%d: append failed: %s", TRANSACTION_STATE_TOPIC, index, exc)
            return ErrorCode(exc.code)
        return None

    def _write_markers(self, job: MarkerJob) -> dict[TopicPartition, ErrorCode]:
        errors: dict[TopicPartition, ErrorCode] = {}
        for topic, index in sorted(job.partitions):
            try:
                self.broker.write_txn_marker(
                    topic,
                    index,
                    job.producer_id,
                    job.producer_epoch,
                    job.coordinator_epoch,
                    job.commit,
                )
                errors[(topic, index)] = ErrorCode.NONE
            except KafkaError as exc:
                errors[(topic, index)] = ErrorCode(exc.code)
                if exc.code != ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                    log.warning("%s-%d: marker not written: %s", topic, index, exc)
        return errors

    def stop(self) -> None:
        self.timer.stop()
