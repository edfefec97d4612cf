"""Pending transactional offsets: what TxnOffsetCommit wrote and no marker has settled yet.

Theory of operation (KIP-98, KIP-447; Kafka's `OffsetMetadataManager.pendingTransactionalOffsets`
and `openTransactions`). A record of a transactional batch in `__consumer_offsets` is an offset
commit that belongs to its producer's open transaction. Until the transaction's marker is
replayed the offset is pending: OffsetFetch does not return it, and with `require_stable` it
answers UNSTABLE_OFFSET_COMMIT for that partition. Two indexes of the same facts serve the two
questions asked of them: by producer id (the marker settles everything one producer wrote) and by
group and partition (is this partition unstable, which partitions does DeleteGroups tombstone).

Only replay changes this state, so it is the same after a live run and after a load of the log.
A tombstone of a partition drops every producer's pending offset for it; the marker then finds
nothing for that partition. A marker for a producer with nothing pending is ignored.
"""

from __future__ import annotations

from protocol.messages.offset_commit_value import OffsetCommitValue

NO_PRODUCER_ID = -1

TopicPartition = tuple[str, int]
# (group id, (topic, partition)) -> (offset of the record in the log, the committed value)
Pending = dict[tuple[str, TopicPartition], tuple[int, OffsetCommitValue]]


class PendingOffsets:
    def __init__(self) -> None:
        self.by_producer: dict[int, Pending] = {}
        # group -> (topic, partition) -> producers with a pending offset for it
        self.open: dict[str, dict[TopicPartition, set[int]]] = {}

    def add(
        self,
        producer_id: int,
        group_id: str,
        tp: TopicPartition,
        offset: int,
        value: OffsetCommitValue,
    ) -> None:
        """Replay of a transactional offset commit: the producer's latest for the partition."""
        self.by_producer.setdefault(producer_id, {})[(group_id, tp)] = (offset, value)
        self.open.setdefault(group_id, {}).setdefault(tp, set()).add(producer_id)

    def drop_partition(self, group_id: str, tp: TopicPartition) -> None:
        """Replay of an offset tombstone: no producer's offset for it is pending any more."""
        partitions = self.open.get(group_id)
        if partitions is None or tp not in partitions:
            return
        for producer_id in partitions.pop(tp):
            pending = self.by_producer.get(producer_id)
            if pending is not None:
                pending.pop((group_id, tp), None)
        if not partitions:
            del self.open[group_id]

    def end(self, producer_id: int) -> Pending:
        """Replay of the producer's marker: remove and return what it had pending."""
        ended = self.by_producer.pop(producer_id, {})
        for group_id, tp in ended:
            partitions = self.open[group_id]
            producers = partitions[tp]
            producers.discard(producer_id)
            if not producers:
                del partitions[tp]
                if not partitions:
                    del self.open[group_id]
        return ended

    def has(self, group_id: str, tp: TopicPartition) -> bool:
        return tp in self.open.get(group_id, {})

    def has_group(self, group_id: str) -> bool:
        return group_id in self.open

    def partitions(self, group_id: str) -> list[TopicPartition]:
        """The group's partitions with a pending offset, in a stable order."""
        return sorted(self.open.get(group_id, {}))

    def pending_value(
        self, producer_id: int, group_id: str, tp: TopicPartition
    ) -> OffsetCommitValue | None:
        found = self.by_producer.get(producer_id, {}).get((group_id, tp))
        return None if found is None else found[1]

    def snapshot(self) -> dict[int, Pending]:
        """A comparable copy (tests compare a live shard with a reloaded one)."""
        return {pid: dict(p) for pid, p in self.by_producer.items() if p}
