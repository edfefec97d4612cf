"""Group administration with real admin clients: list, describe, offsets, delete.

confluent-kafka's AdminClient and kafka-python's KafkaAdminClient list and describe a live
group (state, members, assignment), read and alter its committed offsets, delete offsets
(refused for a subscribed topic while the group is active), and delete the group once it is
empty (refused before).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from kafka.admin import KafkaAdminClient
from kafka.errors import GroupSubscribedToTopicError, NoError, UnknownMemberIdError
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KpTopicPartition

from kbroker.testing import Broker
from protocol.error_codes import ErrorCode
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from tests.kbroker.group_members import ConfluentMember, Ledger, wait_for
from tests.kbroker.test_groups import produce
from tests.kbroker.wire import WireClient

pytestmark = pytest.mark.clients

TIMEOUT = 10


def test_confluent_admin_lists_describes_and_deletes_a_group(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic, group = new_topic(6), "admin-confluent"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    ledger = Ledger()
    members = [
        ConfluentMember(f"c{i}", ledger, broker.bootstrap_servers, group, topic) for i in range(2)
    ]
    for m in members:
        m.start()
    try:
        produce(broker.bootstrap_servers, topic, 60)
        wait_for(lambda: ledger.count() >= 60, 60, "the records")
        wait_for(lambda: all(len(m.assigned) == 3 for m in members), 30, "a 2-way split")
        listed = admin.list_consumer_groups(request_timeout=TIMEOUT).result()
        states = {g.group_id: g.state for g in listed.valid}
        assert states[group] == ConsumerGroupState.STABLE
        described = admin.describe_consumer_groups([group])[group].result()
        assert described.state == ConsumerGroupState.STABLE
        assert described.partition_assignor == "range"
        owned = {
            m.client_id: {tp.partition for tp in m.assignment.topic_partitions}
            for m in described.members
        }
        assert owned == {m.name: m.assigned for m in members}
        with pytest.raises(KafkaException, match="NON_EMPTY_GROUP"):
            admin.delete_consumer_groups([group])[group].result()
    finally:
        for m in members:
            m.leave()
    wanted = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(6)])
    offsets = admin.list_consumer_group_offsets([wanted])[group].result()
    assert {tp.partition: tp.offset for tp in offsets.topic_partitions} == {p: 10 for p in range(6)}
    admin.delete_consumer_groups([group])[group].result()
    listed = admin.list_consumer_groups(request_timeout=TIMEOUT).result()
    assert group not in {g.group_id for g in listed.valid}
    gone = admin.list_consumer_group_offsets([wanted])[group].result()
    assert {tp.offset for tp in gone.topic_partitions} == {-1001}  # OFFSET_INVALID: none left
    with pytest.raises(KafkaException, match="GROUP_ID_NOT_FOUND"):
        admin.delete_consumer_groups([group])[group].result()


def test_kafka_python_admin_offsets_and_group_lifecycle(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic, other, group = new_topic(6), new_topic(1), "admin-kafka-python"
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        check_kafka_python_admin(admin, broker, topic, other, group)
    finally:
        admin.close()


def check_kafka_python_admin(
    admin: KafkaAdminClient, broker: Broker, topic: str, other: str, group: str
) -> None:
    ledger = Ledger()
    member = ConfluentMember("k0", ledger, broker.bootstrap_servers, group, topic)
    member.start()
    try:
        produce(broker.bootstrap_servers, topic, 30)
        wait_for(lambda: ledger.count() >= 30, 60, "the records")
        description = admin.describe_groups([group])[group]
        assert description["group_state"] == "Stable"
        assert description["protocol_type"] == "consumer"
        assert description["protocol_data"] == "range"
        (described_member,) = description["members"]
        assert described_member["client_id"] == "k0"
        assert described_member["member_metadata"]["topics"] == [topic]
        assigned = described_member["member_assignment"]["assigned_partitions"]
        assert assigned == [{"topic": topic, "partitions": list(range(6))}]
        listed = {g["group_id"]: g for g in admin.list_groups()}
        assert listed[group]["group_state"] == "Stable"
        assert listed[group]["group_type"] == "classic"
        # an admin's commit (generation -1) is refused while the group has members
        tp0 = KpTopicPartition(topic, 0)
        refused = admin.alter_group_offsets(group, {tp0: OffsetAndMetadata(1, "", -1)})
        assert refused == {tp0: UnknownMemberIdError}
        assert admin.delete_group_offsets(group, [tp0]) == {tp0: GroupSubscribedToTopicError}
    finally:
        member.leave()
    # empty now: an admin may set and delete offsets, then delete the group
    tp_other = KpTopicPartition(other, 0)
    assert admin.alter_group_offsets(
        group, {tp_other: OffsetAndMetadata(7, "set by admin", -1)}
    ) == {tp_other: NoError}
    committed = admin.list_group_offsets(group)[group]
    assert committed[tp_other].offset == 7
    assert committed[tp_other].metadata == "set by admin"
    assert {tp.partition: om.offset for tp, om in committed.items() if tp.topic == topic} == {
        p: 5 for p in range(6)
    }
    assert admin.delete_group_offsets(group, [tp_other]) == {tp_other: NoError}
    assert tp_other not in admin.list_group_offsets(group)[group]
    empty = admin.describe_groups([group])[group]
    assert empty["group_state"] == "Empty" and empty["members"] == []
    assert admin.delete_groups([group]) == {group: "OK"}
    assert admin.list_group_offsets(group)[group] == {}
    assert admin.delete_groups([group]) == {group: "GroupIdNotFoundError"}


@pytest.mark.parametrize("version", [3, 4])
def test_find_coordinator_per_key_type(broker: Broker, version: int) -> None:
    """Groups and transactional ids are coordinated here; an unknown key type is
    INVALID_REQUEST. v4+ batches keys, v0-3 asks for one."""
    client = WireClient(broker.bootstrap_servers)
    try:
        found = {}
        for key_type, key in [(0, "a-group"), (1, "a-txn"), (7, "odd")]:
            request = FindCoordinatorRequest(key=key, key_type=key_type, coordinator_keys=[key])
            reply = client.call(request, version)
            one = reply.coordinators[0] if version >= 4 else reply
            found[key_type] = (one.error_code, one.node_id, one.port)
    finally:
        client.close()
    assert found[0] == (ErrorCode.NONE, 0, broker.port)
    assert found[1] == (ErrorCode.NONE, 0, broker.port)
    assert found[7] == (ErrorCode.INVALID_REQUEST, -1, -1)
