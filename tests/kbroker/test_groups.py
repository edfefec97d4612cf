"""Consumer groups with real clients: disjoint shares, exactly-once across rebalances.

Each client library runs the same scenario: 3 members on a 6-partition topic, then a 4th
joins, then one leaves; messages are produced in each phase, and every member commits each
record right after reading it. Afterwards every offset was read, none twice after a
successful commit, and each stable generation owned every partition exactly once.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from kbroker.testing import Broker
from tests.kbroker.group_members import (
    SESSION_TIMEOUT_MS,
    AiokafkaMember,
    ConfluentMember,
    KafkaPythonMember,
    Ledger,
    Member,
    assert_disjoint_cover,
    wait_for,
)

pytestmark = pytest.mark.clients

PARTITIONS = 6
PER_PHASE = 120
_groups = itertools.count()

MemberFactory = Callable[[str, Ledger, str, str, str], Member]


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, f"v{i}".encode(), key=str(i).encode(), partition=i % PARTITIONS)
    assert producer.flush(10) == 0


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], 10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        consumer.close()


def at_least(ledger: Ledger, count: int) -> bool:
    return ledger.count() >= count


def run_scenario(broker: Broker, topic: str, make: MemberFactory) -> None:
    bootstrap = broker.bootstrap_servers
    group = f"g{next(_groups)}"
    ledger = Ledger()
    members = [make(f"m{i}", ledger, bootstrap, group, topic) for i in range(3)]
    for m in members:
        m.start()
    total = 0
    try:
        for phase in ("three members", "a fourth joins", "one leaves"):
            if phase == "a fourth joins":
                members.append(make("m3", ledger, bootstrap, group, topic))
                members[-1].start()
            elif phase == "one leaves":
                members.pop(0).leave()
            produce(bootstrap, topic, PER_PHASE)
            total += PER_PHASE
            wait_for(partial(at_least, ledger, total), 60, f"{total} records ({phase})")
            wait_for(
                lambda: sorted(p for m in members for p in m.assigned) == list(range(PARTITIONS)),
                30,
                f"a stable assignment ({phase})",
            )
            assert_disjoint_cover(members, PARTITIONS)
    finally:
        for m in members:
            m.leave()
    per_partition = total // PARTITIONS
    ledger.check_exactly_once({p: per_partition for p in range(PARTITIONS)})
    assert committed(bootstrap, group, topic) == {p: per_partition for p in range(PARTITIONS)}


def test_confluent_kafka_group(broker: Broker, new_topic: Callable[..., str]) -> None:
    run_scenario(broker, new_topic(PARTITIONS), ConfluentMember)


def test_confluent_kafka_cooperative_sticky(broker: Broker, new_topic: Callable[..., str]) -> None:
    def make(name: str, ledger: Ledger, bootstrap: str, group: str, topic: str) -> Member:
        return ConfluentMember(
            name,
            ledger,
            bootstrap,
            group,
            topic,
            **{"partition.assignment.strategy": "cooperative-sticky"},
        )

    run_scenario(broker, new_topic(PARTITIONS), make)


def test_confluent_kafka_static_members(broker: Broker, new_topic: Callable[..., str]) -> None:
    def make(name: str, ledger: Ledger, bootstrap: str, group: str, topic: str) -> Member:
        return ConfluentMember(name, ledger, bootstrap, group, topic, **{"group.instance.id": name})

    run_scenario(broker, new_topic(PARTITIONS), make)


def test_kafka_python_group(broker: Broker, new_topic: Callable[..., str]) -> None:
    run_scenario(broker, new_topic(PARTITIONS), KafkaPythonMember)


def test_aiokafka_group(broker: Broker, new_topic: Callable[..., str]) -> None:
    run_scenario(broker, new_topic(PARTITIONS), AiokafkaMember)


def test_static_member_restart_within_session_timeout_keeps_assignment(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    """KIP-345: a static member that restarts before its session times out gets its old
    partitions back and the other members see no rebalance at all."""
    topic = new_topic(PARTITIONS)
    bootstrap, group, ledger = broker.bootstrap_servers, f"g{next(_groups)}", Ledger()

    def make(name: str) -> ConfluentMember:
        return ConfluentMember(name, ledger, bootstrap, group, topic, **{"group.instance.id": name})

    members = [make(f"s{i}") for i in range(3)]
    for m in members:
        m.start()
    try:
        produce(bootstrap, topic, PER_PHASE)
        wait_for(lambda: ledger.count() >= PER_PHASE, 60, "the first records")
        wait_for(lambda: all(len(m.assigned) == 2 for m in members), 30, "a 3-way split")
        assert_disjoint_cover(members, PARTITIONS)
        before = {m.name: m.rebalances for m in members[1:]}
        old_partitions = set(members[0].assigned)
        members[0].leave()  # closes without LeaveGroup: it is static
        members[0] = make("s0")
        members[0].start()
        wait_for(lambda: members[0].assigned == old_partitions, 30, "s0 to get its partitions")
        produce(bootstrap, topic, PER_PHASE)
        wait_for(lambda: ledger.count() >= 2 * PER_PHASE, 60, "the second records")
        assert {m.name: m.rebalances for m in members[1:]} == before, "others rebalanced"
        # the new incarnation replaced the old member (no fourth member, no lingering old id)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        described = admin.describe_consumer_groups([group])[group].result(10)
        assert sorted(m.group_instance_id for m in described.members) == ["s0", "s1", "s2"]
    finally:
        for m in members:
            m.leave()
    ledger.check_exactly_once({p: 2 * PER_PHASE // PARTITIONS for p in range(PARTITIONS)})


def test_killed_member_is_removed_after_its_session_timeout(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    """SIGKILL a member: after its session timeout its partitions go to the survivors, which
    resume from its committed offsets (what it read but had not committed is read again)."""
    topic = new_topic(PARTITIONS)
    bootstrap, group, ledger = broker.bootstrap_servers, f"g{next(_groups)}", Ledger()
    victim = subprocess.Popen(
        [sys.executable, "-m", "tests.kbroker.group_consumer_proc", bootstrap, group, topic],
        stdout=subprocess.PIPE,
        text=True,
    )
    survivors: list[Member] = []
    try:
        assert victim.stdout is not None
        line = victim.stdout.readline()
        assert line.startswith("assigned"), line
        survivors = [ConfluentMember(f"m{i}", ledger, bootstrap, group, topic) for i in range(2)]
        for m in survivors:
            m.start()
        produce(bootstrap, topic, PER_PHASE)
        wait_for(lambda: sum(len(m.assigned) for m in survivors) == 4, 30, "a 3-way split")
        time.sleep(1)  # let the victim read and commit some records
        killed_at = time.monotonic()
        victim.kill()
        out, _ = victim.communicate(timeout=10)
        for entry in out.splitlines():
            if entry.startswith("read "):
                _, p, o = entry.split()
                ledger.read("victim", int(p), int(o))
        wait_for(lambda: sum(len(m.assigned) for m in survivors) == PARTITIONS, 30, "the survivors")
        waited = time.monotonic() - killed_at
        assert waited >= SESSION_TIMEOUT_MS / 1000 - 1, f"reassigned after only {waited:.1f} s"
        assert_disjoint_cover(survivors, PARTITIONS)
        wait_for(lambda: ledger.count() >= PER_PHASE, 60, "every record")
    finally:
        victim.kill()
        victim.wait()
        for m in survivors:
            m.leave()
    ledger.check_exactly_once({p: PER_PHASE // PARTITIONS for p in range(PARTITIONS)})
