"""Transactional offset commits on one coordinator shard, with a fake clock (KIP-98, KIP-447).

The harness appends what the shard writes into an in-memory log with offsets, and `marker`
plays `Broker.write_txn_marker`: a COMMIT or ABORT marker in the log, then the shard's step.
`reload` replays that log (records and markers) into a fresh shard, as the runtime's load does.
"""

from __future__ import annotations

from typing import Any

import pytest

from kbroker.groups import offsets, txn_offsets
from kbroker.groups import records as rec
from kbroker.groups.classic import GroupState
from kbroker.groups.coordinator import GroupConfig
from protocol.error_codes import ErrorCode
from protocol.messages.txn_offset_commit_request import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)
from tests.kbroker.groups.consumer_harness import Harness as ConsumerHarness
from tests.kbroker.groups.consumer_harness import topic
from tests.kbroker.groups.harness import GROUP, Harness, Marker, joined
from tests.kbroker.groups.test_classic_group import form, form_static

E = ErrorCode
S = GroupState
PID, EPOCH = 4000, 3
T0, T1, U0 = ("t", 0), ("t", 1), ("u", 0)


def request(
    partitions: dict[tuple[str, int], int],
    *,
    producer_id: int = PID,
    group: str = GROUP,
    generation: int = -1,
    member_id: str = "",
    instance_id: str | None = None,
    metadata: str | None = "m",
) -> TxnOffsetCommitRequest:
    topics: dict[str, list[TxnOffsetCommitRequestPartition]] = {}
    for (name, partition), offset in partitions.items():
        topics.setdefault(name, []).append(
            TxnOffsetCommitRequestPartition(partition, offset, 7, metadata)
        )
    return TxnOffsetCommitRequest(
        transactional_id=f"txn-{producer_id}",
        group_id=group,
        producer_id=producer_id,
        producer_epoch=EPOCH,
        generation_id=generation,
        member_id=member_id,
        group_instance_id=instance_id,
        topics=[TxnOffsetCommitRequestTopic(n, ps) for n, ps in topics.items()],
    )


def txn_commit(
    h: Harness, partitions: dict[tuple[str, int], int], version: int = 3, **fields: Any
) -> dict[tuple[str, int], ErrorCode]:
    req = request(partitions, **fields)
    out: list[offsets.CommitResults] = []
    h.run(lambda: txn_offsets.commit_transactional_offsets(h.shard, req, version, out.append))
    assert len(out) == 1, f"TxnOffsetCommit answered {len(out)} times"
    return {(t, p): E(code) for t, p, code in out[0]}


def stable(h: Harness, partitions: list[tuple[str, int]] | None) -> dict[tuple[str, int], object]:
    """OffsetFetch with require_stable: partition -> offset, None, or UNSTABLE_OFFSET_COMMIT."""
    found = h.run(lambda: offsets.fetch_stable_offsets(h.shard, GROUP, partitions))
    return {
        (t, p): error if error != E.NONE else (None if v is None else v.offset)
        for t, p, v, error in found
    }


def assert_reload_matches(h: Harness) -> None:
    shard = h.reload()
    assert shard.offsets == h.shard.offsets
    assert shard.committed_at == h.shard.committed_at
    assert shard.pending.snapshot() == h.shard.pending.snapshot()
    assert shard.pending.open == h.shard.pending.open
    assert set(shard.groups) == set(h.shard.groups)


# ---------------------------------------------------------------------- pending, commit, abort


def test_the_offsets_are_one_transactional_batch_and_invisible_until_the_marker() -> None:
    h = Harness()
    req = request({T0: 10, T1: 11})
    out: list[offsets.CommitResults] = []
    effects = h.shard.run(
        h.now, lambda: txn_offsets.commit_transactional_offsets(h.shard, req, 3, out.append)
    )
    assert (effects.producer_id, effects.producer_epoch) == (PID, EPOCH)
    assert len(effects.records) == 2 and not out  # answered once appended
    h.drive(effects)
    assert h.appends == 1 and out == [[("t", 0, E.NONE), ("t", 1, E.NONE)]]
    assert {e.producer_id for e in h.entries} == {PID}

    assert h.committed() == {}
    assert h.fetch([T0]) == [("t", 0, None)]
    assert stable(h, [T0, T1, U0]) == {
        T0: E.UNSTABLE_OFFSET_COMMIT,
        T1: E.UNSTABLE_OFFSET_COMMIT,
        U0: None,
    }
    assert h.shard.pending.pending_value(PID, GROUP, T0) is not None
    value = h.shard.pending.pending_value(PID, GROUP, T0)
    assert value is not None and (value.offset, value.leader_epoch, value.metadata) == (10, 7, "m")


def test_a_commit_marker_applies_the_pending_offsets() -> None:
    h = Harness()
    assert txn_commit(h, {T0: 10, T1: 11}) == {T0: E.NONE, T1: E.NONE}
    h.marker(PID, commit=True)
    assert h.committed() == {T0: 10, T1: 11}
    assert stable(h, None) == {T0: 10, T1: 11}
    assert not h.shard.pending.has_group(GROUP)
    assert_reload_matches(h)


