"""KIP-848 consumer groups in the sans-I/O coordinator: joins, epochs, reconciliation, timers."""

from __future__ import annotations

from typing import Any

import pytest

from kbroker.groups import records as rec
from kbroker.groups.consumer import ConsumerGroupState, MemberState
from kbroker.groups.coordinator import GroupConfig
from protocol.error_codes import ErrorCode
from tests.kbroker.groups.consumer_harness import (
    GROUP,
    Harness,
    assert_exclusive,
    settle,
    topic,
)

A = topic("a", 6)
B = topic("b", 3)


def test_first_member_gets_every_partition_at_a_new_epoch() -> None:
    h = Harness(A)
    c1 = h.client("m1", "a")
    response = c1.join()
    assert response.member_id == "m1"
    assert response.member_epoch == 2  # a new group is at epoch 1; the join bumps it
    assert response.heartbeat_interval_ms == 5000
    assert c1.owned == {A.topic_id: set(range(6))}
    assert h.group.state == ConsumerGroupState.STABLE
    assert [r.type for r in h.log] == [
        rec.CONSUMER_GROUP_MEMBER_METADATA,
        rec.CONSUMER_GROUP_METADATA,
        rec.CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER,
        rec.CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA,
        rec.CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT,
    ]
    # a heartbeat with nothing new changes nothing and carries no assignment
    written = len(h.log)
    assert c1.beat().assignment is None
    assert len(h.log) == written


def test_v0_join_gets_a_member_id_from_the_coordinator() -> None:
    h = Harness(A)
    response = h.heartbeat(
        version=0,
        member_id="",
        member_epoch=0,
        rebalance_timeout_ms=1000,
        subscribed_topic_names=["a"],
        topic_partitions=[],
    )
    assert response.error_code == ErrorCode.NONE
    assert response.member_id and len(response.member_id) == 22
    assert response.member_id in h.group.members


def test_a_partition_moves_only_after_its_owner_revoked_it() -> None:
    h = Harness(A)
    c1, c2 = h.client("m1", "a"), h.client("m2", "a")
    c1.join()
    c2.join()  # the target gives m2 half, but m1 still owns everything
    assert c2.owned == {}
    assert h.group.members["m2"].state == MemberState.UNRELEASED_PARTITIONS
    assert h.group.state == ConsumerGroupState.RECONCILING
    epoch = c1.epoch
    c1.beat()  # m1 is asked to revoke three partitions and stays at its epoch
    assert c1.epoch == epoch
    assert len(c1.partitions()) == 3
    assert h.group.members["m1"].state == MemberState.UNREVOKED_PARTITIONS
    # m2 still gets nothing: m1 has not said it let them go
    c2.beat()
    assert c2.owned == {}
    c1.beat()  # reports three partitions: the revocation is done, m1 moves to the new epoch
    assert c1.epoch == h.group.assignment_epoch
    c2.beat()
    assert len(c2.partitions()) == 3
    assert_exclusive(c1, c2)
    assert state(h) == ConsumerGroupState.STABLE


def state(h: Harness) -> ConsumerGroupState:
    return h.group.state


def test_a_member_that_does_not_heartbeat_is_fenced_after_its_session() -> None:
    h = Harness(A)
    c1, c2 = h.client("m1", "a"), h.client("m2", "a")
    c1.join()
    c2.join()
    settle(c1, c2)
    for _ in range(8):  # m1 keeps heartbeating, m2 went silent
        h.tick(5000)
        c1.beat()
    assert "m2" in h.group.members
    h.tick(5000)  # 45 s after m2's last heartbeat
    assert "m2" not in h.group.members
    c1.beat()
    assert c1.partitions() == {(A.topic_id, p) for p in range(6)}
    # m2 comes back: its member is gone, so it rejoins from nothing
    assert c2.beat().error_code == ErrorCode.UNKNOWN_MEMBER_ID
    c2.join()
    settle(c1, c2)
    assert len(c1.partitions()) == len(c2.partitions()) == 3


