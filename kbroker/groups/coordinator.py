"""The group coordinator of one `__consumer_offsets` partition: a sans-I/O state machine.

Theory of operation (Kafka's `GroupCoordinatorShard` / `CoordinatorResult`, KIP-848's
runtime). Every input is a call with the current time (a request, a timer firing, a record
replayed at load); every output is an `Effects`: records to append to this shard's partition
of `__consumer_offsets`, replies to send, and callbacks to run once the append is done or has
failed. Nothing here touches sockets, the clock or the disk, so unit tests drive it with a
fake clock and plain tokens as reply handles.

State that must survive a restart changes only by replaying records (offset commits and
deletions, group tombstones), so loading is replay. A classic group's membership changes in
memory as requests arrive (as in Kafka) and is written as a GroupMetadata record at the end of
each rebalance; replay restores it only at load (`replay(..., loading=True)`). A KIP-848
consumer group (`consumer.py`, in `consumer_groups`: one id space with the classic groups)
changes only by replaying its records, at any time; its assignments need the broker's topics,
which the runtime gives the shard as a callable (`topics`), never the broker itself.

Transactional offset commits (TxnOffsetCommit, KIP-98/KIP-447; `txn_offsets.py`) are written as
one transactional batch carrying the producer's id and epoch (`Effects.producer_id`). Replaying
a record of such a batch keeps the offset pending (`PendingOffsets`), invisible to OffsetFetch,
until the transaction's marker lands in this partition: a COMMIT applies the producer's pending
offsets, unless a later plain commit of the same partition was written after them (the larger
record offset wins, as in Kafka: so compaction of the topic cannot change what is materialised),
an ABORT drops them. Replay therefore needs each record's offset in the log, which `appended`
and the load give it.

Requests that must wait (JoinGroup during a rebalance, a follower's SyncGroup) keep their reply
handle in the member; the coordinator answers them later, from whichever call completes the
phase. Timers are keyed (`Timers`): member session expiry, the join and sync phase deadlines,
and the periodic offset expiry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kbroker.groups import consumer
from kbroker.groups import records as rec
from kbroker.groups.classic import ClassicGroup, GroupState
from kbroker.groups.consumer import ConsumerGroup, TopicsView
from kbroker.groups.records import CoordinatorRecord
from kbroker.groups.timers import Timers
from kbroker.groups.txn_state import NO_PRODUCER_ID, PendingOffsets
from protocol._codec import ApiMessage
from protocol.error_codes import ErrorCode
from protocol.messages.offset_commit_value import OffsetCommitValue

INT32_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """The broker settings the coordinator obeys (Kafka's names in `from_properties`)."""

    initial_rebalance_delay_ms: int = 3000
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1_800_000
    max_size: int = INT32_MAX
    new_member_join_timeout_ms: int = 300_000
    offset_metadata_max_bytes: int = 4096
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000
    offsets_retention_check_interval_ms: int = 600_000
    consumer_session_timeout_ms: int = 45_000
    consumer_heartbeat_interval_ms: int = 5000
    consumer_max_size: int = INT32_MAX
    consumer_assignors: tuple[str, ...] = ("uniform", "range")

    @classmethod
    def from_properties(cls, get: Callable[[str], Any]) -> GroupConfig:
        return cls(
            initial_rebalance_delay_ms=get("group.initial.rebalance.delay.ms"),
            min_session_timeout_ms=get("group.min.session.timeout.ms"),
            max_session_timeout_ms=get("group.max.session.timeout.ms"),
            max_size=get("group.max.size"),
            offset_metadata_max_bytes=get("offset.metadata.max.bytes"),
            offsets_retention_ms=get("offsets.retention.minutes") * 60_000,
            offsets_retention_check_interval_ms=get("offsets.retention.check.interval.ms"),
            consumer_session_timeout_ms=get("group.consumer.session.timeout.ms"),
            consumer_heartbeat_interval_ms=get("group.consumer.heartbeat.interval.ms"),
            consumer_max_size=get("group.consumer.max.size"),
            consumer_assignors=tuple(get("group.consumer.assignors")),
        )


Reply = object  # an opaque handle: the runtime's future, a test's token
AppendCallback = Callable[[ErrorCode | None], None]


@dataclass(slots=True)
class Effects:
    """What one step causes. `records` are appended as one batch; when `producer_id` is set
    it is a transactional batch of that producer (and epoch), written for TxnOffsetCommit."""

    records: list[CoordinatorRecord] = field(default_factory=list)
    replay: list[bool] = field(default_factory=list)  # per record: apply it when appended
    replies: list[tuple[Reply, ApiMessage]] = field(default_factory=list)
    on_appended: list[AppendCallback] = field(default_factory=list)
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = -1

    def __bool__(self) -> bool:
        return bool(self.records or self.replies or self.on_appended)


class GroupCoordinatorShard:
    def __init__(
        self, partition: int, config: GroupConfig, topics: TopicsView = lambda: {}
    ) -> None:
        self.partition = partition
        self.config = config
        self.topics = topics  # the broker's topics now (KIP-848 assignments need them)
        self.groups: dict[str, ClassicGroup] = {}
        self.consumer_groups: dict[str, ConsumerGroup] = {}  # one id space with `groups`
        # group -> (topic, partition) -> the committed value
        self.offsets: dict[str, dict[tuple[str, int], OffsetCommitValue]] = {}
        # group -> (topic, partition) -> offset in the log of the record that committed it
        self.committed_at: dict[str, dict[tuple[str, int], int]] = {}
        self.pending = PendingOffsets()  # transactional offsets awaiting their marker
        self.timers: Timers[None] = Timers()
        self.now = 0
        self._effects: Effects | None = None

    # ------------------------------------------------------------------ effects

    @contextlib.contextmanager
    def step(self, now_ms: int) -> Iterator[Effects]:
        """Collect what one input causes. Inputs never nest: one owner, one loop."""
        if self._effects is not None:
            raise AssertionError("coordinator steps do not nest")
        self.now = now_ms
        self._effects = Effects()
        try:
            yield self._effects
        finally:
            self._effects = None

    def run(self, now_ms: int, action: Callable[[], None]) -> Effects:
        with self.step(now_ms) as effects:
            action()
        return effects

    def reply(self, to: Reply, message: ApiMessage) -> None:
        assert self._effects is not None, "reply outside a step"
        self._effects.replies.append((to, message))

    def write(
        self,
        records: list[CoordinatorRecord],
        replay: bool,
        on_appended: AppendCallback | None = None,
        transaction: tuple[int, int] | None = None,
    ) -> None:
        """Records to append; `replay` applies them once appended (offsets), False when the
        in-memory state already reflects them (classic group metadata). `transaction`:
        (producer id, epoch) of a transactional write, which a step never mixes with others
        (they are one batch, and Kafka's runtime too writes a transaction's records alone)."""
        assert self._effects is not None, "write outside a step"
        pid, epoch = transaction if transaction is not None else (NO_PRODUCER_ID, -1)
        effects = self._effects
        if effects.records and (effects.producer_id, effects.producer_epoch) != (pid, epoch):
            raise AssertionError("a step writes one producer's records, or only plain ones")
        effects.producer_id, effects.producer_epoch = pid, epoch
        self._effects.records += records
        self._effects.replay += [replay] * len(records)
        if on_appended is not None:
            self._effects.on_appended.append(on_appended)

    def appended(
        self, now_ms: int, effects: Effects, error: ErrorCode | None, base_offset: int
    ) -> Effects:
        """The runtime appended `effects.records` at offsets `base_offset`, `base_offset`+1,
        ... (error None) or failed to: apply and follow up."""
        if error is None:
            for i, (record, replay) in enumerate(zip(effects.records, effects.replay, strict=True)):
                if replay:
                    self.replay(record, offset=base_offset + i, producer_id=effects.producer_id)
        callbacks = effects.on_appended

        def follow_up() -> None:
            for callback in callbacks:
                callback(error)

        return self.run(now_ms, follow_up)

    def tick(self, now_ms: int) -> Effects:
        """Fire every timer due at `now_ms`."""
        with self.step(now_ms) as effects:
            while (action := self.timers.pop_due(now_ms)) is not None:
                action()
        return effects

    def next_deadline(self) -> int | None:
        return self.timers.next_deadline()

    # ------------------------------------------------------------------ replay and load

    def replay(
        self,
        record: CoordinatorRecord,
        loading: bool = False,
        offset: int = -1,
        producer_id: int = NO_PRODUCER_ID,
    ) -> None:
        """Apply one record at `offset` in the log, written by `producer_id` when it belongs to
        a transactional batch (then an offset commit stays pending until the marker)."""
        if record.type in (rec.OFFSET_COMMIT, rec.LEGACY_OFFSET_COMMIT):
            self._replay_offset_commit(record, offset, producer_id)
        elif record.type == rec.GROUP_METADATA:
            group_id = record.key.group
            if record.value is None:
                group = self.groups.pop(group_id, None)
                if group is not None:
                    group.state = GroupState.DEAD
            elif loading:
                self.groups[group_id] = ClassicGroup.from_record_value(group_id, record.value)
        elif record.type in consumer.RECORD_TYPES:
            simple = self.groups.get(record.key.group_id)
            if record.value is not None and simple is not None and simple.protocol_type is None:
                del self.groups[record.key.group_id]  # made by offsets alone: no record to undo
            consumer.replay(self.consumer_groups, record)

    def _replay_offset_commit(
        self, record: CoordinatorRecord, offset: int, producer_id: int
    ) -> None:
        group_id, tp = record.key.group, (record.key.topic, record.key.partition)
        if record.value is None:
            self._set_committed(group_id, tp, None, offset)
            self.pending.drop_partition(group_id, tp)  # a tombstone ends pending ones too
            return
        if group_id not in self.groups and group_id not in self.consumer_groups:
            # a simple consumer's group exists by its offsets (transactional ones too)
            self.groups[group_id] = ClassicGroup(group_id, state_timestamp_ms=self.now)
        if producer_id == NO_PRODUCER_ID:
            self._set_committed(group_id, tp, record.value, offset)
        else:
            self.pending.add(producer_id, group_id, tp, offset, record.value)

    def _set_committed(
        self, group_id: str, tp: tuple[str, int], value: OffsetCommitValue | None, offset: int
    ) -> None:
        offsets = self.offsets.setdefault(group_id, {})
        positions = self.committed_at.setdefault(group_id, {})
        if value is not None:
            offsets[tp] = value
            positions[tp] = offset
            return
        offsets.pop(tp, None)
        positions.pop(tp, None)
        if not offsets:
            del self.offsets[group_id]
            del self.committed_at[group_id]

    def replay_end_transaction_marker(self, producer_id: int, commit: bool) -> None:
        """A COMMIT or ABORT marker of `producer_id` (Kafka's replayEndTransactionMarker): its
        pending offsets become committed, unless a plain commit of the same partition was
        written later in the log; an abort, or a marker with nothing pending, drops them."""
        ended = self.pending.end(producer_id)
        if not commit:
            return
        for (group_id, tp), (offset, value) in ended.items():
            current = self.committed_at.get(group_id, {}).get(tp)
            if current is None or offset > current:
                if group_id not in self.groups and group_id not in self.consumer_groups:
                    self.groups[group_id] = ClassicGroup(group_id, state_timestamp_ms=self.now)
                self._set_committed(group_id, tp, value, offset)

    # ------------------------------------------------------------------ groups

    def group_or_none(self, group_id: str) -> ClassicGroup | None:
        group = self.groups.get(group_id)
        return None if group is None or group.state == GroupState.DEAD else group

    def get_or_create_group(self, group_id: str) -> ClassicGroup:
        group = self.group_or_none(group_id)
        if group is None:
            group = ClassicGroup(group_id, state_timestamp_ms=self.now)
            self.groups[group_id] = group
        return group

    def offset_tombstones(self, group_id: str) -> list[CoordinatorRecord]:
        """Tombstones for every offset of the group: committed ones, and the partitions with
        pending transactional offsets (Kafka's deleteAllOffsets), each partition once."""
        partitions = list(self.offsets.get(group_id, {}))
        partitions += [tp for tp in self.pending.partitions(group_id) if tp not in partitions]
        return [
            rec.offset_commit(group_id, topic, partition, None) for topic, partition in partitions
        ]

    def delete_group(self, group: ClassicGroup, on_appended: AppendCallback | None = None) -> None:
        """Tombstones for the group and all its offsets (DeleteGroups, expiry of an empty group).
        Replaying them removes the group, so it stays if they could not be appended."""
        tombstones = self.offset_tombstones(group.group_id)
        tombstones.append(rec.group_metadata(group.group_id, None))
        self.write(tombstones, replay=True, on_appended=on_appended)
