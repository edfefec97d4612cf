"""KIP-848 groups' state across restarts, their offsets, and the APIs shared with classic groups."""

from __future__ import annotations

from kbroker.groups import classic_ops, consumer_admin, consumer_ops, group_admin, offsets
from kbroker.groups import records as rec
from kbroker.groups.coordinator import GroupCoordinatorShard
from kbroker.groups.records import CoordinatorRecord
from protocol.error_codes import ErrorCode
from protocol.messages.consumer_group_current_member_assignment_value import (
    ConsumerGroupCurrentMemberAssignmentValue,
)
from protocol.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from protocol.messages.join_group_response import JoinGroupResponse
from protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from tests.kbroker.groups.consumer_harness import CONFIG, GROUP, Harness, settle, topic

A = topic("a", 6)


def reload(h: Harness) -> GroupCoordinatorShard:
    """A fresh shard that loads the log as the runtime does at start-up (through the codec)."""
    shard = GroupCoordinatorShard(0, CONFIG, lambda: h.topics)
    for record in h.log:
        key, value = record.encode()
        shard.replay(rec.decode(key, value), loading=True)
    return shard


def test_replaying_the_log_rebuilds_the_group() -> None:
    h = Harness(A)
    c1, c2, c3 = (h.client(f"m{i}", "a") for i in (1, 2, 3))
    c1.join()
    c2.join()
    c1.beat()  # m1 is now revoking: a state worth restoring
    s = h.client("s", "a", instance_id="i")
    s.join()
    settle(c1, c2, s)
    c3.join()
    c1.beat()
    s.leave(-2)
    loaded = reload(h).consumer_groups[GROUP]
    assert loaded == h.group


def test_a_loaded_group_keeps_its_members_for_a_session_timeout() -> None:
    h = Harness(A)
    c1 = h.client("m1", "a")
    c1.join()
    h.shard = reload(h)
    h.run(lambda: consumer_ops.restart_sessions(h.shard))
    assert c1.beat().error_code == ErrorCode.NONE  # the member goes on where it was
    h.tick(45_000)
    assert h.group.members == {}


def test_deleting_the_group_leaves_nothing_behind() -> None:
    h = Harness(A)
    c1 = h.client("m1", "a")
    c1.join()
    commit(h, "m1", c1.epoch, [0, 1])
    assert delete(h) == ErrorCode.NON_EMPTY_GROUP
    c1.leave()
    assert delete(h) == ErrorCode.NONE
    assert GROUP not in h.shard.consumer_groups
    assert GROUP not in h.shard.offsets
    assert reload(h).consumer_groups == {}
    assert delete(h) == ErrorCode.GROUP_ID_NOT_FOUND


def delete(h: Harness) -> ErrorCode:
    out: list[ErrorCode] = []
    h.run(lambda: group_admin.delete_group(h.shard, GROUP, out.append))
    return out[0]


def commit(
    h: Harness,
    member_id: str,
    epoch: int,
    partitions: list[int],
    version: int = 9,
    topic_name: str = "a",
) -> list[ErrorCode]:
    request = OffsetCommitRequest(
        group_id=GROUP,
        generation_id_or_member_epoch=epoch,
        member_id=member_id,
        topics=[
            OffsetCommitRequestTopic(
                name=topic_name,
                partitions=[
                    OffsetCommitRequestPartition(p, committed_offset=10) for p in partitions
                ],
            )
        ],
    )
    results: list[offsets.CommitResults] = []
    h.run(lambda: offsets.commit_offsets(h.shard, request, version, results.append))
    return [code for _, _, code in results[0]]


