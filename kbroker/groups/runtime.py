"""The group coordinator's I/O shell: routes groups to shards, appends their records, fires
their timers, and loads them from `__consumer_offsets` at start-up.

The coordinator of a group is the leader of partition `abs(java_hash(group)) % N` of
`__consumer_offsets` (N = `offsets.topic.num.partitions`, 50), exactly as in Kafka, so that a
replicated cluster later moves group state with its partition and nothing else. On a single
node every partition is local: one `GroupCoordinatorShard` per partition, created with the
topic on first use (FindCoordinator or any group request), loaded by replaying the partition's
records when the broker starts. A transactional batch (TxnOffsetCommit) is appended as such,
and loading replays it into pending offsets and a transaction marker into their commit or abort;
a marker appended live reaches the shard through `complete_transaction`.

Appends go through `Partition.append` like any produce (validated, indexed, acks=all complete
at once on a single node), so a commit that was answered is in the log (in the page cache; a
kill -9 of the broker loses nothing, a power cut may lose what was not yet flushed, as in
Kafka; `kbroker.flush.before.ack=true` on `__consumer_offsets` is not honoured here yet).
Everything runs on the broker's event loop (one owner); the only waiting is for parked
requests, whose reply futures the shard completes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from kbroker.coordinator_runtime import ShardTimer, log_batches, now_ms, partition_for
from kbroker.groups import classic_ops, consumer_ops, offsets
from kbroker.groups import records as rec
from kbroker.groups.coordinator import Effects, GroupConfig, GroupCoordinatorShard, Reply
from kbroker.groups.txn_state import NO_PRODUCER_ID
from protocol import records
from protocol._codec import ApiMessage
from protocol.error_codes import ErrorCode, KafkaError

if TYPE_CHECKING:
    from kbroker.broker import Broker

log = logging.getLogger("kbroker.groups")

GROUP_METADATA_TOPIC = "__consumer_offsets"

Op = Callable[[GroupCoordinatorShard, Reply], None]
T = TypeVar("T")


class GroupCoordinator:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.config = GroupConfig.from_properties(broker.config.get)
        self.num_partitions = broker.int_config("offsets.topic.num.partitions")
        self.shards: dict[int, GroupCoordinatorShard] = {}
        self.timer = ShardTimer(self.shards, lambda shard, now: self._apply(shard, shard.tick(now)))

    # ------------------------------------------------------------------ topic and loading

    def start(self) -> None:
        """Load the groups of an existing `__consumer_offsets` (the broker just opened it)."""
        info = self.broker.topics.topics.get(GROUP_METADATA_TOPIC)
        if info is None:
            return
        self.num_partitions = info.partitions  # fixed once the topic exists, as in Kafka
        started = time.monotonic()
        count = 0
        for index in range(info.partitions):
            count += self._load(index)
        groups = sum(len(s.groups) + len(s.consumer_groups) for s in self.shards.values())
        log.info(
            "loaded %d groups from %d records of %s in %.2f s",
            groups,
            count,
            GROUP_METADATA_TOPIC,
            time.monotonic() - started,
        )

    def _load(self, index: int) -> int:
        shard = GroupCoordinatorShard(index, self.config, lambda: self.broker.topics.topics)
        shard.now = now_ms()
        partition = self.broker.partition(GROUP_METADATA_TOPIC, index)
        count = 0
        for data, pos, header in log_batches(partition):
            count += self._replay_batch(shard, data, pos, header)
        self.shards[index] = shard
        self._apply(shard, shard.run(now_ms(), lambda: self._after_load(shard)))
        return count

    @staticmethod
    def _replay_batch(
        shard: GroupCoordinatorShard, data: bytes, pos: int, header: records.BatchHeader
    ) -> int:
        """Replay one batch read back from the log; returns how many records it applied. A
        transactional batch's offsets stay pending; a marker (control batch) settles them."""
        batch = records.decode_batch(data, pos)[1]
        if header.is_control:
            for record in batch:
                try:
                    control, _ = records.parse_control_record(record)
                except records.InvalidRecordError:
                    continue  # not a transaction marker: nothing for the coordinator
                commit = control == records.ControlType.COMMIT
                shard.replay_end_transaction_marker(header.producer_id, commit)
            return 0
        producer_id = header.producer_id if header.is_transactional else NO_PRODUCER_ID
        count = 0
        for record in batch:
            if record.key is None:
                continue
            try:
                decoded = rec.decode(record.key, record.value)
            except rec.UnknownRecordType:
                continue
            shard.replay(decoded, loading=True, offset=record.offset, producer_id=producer_id)
            count += 1
        return count

    @staticmethod
    def _after_load(shard: GroupCoordinatorShard) -> None:
        classic_ops.restart_sessions(shard)
        consumer_ops.restart_sessions(shard)
        offsets.schedule_expiry(shard)

    def ensure_topic(self) -> None:
        """Create `__consumer_offsets` on first use (compacted, as Kafka creates it)."""
        if GROUP_METADATA_TOPIC in self.broker.topics.topics:
            return
        segment_bytes = self.broker.int_config("offsets.topic.segment.bytes")
        configs = {
            "cleanup.policy": "compact",
            "compression.type": "producer",
            "segment.bytes": str(segment_bytes),
        }
        self.broker.create_topic(GROUP_METADATA_TOPIC, self.num_partitions, configs)
        for index in range(self.num_partitions):
            self._load(index)

    def shard_for(self, group_id: str) -> GroupCoordinatorShard:
        self.ensure_topic()
        return self.shards[partition_for(group_id, self.num_partitions)]

    # ------------------------------------------------------------------ requests

    async def call(self, group_id: str, op: Op) -> ApiMessage:
        """Run `op` on the group's shard and wait for the reply it (or a later event) sends."""
        shard = self.shard_for(group_id)
        reply: asyncio.Future[ApiMessage] = asyncio.get_running_loop().create_future()
        self._apply(shard, shard.run(now_ms(), lambda: op(shard, reply)))
        return await reply

    def run(self, group_id: str, op: Callable[[GroupCoordinatorShard], T]) -> T:
        """Run `op` on the group's shard and return its result (reads, admin, commits whose
        answer comes through a callback)."""
        shard = self.shard_for(group_id)
        out: list[T] = []
        self._apply(shard, shard.run(now_ms(), lambda: out.append(op(shard))))
        return out[0]

    def all_shards(self) -> list[GroupCoordinatorShard]:
        return list(self.shards.values())

    def complete_transaction(self, index: int, producer_id: int, commit: bool) -> None:
        """A transaction marker was appended to partition `index`: commit or drop the offsets
        the producer committed in it (TxnOffsetCommit). The shard replays the marker as its
        load would, in a step of its own."""
        shard = self.shards.get(index)
        if shard is None:
            return  # not loaded: its load will replay the marker from the log
        self._apply(
            shard,
            shard.run(now_ms(), lambda: shard.replay_end_transaction_marker(producer_id, commit)),
        )

    # ------------------------------------------------------------------ effects

    def _apply(self, shard: GroupCoordinatorShard, effects: Effects) -> None:
        pending: Effects | None = effects
        while pending:
            current, pending = pending, None
            if current.records or current.on_appended:
                error, base_offset = None, -1
                if current.records:
                    error, base_offset = self._append(shard.partition, current)
                pending = shard.appended(now_ms(), current, error, base_offset)
            for reply, message in current.replies:
                if isinstance(reply, asyncio.Future) and not reply.done():
                    reply.set_result(message)  # a cancelled one: its client went away
        self.timer.arm(shard)

    def _append(self, index: int, effects: Effects) -> tuple[ErrorCode | None, int]:
        """Append the step's records as one batch: (error or None, offset of the first)."""
        now = now_ms()
        transactional = effects.producer_id != NO_PRODUCER_ID
        batch = records.build_batch(
            [(*r.encode(), (), now) for r in effects.records],
            producer_id=effects.producer_id,
            producer_epoch=effects.producer_epoch,
            is_transactional=transactional,
            base_sequence=-1,
        )
        try:
            partition = self.broker.partition(GROUP_METADATA_TOPIC, index)
            result = partition.append(
                memoryview(bytearray(batch)), now, from_coordinator=transactional
            )
        except KafkaError as exc:
            log.warning("%s-%d: append failed: %s", GROUP_METADATA_TOPIC, index, exc)
            return ErrorCode(exc.code), -1
        return None, result.first_offset

    def stop(self) -> None:
        self.timer.stop()