def test_an_abort_marker_drops_them_and_the_last_committed_offset_stays() -> None:
    h = Harness()
    assert h.commit({T0: 5}) == {T0: E.NONE}
    txn_commit(h, {T0: 10})
    assert h.committed() == {T0: 5}  # without require_stable: the last committed offset
    assert stable(h, [T0]) == {T0: E.UNSTABLE_OFFSET_COMMIT}
    h.marker(PID, commit=False)
    assert h.committed() == {T0: 5} and stable(h, [T0]) == {T0: 5}
    h.marker(PID, commit=True)  # a later marker with nothing pending changes nothing
    assert h.committed() == {T0: 5}
    assert_reload_matches(h)


def test_markers_settle_only_their_own_producer() -> None:
    h = Harness()
    txn_commit(h, {T0: 10})
    txn_commit(h, {T1: 20}, producer_id=PID + 1)
    h.marker(PID + 1, commit=True)
    assert h.committed() == {T1: 20}
    assert stable(h, [T0, T1]) == {T0: E.UNSTABLE_OFFSET_COMMIT, T1: 20}
    h.marker(PID, commit=True)
    assert h.committed() == {T0: 10, T1: 20}


def test_require_stable_for_all_partitions_lists_only_committed_ones() -> None:
    """Kafka's fetchAllOffsets: a partition with only a pending offset is not listed; one
    with a committed offset and a pending one is UNSTABLE_OFFSET_COMMIT."""
    h = Harness()
    h.commit({T0: 1, U0: 2})
    txn_commit(h, {T0: 10, T1: 11})
    assert stable(h, None) == {T0: E.UNSTABLE_OFFSET_COMMIT, U0: 2}


# ---------------------------------------------------------------------- ordering and reload


def test_a_plain_commit_written_after_the_transactional_one_wins() -> None:
    h = Harness()
    txn_commit(h, {T0: 10, T1: 11})
    h.commit({T0: 50})
    h.marker(PID, commit=True)
    assert h.committed() == {T0: 50, T1: 11}
    assert_reload_matches(h)


def test_a_plain_commit_written_before_the_transactional_one_is_replaced() -> None:
    h = Harness()
    h.commit({T0: 50})
    txn_commit(h, {T0: 10})
    h.marker(PID, commit=True)
    assert h.committed() == {T0: 10}
    assert_reload_matches(h)


def test_a_reload_between_the_commit_and_the_marker_keeps_the_offsets_pending() -> None:
    h = Harness()
    h.commit({U0: 3})
    txn_commit(h, {T0: 10})
    assert_reload_matches(h)
    h.shard = h.reload()  # the broker restarts: the live shard is the loaded one
    assert stable(h, [T0, U0]) == {T0: E.UNSTABLE_OFFSET_COMMIT, U0: 3}
    assert h.shard.group_or_none(GROUP) is not None
    h.marker(PID, commit=True)  # the marker arrives after the restart
    assert h.committed() == {T0: 10, U0: 3}
    assert_reload_matches(h)
    assert isinstance(h.entries[-1], Marker)


# ---------------------------------------------------------------------- validation


def test_unknown_group_without_generation_becomes_a_simple_group_by_its_pending_offsets() -> None:
    h = Harness()
    assert txn_commit(h, {T0: 1}, version=0) == {T0: E.NONE}
    group = h.group()
    assert group.state == S.EMPTY and group.protocol_type is None
    assert h.reload().group_or_none(GROUP) is not None  # replay makes it too


def test_unknown_group_with_a_generation_is_illegal_generation() -> None:
    h = Harness()
    assert txn_commit(h, {T0: 1}, generation=1, member_id="m") == {T0: E.ILLEGAL_GENERATION}
    assert h.shard.group_or_none(GROUP) is None and h.appends == 0


def test_a_classic_group_accepts_a_commit_naming_no_member_whatever_its_state() -> None:
    """Unlike OffsetCommit: TxnOffsetCommit v0-2 cannot name the member (Kafka's rule)."""
    h = Harness()
    form(h, 2)
    assert h.commit({T0: 1}) == {T0: E.UNKNOWN_MEMBER_ID}  # a plain commit is refused
    assert txn_commit(h, {T0: 1}, version=2) == {T0: E.NONE}


def test_classic_member_checks() -> None:
    h = Harness()
    formed = form(h, 2)
    leader, generation = formed.leader, formed.generation
    ok = txn_commit(h, {T0: 1}, generation=generation, member_id=leader)
    assert ok == {T0: E.NONE}
    stale = txn_commit(h, {T0: 1}, generation=generation - 1, member_id=leader)
    assert stale == {T0: E.ILLEGAL_GENERATION}
    unknown = txn_commit(h, {T0: 1}, generation=generation, member_id="nobody")
    assert unknown == {T0: E.UNKNOWN_MEMBER_ID}