def test_offset_commits_check_the_member_and_its_epoch() -> None:
    h = Harness(A)
    c1 = h.client("m1", "a")
    c1.join()
    ok = ErrorCode.NONE
    assert commit(h, "m1", c1.epoch, [0, 5]) == [ok, ok]
    assert commit(h, "m1", c1.epoch + 1, [0]) == [ErrorCode.STALE_MEMBER_EPOCH]
    assert commit(h, "nobody", c1.epoch, [0]) == [ErrorCode.UNKNOWN_MEMBER_ID]
    assert commit(h, "", -1, [0]) == [ErrorCode.UNKNOWN_MEMBER_ID]  # admin, group not empty
    assert commit(h, "m1", c1.epoch, [0], version=8) == [ErrorCode.UNSUPPORTED_VERSION]
    # m2 joins; m1 gives up three partitions and moves to a new epoch
    c2 = h.client("m2", "a")
    c2.join()
    old_epoch = c1.epoch
    settle(c1, c2)
    assert c1.epoch > old_epoch
    kept = sorted(p for _, p in c1.partitions())
    given = sorted(p for _, p in c2.partitions())
    # a commit still in flight with the old epoch is fine for what m1 held then and holds
    # now (KIP-1251), not for partitions it gave away
    assert commit(h, "m1", old_epoch, kept) == [ok] * 3
    assert commit(h, "m1", old_epoch, given[:1]) == [ErrorCode.STALE_MEMBER_EPOCH]
    c1.leave()
    c2.leave()
    assert commit(h, "", -1, [0]) == [ok]  # the group is empty: an admin may reset offsets


def test_offset_fetch_by_a_member_checks_its_epoch() -> None:
    h = Harness(A)
    c1 = h.client("m1", "a")
    c1.join()

    def error(member_id: str | None, epoch: int) -> ErrorCode:
        return consumer_admin.offset_fetch_error(h.shard, GROUP, member_id, epoch)

    assert error("m1", c1.epoch) == ErrorCode.NONE
    assert error(None, -1) == ErrorCode.NONE
    assert error("m1", c1.epoch - 1) == ErrorCode.STALE_MEMBER_EPOCH
    assert error("m2", c1.epoch) == ErrorCode.UNKNOWN_MEMBER_ID


def test_offsets_of_subscribed_topics_do_not_expire() -> None:
    b = topic("b", 1)
    h = Harness(A, b)
    c1 = h.client("m1", "a")
    c1.join()
    commit(h, "m1", c1.epoch, [0])
    commit(h, "m1", c1.epoch, [0], topic_name="b")  # a topic m1 does not subscribe to
    h.now += CONFIG.offsets_retention_ms
    h.run(lambda: offsets.expire_offsets(h.shard))
    assert set(h.shard.offsets[GROUP]) == {("a", 0)}
    c1.leave()
    h.now += CONFIG.offsets_retention_ms
    h.run(lambda: offsets.expire_offsets(h.shard))
    assert GROUP not in h.shard.offsets
    assert GROUP not in h.shard.consumer_groups  # empty, with every offset expired


def classic_join(h: Harness) -> JoinGroupResponse:
    request = JoinGroupRequest(
        group_id=GROUP,
        session_timeout_ms=10_000,
        rebalance_timeout_ms=10_000,
        member_id="classic-1",
        protocol_type="consumer",
        protocols=[JoinGroupRequestProtocol("range", b"")],
    )

    def join() -> None:
        if not consumer_admin.before_classic_join(h.shard, GROUP, "token"):
            classic_ops.join_group(h.shard, request, 9, "c", "/h", "token")

    replies = h.run(join)
    assert len(replies) == 1
    assert isinstance(replies[0][1], JoinGroupResponse)
    return replies[0][1]


def test_classic_members_cannot_join_a_consumer_group() -> None:
    h = Harness(A)
    c1 = h.client("m1", "a")
    c1.join()
    commit(h, "m1", c1.epoch, [0])
    assert classic_join(h).error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    c1.leave()
    # once empty, the consumer group gives way (its offsets stay), as in Kafka
    assert classic_join(h).error_code == ErrorCode.UNKNOWN_MEMBER_ID  # an unknown classic id
    assert GROUP not in h.shard.consumer_groups
    assert ("a", 0) in h.shard.offsets[GROUP]


