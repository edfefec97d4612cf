"""Committed offsets and group state survive a broker restart, clean or kill -9.

A group commits offsets with a metadata string; the broker is stopped (SIGTERM) or killed
(SIGKILL); after the restart the offsets and metadata read back unchanged, and a member of the
same group resumes exactly at them.
"""

from __future__ import annotations

import pathlib
import socket

import pytest
from confluent_kafka import Consumer, Producer
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KpTopicPartition

from tests.kbroker.group_members import ConfluentMember, Ledger, wait_for
from tests.kbroker.process import BrokerProcess

pytestmark = [pytest.mark.clients, pytest.mark.slow]

TOPIC, GROUP, PARTITIONS, PER_PARTITION = "events", "durable", 3, 20


def consume_and_commit(bootstrap: str, count: int) -> dict[int, int]:
    """Read `count` records as a group member and commit where it stopped, with metadata.

    kafka-python commits here: confluent-kafka 2.16 sends a metadata string with a trailing
    NUL byte (the broker keeps what it is sent, so the round trip would show it).
    """
    consumer = KafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=GROUP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    positions: dict[int, int] = {}
    read = 0
    while read < count:
        for tp, batch in consumer.poll(timeout_ms=1000, max_records=count - read).items():
            for record in batch:
                positions[tp.partition] = record.offset + 1
                read += 1
    consumer.commit(
        {
            KpTopicPartition(TOPIC, p): OffsetAndMetadata(o, f"meta-{p}-{o}", -1)
            for p, o in positions.items()
        }
    )
    consumer.close()
    return positions


def committed_with_metadata(bootstrap: str) -> dict[int, tuple[int, str]]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        found = admin.list_group_offsets(GROUP)[GROUP]
    finally:
        admin.close()
    return {tp.partition: (om.offset, om.metadata) for tp, om in found.items()}


def first_offsets_on_resume(bootstrap: str, partitions: int) -> dict[int, int]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": GROUP,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([TOPIC])
    first: dict[int, int] = {}
    try:
        while len(first) < partitions:
            msg = consumer.poll(10)
            assert msg is not None and not msg.error(), msg and msg.error()
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None
            first.setdefault(partition, offset)
    finally:
        consumer.close()
    return first


@pytest.mark.parametrize("how", ["clean", "kill -9"])
def test_offsets_and_metadata_survive_restart(tmp_path: pathlib.Path, how: str) -> None:
    proc = BrokerProcess(
        str(tmp_path / "data"),
        "offsets.topic.num.partitions=5",
        f"num.partitions={PARTITIONS}",
        "group.initial.rebalance.delay.ms=0",
    )
    try:
        bootstrap = proc.start()
        producer = Producer({"bootstrap.servers": bootstrap})
        for i in range(PARTITIONS * PER_PARTITION):
            producer.produce(TOPIC, str(i).encode(), partition=i % PARTITIONS)
        assert producer.flush(10) == 0
        positions = consume_and_commit(bootstrap, PARTITIONS * PER_PARTITION // 2)
        expected = {p: (o, f"meta-{p}-{o}") for p, o in positions.items()}
        assert committed_with_metadata(bootstrap) == expected
        if how == "clean":
            assert proc.stop() == 0
        else:
            proc.kill()
        bootstrap = proc.start()
        assert committed_with_metadata(bootstrap) == expected
        # where each partition with records left resumes: its committed offset (or 0)
        expected_starts = {
            p: positions.get(p, 0) for p in range(PARTITIONS) if positions.get(p, 0) < PER_PARTITION
        }
        assert first_offsets_on_resume(bootstrap, len(expected_starts)) == expected_starts
    finally:
        proc.ensure_stopped()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("how", ["clean", "kill -9"])
def test_a_live_member_carries_on_across_a_broker_restart(tmp_path: pathlib.Path, how: str) -> None:
    """The group's generation is reloaded from `__consumer_offsets`: a member that keeps
    heartbeating through a quick restart goes on consuming from its committed offsets."""
    port = free_port()
    proc = BrokerProcess(
        str(tmp_path / "data"),
        "offsets.topic.num.partitions=5",
        f"num.partitions={PARTITIONS}",
        "group.initial.rebalance.delay.ms=0",
        port=port,
    )
    ledger = Ledger()
    member: ConfluentMember | None = None
    try:
        bootstrap = proc.start()
        member = ConfluentMember("live", ledger, bootstrap, "live-group", TOPIC)
        produce_to(bootstrap, 30)
        member.start()
        wait_for(lambda: ledger.count() >= 30, 60, "the first records")
        rebalances = member.rebalances
        if how == "clean":
            assert proc.stop() == 0
        else:
            proc.kill()
        assert proc.start() == bootstrap
        produce_to(bootstrap, 30)
        wait_for(lambda: ledger.count() >= 60, 60, "the records after the restart")
        assert member.rebalances == rebalances, "the group was lost: the member had to rejoin"
    finally:
        if member is not None:
            member.leave()
        proc.ensure_stopped()
    ledger.check_exactly_once({p: 20 for p in range(PARTITIONS)})


def produce_to(bootstrap: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(count):
        producer.produce(TOPIC, str(i).encode(), partition=i % PARTITIONS)
    assert producer.flush(30) == 0
