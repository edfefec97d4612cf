"""KIP-848 consumer groups with a real client: confluent-kafka (librdkafka) with
`group.protocol=consumer`, over real sockets, no mocks.

The acceptance scenario: a group over a 6-partition topic grows from 1 to 3 members and shrinks
back to 1 while messages keep coming; every message is counted once its offset commit succeeded,
and each must be counted exactly once across the group (a message whose commit failed may be
read again by the partition's next owner, and only then). Rebalance callbacks check that no
partition is ever held by two members at once. A regex subscription picks up a topic created
after it joined; a restart of the broker keeps the group (its member carries on) and its
committed offsets.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import confluent_kafka
import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupType,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConsumerGroupDescription

from kbroker.testing import Broker

pytestmark = pytest.mark.clients

PARTITIONS = 6
STEP_TIMEOUT_S = 30.0


def test_the_installed_librdkafka_speaks_the_consumer_protocol() -> None:
    assert confluent_kafka.libversion()[1] >= 0x020A0000  # 2.10: group.protocol=consumer (GA)


@dataclass
class Group:
    """Members of one group, polled round-robin from this thread (callbacks run in poll)."""

    bootstrap: str
    group_id: str
    topic: str
    members: dict[str, Consumer] = field(default_factory=dict)
    owner: dict[tuple[str, int], str] = field(default_factory=dict)
    counted: list[Record] = field(default_factory=list)
    read: Counter[Record] = field(default_factory=Counter)
    failed_commits: set[Record] = field(default_factory=set)

    def join(self, name: str, **config: str) -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": self.group_id,
                "group.protocol": "consumer",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 500,
                **config,
            }
        )

        def assigned(_: Consumer, partitions: list[TopicPartition]) -> None:
            for tp in partitions:
                holder = self.owner.setdefault((tp.topic, tp.partition), name)
                assert holder == name, f"{tp.topic}-{tp.partition}: {name} and {holder} own it"

        def revoked(_: Consumer, partitions: list[TopicPartition]) -> None:
            for tp in partitions:
                assert self.owner.pop((tp.topic, tp.partition)) == name

        consumer.subscribe([self.topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked)
        self.members[name] = consumer
        return consumer

    def leave(self, name: str) -> None:
        self.members.pop(name).close()

    def pump(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.state()}"
            for consumer in self.members.values():
                message = consumer.poll(0.02)
                if message is not None:
                    self._consume(consumer, message)

    def _consume(self, consumer: Consumer, message: Message) -> None:
        assert message.error() is None, message.error()
        record = _record(message)
        self.read[record] += 1
        try:
            consumer.commit(message=message, asynchronous=False)
        except KafkaException:
            self.failed_commits.add(record)  # its next owner reads it again
            return
        self.counted.append(record)

    def sizes(self) -> dict[str, int]:
        return {name: len(c.assignment()) for name, c in self.members.items()}

    def state(self) -> str:
        return f"assignment sizes {self.sizes()}, {len(self.counted)} counted"


Record = tuple[str, int, int]  # topic, partition, offset


def _record(message: Message) -> Record:
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset


def produce(bootstrap: str, topic: str, count: int, partitions: int = PARTITIONS) -> list[Record]:
    producer = Producer({"bootstrap.servers": bootstrap})
    written: list[Record] = []

    def delivered(error: object, message: Message) -> None:
        assert error is None, error
        written.append(_record(message))

    for i in range(count):
        producer.produce(topic, f"m{i}".encode(), partition=i % partitions, on_delivery=delivered)
    assert producer.flush(10) == 0
    assert len(written) == count
    return written


def describe(bootstrap: str, group_id: str) -> ConsumerGroupDescription:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.describe_consumer_groups([group_id])
    described: ConsumerGroupDescription = futures[group_id].result(10)
    return described


def assert_exactly_once(group: Group, produced: list[Record]) -> None:
    assert len(group.counted) == len(set(group.counted)), "a committed message was read twice"
    assert sorted(group.counted) == sorted(produced), "a message was lost"
    read_twice = {key for key, n in group.read.items() if n > 1}
    assert read_twice <= group.failed_commits, "read again although its commit succeeded"


def assert_committed_to_the_end(consumer: Consumer, topic: str) -> None:
    wanted = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    for tp in consumer.committed(wanted, timeout=10):
        _, high = consumer.get_watermark_offsets(tp, timeout=10)
        assert tp.offset == high, f"partition {tp.partition}: committed {tp.offset}, end {high}"


def test_a_group_scales_from_one_to_three_members_and_back_consuming_exactly_once(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(PARTITIONS)
    bootstrap = broker.bootstrap_servers
    group = Group(bootstrap, f"kip848-{topic}", topic)
    produced = produce(bootstrap, topic, 300)
    try:
        group.join("c1")
        group.pump(lambda: len(group.counted) >= 100, "c1 to consume")
        assert group.sizes() == {"c1": PARTITIONS}

        group.join("c2")
        group.join("c3")
        produced += produce(bootstrap, topic, 300)
        group.pump(
            lambda: len(group.counted) == 600 and set(group.sizes().values()) == {2},
            "three members with two partitions each",
        )
        described = describe(bootstrap, group.group_id)
        assert described.type == ConsumerGroupType.CONSUMER
        assert described.state == ConsumerGroupState.STABLE
        assert described.partition_assignor == "uniform"
        assert sorted(len(m.assignment.topic_partitions) for m in described.members) == [2, 2, 2]

        group.leave("c2")
        group.leave("c3")
        produced += produce(bootstrap, topic, 300)
        group.pump(
            lambda: len(group.counted) == 900 and group.sizes() == {"c1": PARTITIONS},
            "c1 to take everything back",
        )
        assert_exactly_once(group, produced)
        assert_committed_to_the_end(group.members["c1"], topic)
    finally:
        for name in list(group.members):
            group.leave(name)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_groups().result(10)
    mine = [g for g in listed.valid if g.group_id == group.group_id]
    assert [(g.type, g.state) for g in mine] == [
        (ConsumerGroupType.CONSUMER, ConsumerGroupState.EMPTY)
    ]


def test_a_regex_subscription_takes_topics_created_later(broker: Broker) -> None:
    prefix = f"rx{uuid.uuid4().hex[:8]}"

    def create(name: str) -> None:
        broker.run(lambda b: b.create_topic(name, 2, {})).result(10)
        produce(broker.bootstrap_servers, name, 2, partitions=2)

    create(f"{prefix}-a")
    create(f"other-{prefix}")
    group = Group(broker.bootstrap_servers, f"kip848-{prefix}", f"^{prefix}-.*")
    group.join("c1")
    group.pump(lambda: len(group.counted) == 2, "the matching topic")
    create(f"{prefix}-b")  # a new epoch: the topic metadata changed
    group.pump(lambda: len(group.counted) == 4, "the topic created later")
    topics = {tp.topic for tp in group.members["c1"].assignment()}
    assert topics == {f"{prefix}-a", f"{prefix}-b"}
    group.leave("c1")


@pytest.fixture
def restartable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Broker]]:
    """Start a broker on the same data directory and port, again and again."""
    data_dir = str(tmp_path_factory.mktemp("kip848"))
    running: list[Broker] = []
    port: list[int] = []

    def start() -> Broker:
        if running:
            running.pop().stop()
        overrides = {"listeners": f"PLAINTEXT://localhost:{port[0]}"} if port else {}
        broker = Broker(overrides, data_dir=data_dir).start()
        port[:] = [broker.port]
        running.append(broker)
        return broker

    yield start
    for broker in running:
        broker.stop()


def test_a_restart_keeps_the_group_and_its_committed_offsets(
    restartable: Callable[[], Broker],
) -> None:
    broker = restartable()
    bootstrap = broker.bootstrap_servers
    broker.run(lambda b: b.create_topic("orders", PARTITIONS, {})).result(10)
    group = Group(bootstrap, "kip848-restart", "orders")
    produced = produce(bootstrap, "orders", 120)
    group.join("c1")
    group.pump(lambda: len(group.counted) >= 60, "c1 to consume half")
    before = describe(bootstrap, group.group_id).members[0].member_id

    restartable()  # same data, same port; c1 stays connected through it
    produced += produce(bootstrap, "orders", 60)
    group.pump(lambda: len(group.counted) == 180, "c1 to go on after the restart")
    after = describe(bootstrap, group.group_id)
    assert [m.member_id for m in after.members] == [before]  # the loaded group kept c1
    assert after.state == ConsumerGroupState.STABLE
    group.leave("c1")

    restartable()
    produced += produce(bootstrap, "orders", 60)
    group.join("c2")  # a newcomer starts from the committed offsets
    group.pump(lambda: len(group.counted) == 240, "c2 to read what is new")
    assert_exactly_once(group, produced)
    assert_committed_to_the_end(group.members["c2"], "orders")
    group.leave("c2")