def test_a_member_that_does_not_revoke_in_time_is_fenced() -> None:
    h = Harness(A)
    c1 = h.client("m1", "a", rebalance_timeout_ms=10_000)
    c2 = h.client("m2", "a")
    c1.join()
    c2.join()
    response = h.heartbeat(
        member_id="m1",
        member_epoch=c1.epoch,
        topic_partitions=[*c1.reported()],  # still reports all six
    )
    assert h.group.members["m1"].state == MemberState.UNREVOKED_PARTITIONS
    assert response.assignment is not None
    h.tick(9_999)
    assert "m1" in h.group.members
    h.tick(1)
    assert "m1" not in h.group.members
    c2.beat()
    assert c2.partitions() == {(A.topic_id, p) for p in range(6)}


def test_leaving_hands_partitions_to_the_others() -> None:
    h = Harness(A)
    c1, c2 = h.client("m1", "a"), h.client("m2", "a")
    c1.join()
    c2.join()
    settle(c1, c2)
    epoch = h.group.group_epoch
    response = c2.leave()
    assert (response.member_id, response.member_epoch) == ("m2", -1)
    assert "m2" not in h.group.members
    assert h.group.group_epoch == epoch + 1
    assert not any(holder == "m2" for holder in h.group.owners.values())
    c1.beat()
    assert len(c1.partitions()) == 6
    assert h.shard.next_deadline() is not None  # m1's session; m2's timers are gone
    assert f"consumer-session {GROUP} m2" not in h.shard.timers


def test_static_member_leaves_temporarily_and_its_instance_takes_over() -> None:
    h = Harness(A)
    s1 = h.client("s1", "a", instance_id="i1")
    c2 = h.client("m2", "a")
    s1.join()
    c2.join()
    settle(s1, c2)
    held = s1.partitions()
    assert s1.leave(-2).member_epoch == -2
    away = h.group.members["s1"]
    assert away.member_epoch == -2
    c2.beat()
    assert c2.partitions().isdisjoint(held)  # nobody takes an away member's partitions
    # its next incarnation (a new member id) takes over, with the same partitions, no rebalance
    s1_again = h.client("s1-new", "a", instance_id="i1")
    epoch = h.group.group_epoch
    assert s1_again.join().error_code == ErrorCode.NONE
    assert "s1" not in h.group.members
    assert h.group.static_members == {"i1": "s1-new"}
    assert s1_again.partitions() == held
    assert h.group.group_epoch == epoch
    # the old incarnation is fenced
    old = h.heartbeat(member_id="s1", member_epoch=s1.epoch, instance_id="i1")
    assert old.error_code == ErrorCode.FENCED_INSTANCE_ID


def test_an_instance_id_in_use_is_unreleased() -> None:
    h = Harness(A)
    h.client("s1", "a", instance_id="i1").join()
    response = h.client("s2", "a", instance_id="i1").join()
    assert response.error_code == ErrorCode.UNRELEASED_INSTANCE_ID


def test_a_static_member_leaving_for_good_is_fenced() -> None:
    h = Harness(A)
    s1 = h.client("s1", "a", instance_id="i1")
    s1.join()
    s1.leave(-1)
    assert h.group.members == {}
    assert h.group.static_members == {}


def test_regex_subscriptions_follow_topics_as_they_appear() -> None:
    h = Harness(A, B, topic("__consumer_offsets", 50))
    c1 = h.client("m1", regex="a.*|__.*")
    c1.join()
    assert c1.partitions() == {(A.topic_id, p) for p in range(6)}  # internal topics never match
    ab = topic("ab", 2)
    h.add_topic(ab)
    c1.beat()  # the new topic changes the metadata hash: a new epoch and assignment
    assert {t for t, _ in c1.partitions()} == {A.topic_id, ab.topic_id}
    description = h.group.members["m1"]
    assert description.subscribed_topic_regex == "a.*|__.*"


def test_an_invalid_regex_is_refused() -> None:
    h = Harness(A)
    response = h.client("m1", regex="(unclosed").join()
    assert response.error_code == ErrorCode.INVALID_REGULAR_EXPRESSION
    assert GROUP not in h.shard.consumer_groups