def test_a_consumer_member_replaces_an_empty_classic_group_and_keeps_its_offsets() -> None:
    h = Harness(A)
    assert commit(h, "", -1, [0]) == [ErrorCode.NONE]  # an admin's commit makes a simple group
    assert GROUP in h.shard.groups
    c1 = h.client("m1", "a")
    assert c1.join().error_code == ErrorCode.NONE
    assert GROUP not in h.shard.groups
    assert h.shard.offsets[GROUP][("a", 0)].offset == 10
    assert [r.type for r in h.log[:2]] == [rec.OFFSET_COMMIT, rec.GROUP_METADATA]
    loaded = reload(h)  # the offsets record came before the group's: load replaces the group
    assert GROUP not in loaded.groups
    assert loaded.consumer_groups[GROUP] == h.group


def test_a_non_empty_classic_group_is_not_a_consumer_group() -> None:
    h = Harness(A)
    request = JoinGroupRequest(
        group_id=GROUP,
        session_timeout_ms=10_000,
        rebalance_timeout_ms=10_000,
        member_id="",
        protocol_type="consumer",
        protocols=[JoinGroupRequestProtocol("range", b"")],
    )
    h.run(lambda: classic_ops.join_group(h.shard, request, 3, "c", "/h", "token"))
    assert h.client("m1", "a").join().error_code == ErrorCode.GROUP_ID_NOT_FOUND
    assert h.heartbeat(member_id="m1", member_epoch=3).error_code == ErrorCode.GROUP_ID_NOT_FOUND


def test_list_and_describe() -> None:
    h = Harness(A)
    c1, c2 = h.client("m1", "a"), h.client("m2", "a")
    c1.join()
    c2.join()
    listed = group_admin.list_groups(h.shard, set(), set())
    assert listed == [(GROUP, "consumer", "Reconciling", "consumer")]
    assert group_admin.list_groups(h.shard, {"stable"}, set()) == []
    assert group_admin.list_groups(h.shard, set(), {"classic"}) == []
    settle(c1, c2)
    assert group_admin.list_groups(h.shard, {"stable"}, {"consumer"})[0][2] == "Stable"
    classic_view = group_admin.describe_group(h.shard, GROUP, 6)
    assert classic_view.error_code == ErrorCode.GROUP_ID_NOT_FOUND  # Kafka: not a classic group
    described = consumer_admin.describe(h.shard, GROUP)
    assert (described.group_state, described.assignor_name) == ("Stable", "uniform")
    assert described.group_epoch == described.assignment_epoch == h.group.group_epoch
    by_id = {m.member_id: m for m in described.members}
    assert by_id.keys() == {"m1", "m2"}
    m1 = by_id["m1"]
    assert m1.subscribed_topic_names == ["a"]
    assert m1.client_host == "/127.0.0.1"
    assert [tp.topic_name for tp in m1.assignment.topic_partitions] == ["a"]
    assert m1.assignment == m1.target_assignment
    missing = consumer_admin.describe(h.shard, "nope")
    assert missing.error_code == ErrorCode.GROUP_ID_NOT_FOUND


def test_records_round_trip_through_the_codec() -> None:
    h = Harness(A)
    h.client("s", "a", instance_id="i", regex="a|b").join()
    for record in h.log:
        key, value = record.encode()
        decoded = rec.decode(key, value)
        assert isinstance(decoded, CoordinatorRecord)
        assert decoded == record
    assignments = [
        r.value for r in h.log if isinstance(r.value, ConsumerGroupCurrentMemberAssignmentValue)
    ]
    assert [tp.topic_id for v in assignments for tp in v.assigned_partitions] == [A.topic_id]
    assert [tp.assignment_epochs for v in assignments for tp in v.assigned_partitions] == [[2] * 6]
