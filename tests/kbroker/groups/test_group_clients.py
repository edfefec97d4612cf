"""Real clients against the group coordinator: a consumer group's life and the group admin APIs.

confluent-kafka consumers join, sync, commit and leave; its AdminClient and kafka-python's
KafkaAdminClient then delete offsets (OffsetDelete) and groups (DeleteGroups), whose answers
come once their tombstones are appended.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from kafka.admin import KafkaAdminClient
from kafka.errors import GroupSubscribedToTopicError, NoError
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KpTopicPartition

from kbroker.testing import Broker

pytestmark = pytest.mark.clients

TIMEOUT = 10
_groups = itertools.count()


def produce(broker: Broker, topic: str, partitions: int, per_partition: int) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for p in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, f"{p}-{i}".encode(), partition=p)
    assert producer.flush(TIMEOUT) == 0


def consume_and_commit(consumer: Consumer, count: int) -> None:
    """Read `count` messages (as a group member), committing each synchronously."""
    seen = 0
    for _ in range(30):
        for msg in consumer.consume(num_messages=count - seen, timeout=1.0):
            assert msg.error() is None, msg.error()
            consumer.commit(message=msg, asynchronous=False)
            seen += 1
        if seen == count:
            return
    raise AssertionError(f"read {seen} of {count} messages")


def committed(admin: AdminClient, group: str, topic: str, partitions: int) -> list[int]:
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p) for p in range(partitions)]
    )
    [future] = admin.list_consumer_group_offsets([request]).values()
    result = future.result(TIMEOUT)
    return [tp.offset for tp in sorted(result.topic_partitions, key=lambda tp: tp.partition)]


def test_confluent_group_commits_then_delete_groups(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=2)
    produce(broker, topic, 2, 3)
    group = f"life-{next(_groups)}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        consume_and_commit(consumer, 6)
        assert committed(admin, group, topic, 2) == [3, 3]
        # a group with a member cannot be deleted
        [busy] = admin.delete_consumer_groups([group], request_timeout=TIMEOUT).values()
        with pytest.raises(KafkaException, match="NON_EMPTY_GROUP"):
            busy.result(TIMEOUT)
    finally:
        consumer.close()  # LeaveGroup: the group is Empty now
    [deleted] = admin.delete_consumer_groups([group], request_timeout=TIMEOUT).values()
    assert deleted.result(TIMEOUT) is None
    assert committed(admin, group, topic, 2) == [-1001, -1001]
    listed = admin.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
    assert group not in {g.group_id for g in listed.valid}
    [unknown] = admin.delete_consumer_groups([group], request_timeout=TIMEOUT).values()
    with pytest.raises(KafkaException, match="GROUP_ID_NOT_FOUND"):
        unknown.result(TIMEOUT)


def test_kafka_python_offset_delete_and_delete_groups(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    subscribed, other = new_topic(partitions=1), new_topic(partitions=1)
    group = f"admin-{next(_groups)}"
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        produce(broker, subscribed, 1, 2)
        consumer = Consumer(
            {
                "bootstrap.servers": broker.bootstrap_servers,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([subscribed])
        try:
            consume_and_commit(consumer, 2)
            # an admin commit (generation -1) is refused while the group has a member
            admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
            request = ConsumerGroupTopicPartitions(group, [TopicPartition(other, 0, 7)])
            [altered] = admin.alter_consumer_group_offsets([request]).values()
            [refused] = altered.result(TIMEOUT).topic_partitions
            assert refused.error is not None and refused.error.name() == "UNKNOWN_MEMBER_ID"
            # the active member subscribes to `subscribed`: its offsets cannot be deleted
            refusals = kp.delete_group_offsets(group, [KpTopicPartition(subscribed, 0)])
            assert refusals == {KpTopicPartition(subscribed, 0): GroupSubscribedToTopicError}
        finally:
            consumer.close()
        kp.alter_group_offsets(group, {KpTopicPartition(other, 0): OffsetAndMetadata(7, "", -1)})
        offsets = kp.list_group_offsets({group: None})[group]
        assert {tp.topic: o.offset for tp, o in offsets.items()} == {subscribed: 2, other: 7}
        done = kp.delete_group_offsets(group, [KpTopicPartition(subscribed, 0)])  # Empty now
        assert done == {KpTopicPartition(subscribed, 0): NoError}
        offsets = kp.list_group_offsets({group: None})[group]
        assert {tp.topic: o.offset for tp, o in offsets.items()} == {other: 7}
        results = dict(kp.delete_groups([group, f"{group}-unknown"]))
        assert results == {group: "OK", f"{group}-unknown": "GroupIdNotFoundError"}
        assert kp.list_group_offsets({group: None})[group] == {}
    finally:
        kp.close()


def _assignment_of(consumer: Consumer) -> set[tuple[str, int]]:
    return {(tp.topic or "", tp.partition or 0) for tp in consumer.assignment()}


def _poll_until(
    consumers: list[Consumer], done: Callable[[], bool], timeout_s: float = 30.0
) -> None:
    """Poll every consumer (rebalances progress only in poll) until `done()`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for consumer in consumers:
            consumer.poll(0.05)
        if done():
            return
    raise AssertionError(f"not done in {timeout_s} s: {[_assignment_of(c) for c in consumers]}")