def test_partitions_added_and_topics_deleted_reach_the_assignment() -> None:
    h = Harness(A, B)
    c1 = h.client("m1", "a", "b")
    c1.join()
    assert len(c1.partitions()) == 9
    h.add_topic(topic("a", 8))
    c1.beat()
    assert len(c1.partitions()) == 11
    del h.topics["b"]
    c1.beat()
    assert {t for t, _ in c1.partitions()} == {A.topic_id}


def test_changing_the_subscription_revokes_what_is_no_longer_wanted() -> None:
    h = Harness(A, B)
    c1 = h.client("m1", "a", "b")
    c1.join()
    response = h.heartbeat(
        member_id="m1",
        member_epoch=c1.epoch,
        subscribed_topic_names=["b"],
        topic_partitions=c1.reported(),
    )
    assert response.assignment is not None
    assert {tp.topic_id for tp in response.assignment.topic_partitions} == {B.topic_id}


def test_member_epochs_are_checked() -> None:
    h = Harness(A)
    c1, c2 = h.client("m1", "a"), h.client("m2", "a")
    c1.join()
    ahead = h.heartbeat(member_id="m1", member_epoch=c1.epoch + 1, topic_partitions=[])
    assert ahead.error_code == ErrorCode.FENCED_MEMBER_EPOCH
    c2.join()
    settle(c1, c2)
    # the response that moved m1 to its epoch was lost: its previous epoch with a subset of its
    # partitions is still accepted
    member = h.group.members["m1"]
    lost = h.heartbeat(
        member_id="m1", member_epoch=member.previous_member_epoch, topic_partitions=c1.reported()
    )
    assert lost.error_code == ErrorCode.NONE
    behind = h.heartbeat(member_id="m1", member_epoch=1, topic_partitions=c1.reported())
    assert behind.error_code == ErrorCode.FENCED_MEMBER_EPOCH
    unknown = h.heartbeat(member_id="nobody", member_epoch=3, topic_partitions=[])
    assert unknown.error_code == ErrorCode.UNKNOWN_MEMBER_ID


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"member_id": "", "member_epoch": 0}, ErrorCode.INVALID_REQUEST),
        ({"member_id": "m", "member_epoch": 0}, ErrorCode.INVALID_REQUEST),  # no timeout
        (
            {
                "member_id": "m",
                "member_epoch": 0,
                "rebalance_timeout_ms": 1,
                "topic_partitions": [],
            },
            ErrorCode.INVALID_REQUEST,  # neither names nor a pattern
        ),
        ({"member_id": "m", "member_epoch": -2}, ErrorCode.INVALID_REQUEST),  # no instance id
        ({"member_id": "m", "member_epoch": -3}, ErrorCode.INVALID_REQUEST),
        ({"member_id": "m", "member_epoch": 5, "instance_id": ""}, ErrorCode.INVALID_REQUEST),
        (
            {"member_id": "m", "member_epoch": 5, "server_assignor": "x"},
            ErrorCode.UNSUPPORTED_ASSIGNOR,
        ),
        ({"member_id": "m", "member_epoch": 5}, ErrorCode.GROUP_ID_NOT_FOUND),
    ],
)
def test_invalid_requests(fields: dict[str, Any], code: ErrorCode) -> None:
    assert Harness(A).heartbeat(**fields).error_code == code


def test_the_group_size_is_bounded() -> None:
    h = Harness(A, config=GroupConfig(consumer_max_size=1))
    h.client("m1", "a").join()
    assert h.client("m2", "a").join().error_code == ErrorCode.GROUP_MAX_SIZE_REACHED


def test_a_failed_append_changes_nothing() -> None:
    h = Harness(A)
    h.fail_appends = ErrorCode.NOT_LEADER_OR_FOLLOWER
    response = h.client("m1", "a").join()
    assert response.error_code == ErrorCode.NOT_COORDINATOR
    assert GROUP not in h.shard.consumer_groups


def test_the_preferred_assignor_is_the_members_choice() -> None:
    h = Harness(A)
    c1 = h.client("m2", "a", assignor="range")
    c2 = h.client("m1", "a", assignor="range")
    c1.join()
    c2.join()
    settle(c1, c2)
    assert c2.partitions() == {(A.topic_id, p) for p in range(3)}  # m1 sorts first: 0-2
    assert c1.partitions() == {(A.topic_id, p) for p in range(3, 6)}