def test_a_replaced_static_member_is_fenced() -> None:
    h = Harness()
    formed = form_static(h, ["i-0", "i-1"])
    old = formed.members[1]
    new = joined(h.reply(h.join(instance_id="i-1"))).member_id  # a restart replaces it
    generation = formed.generation
    fenced = txn_commit(h, {T0: 1}, generation=generation, member_id=old, instance_id="i-1")
    assert fenced == {T0: E.FENCED_INSTANCE_ID}
    ok = txn_commit(h, {T0: 1}, generation=generation, member_id=new, instance_id="i-1")
    assert ok == {T0: E.NONE}


def test_completing_rebalance_does_not_refuse_a_transactional_commit() -> None:
    h = Harness(GroupConfig(initial_rebalance_delay_ms=0))
    member, token = h.join_new()
    h.advance_until_answered(token)
    generation = h.reply(token).generation_id
    assert h.group().state == S.COMPLETING_REBALANCE
    assert h.commit({T0: 1}, generation=generation, member_id=member) == {
        T0: E.REBALANCE_IN_PROGRESS
    }
    assert txn_commit(h, {T0: 1}, generation=generation, member_id=member) == {T0: E.NONE}


def test_metadata_too_large_is_refused_for_that_partition_only() -> None:
    h = Harness(GroupConfig(offset_metadata_max_bytes=4))
    req = request({T0: 1})
    req.topics[0].partitions.append(TxnOffsetCommitRequestPartition(1, 2, -1, "too long"))
    out: list[offsets.CommitResults] = []
    h.run(lambda: txn_offsets.commit_transactional_offsets(h.shard, req, 3, out.append))
    assert out == [[("t", 0, E.NONE), ("t", 1, E.OFFSET_METADATA_TOO_LARGE)]]
    assert h.shard.pending.partitions(GROUP) == [T0]


def test_a_failed_append_is_every_partitions_error_and_leaves_nothing_pending() -> None:
    h = Harness()
    h.fail_appends.append(E.NOT_LEADER_OR_FOLLOWER)
    assert txn_commit(h, {T0: 1, T1: 2}) == {T0: E.NOT_COORDINATOR, T1: E.NOT_COORDINATOR}
    assert not h.shard.pending.has_group(GROUP)


def test_a_consumer_group_member_with_a_stale_epoch_is_illegal_generation() -> None:
    h = ConsumerHarness(topic("t", 2))
    client = h.client("m1", "t")
    client.join()
    for _ in range(3):
        client.beat()
    epoch = client.epoch
    assert epoch > 0

    def commit(member_id: str, member_epoch: int) -> ErrorCode:
        req = request({T0: 1}, generation=member_epoch, member_id=member_id)
        out: list[offsets.CommitResults] = []
        h.run(lambda: txn_offsets.commit_transactional_offsets(h.shard, req, 3, out.append))
        [(_, _, code)] = out[0]
        return E(code)

    assert commit("m1", epoch) == E.NONE
    assert commit("m1", epoch + 1) == E.ILLEGAL_GENERATION  # not STALE_MEMBER_EPOCH
    assert commit("ghost", epoch) == E.UNKNOWN_MEMBER_ID
    assert commit("", -1) == E.NONE  # names no member: allowed for transactions


# ---------------------------------------------------------------------- deletion and expiry


def test_delete_groups_tombstones_the_pending_partitions_and_the_marker_finds_nothing() -> None:
    h = Harness()
    h.commit({T0: 1})
    txn_commit(h, {T0: 10, T1: 11})
    assert h.delete_group() == E.NONE
    tombstoned = [
        (r.key.topic, r.key.partition)
        for r in h.records()
        if r.type == rec.OFFSET_COMMIT and r.value is None
    ]
    assert sorted(tombstoned) == [T0, T1]  # each partition once
    assert not h.shard.pending.has_group(GROUP)
    h.marker(PID, commit=True)
    assert h.committed() == {} and h.shard.group_or_none(GROUP) is None
    assert_reload_matches(h)


def test_offset_delete_tombstones_a_partition_with_only_a_pending_offset() -> None:
    h = Harness()
    txn_commit(h, {T0: 10})
    code, results = h.delete_offsets([T0])
    assert (code, results) == (E.NONE, {T0: E.NONE})
    assert h.records()[-1].value is None and not h.shard.pending.has(GROUP, T0)
    h.marker(PID, commit=True)
    assert h.committed() == {}


@pytest.mark.parametrize("commit", [True, False])
def test_expiry_spares_pending_offsets_and_their_group(commit: bool) -> None:
    retention = 60_000
    config = GroupConfig(offsets_retention_ms=retention, offsets_retention_check_interval_ms=1000)
    h = Harness(config)
    h.run(lambda: offsets.schedule_expiry(h.shard))
    h.commit({T0: 1}, group="old")
    txn_commit(h, {T0: 10}, group="old")
    txn_commit(h, {T0: 20}, group="pending-only", producer_id=PID + 1)
    h.advance(retention * 2)
    assert h.committed("old") == {T0: 1}  # expired, but a transaction is open on it
    assert h.shard.group_or_none("pending-only") is not None
    h.marker(PID, commit)
    h.marker(PID + 1, commit)
    h.advance(retention * 2)
    assert h.shard.group_or_none("old") is None
    assert h.shard.group_or_none("pending-only") is None
    assert_reload_matches(h)