def test_confluent_consumers_share_partitions_and_rebalance_when_one_leaves(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=6)
    group = f"share-{next(_groups)}"
    everything = {(topic, p) for p in range(6)}
    settings = {
        "bootstrap.servers": broker.bootstrap_servers,
        "group.id": group,
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 100,
    }
    consumers = [Consumer({**settings, "client.id": f"c{i}"}) for i in range(3)]
    for consumer in consumers:
        consumer.subscribe([topic])

    def shared(members: list[Consumer]) -> bool:
        shares = [_assignment_of(c) for c in members]
        union = set().union(*shares)
        return all(shares) and union == everything and sum(map(len, shares)) == len(union)

    try:
        _poll_until(consumers, lambda: shared(consumers))
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        [described] = admin.describe_consumer_groups([group]).values()
        description = described.result(TIMEOUT)
        assert description.state == ConsumerGroupState.STABLE
        assert len(description.members) == 3
        consumers.pop().close()  # LeaveGroup: the other two take its partitions
        _poll_until(consumers, lambda: shared(consumers))
        [described] = admin.describe_consumer_groups([group]).values()
        members = described.result(TIMEOUT).members
        assert {m.client_id for m in members} == {"c0", "c1"}
        reported = {
            (tp.topic, tp.partition) for m in members for tp in m.assignment.topic_partitions
        }
        assert reported == everything
    finally:
        for consumer in consumers:
            consumer.close()


def test_confluent_static_member_restart_gets_its_partitions_back_without_a_rebalance(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=4)
    group = f"static-{next(_groups)}"
    settings = {
        "bootstrap.servers": broker.bootstrap_servers,
        "group.id": group,
        "enable.auto.commit": False,
        "session.timeout.ms": 30000,  # the restart must come well within it
        "heartbeat.interval.ms": 100,
    }
    revoked: list[int] = []
    first = Consumer({**settings, "group.instance.id": "a"})
    other = Consumer({**settings, "group.instance.id": "b"})
    first.subscribe([topic])
    other.subscribe([topic], on_revoke=lambda _c, ps: revoked.append(len(ps)))
    restarted: Consumer | None = None
    try:
        _poll_until(
            [first, other],
            lambda: (
                len(_assignment_of(first) | _assignment_of(other)) == 4
                and bool(_assignment_of(first))
                and bool(_assignment_of(other))
            ),
        )
        share, old_id = _assignment_of(first), first.memberid()
        revoked.clear()  # forming the group may have taken two rebalances (no initial delay)
        first.close()  # a static member sends no LeaveGroup: its place is kept
        restarted = Consumer({**settings, "group.instance.id": "a"})
        restarted.subscribe([topic])
        live = [restarted, other]
        _poll_until(live, lambda: _assignment_of(restarted) == share)
        for _ in range(10):  # and nothing else happens: no rebalance, no revocation
            for consumer in live:
                consumer.poll(0.05)
        assert not any(revoked), revoked  # `other` kept its partitions throughout
        assert _assignment_of(other) == {(topic, p) for p in range(4)} - share
        assert restarted.memberid() != old_id
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        [described] = admin.describe_consumer_groups([group]).values()
        members = described.result(TIMEOUT).members
        assert {m.group_instance_id for m in members} == {"a", "b"}
        assert old_id not in {m.member_id for m in members}
    finally:
        other.close()
        if restarted is not None:
            restarted.close()
