"""Consumer-group members driven by real clients, each in its own thread, and a ledger of
what they consumed and committed, to check exactly-once consumption across rebalances.

Every member commits each record's offset synchronously right after reading it, so a record
may be read again only if its commit failed (the ledger tracks that). Members record their
assignment from the clients' rebalance callbacks.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.structs import TopicPartition as AioTopicPartition
from confluent_kafka import Consumer, KafkaException
from kafka import KafkaConsumer
from kafka.consumer.subscription_state import ConsumerRebalanceListener as KpListener
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KpTopicPartition

SESSION_TIMEOUT_MS = 6000  # the broker's group.min.session.timeout.ms
HEARTBEAT_MS = 500


class Ledger:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reads: list[tuple[str, int, int]] = []  # (member, partition, offset)
        self.failed_commits: set[tuple[int, int]] = set()

    def read(self, member: str, partition: int, offset: int) -> None:
        with self.lock:
            self.reads.append((member, partition, offset))

    def commit_failed(self, partition: int, offset: int) -> None:
        with self.lock:
            self.failed_commits.add((partition, offset))

    def count(self) -> int:
        with self.lock:
            return len({(p, o) for _, p, o in self.reads})

    def check_exactly_once(self, end_offsets: dict[int, int]) -> None:
        """Every offset below the end read; twice only if its first commit failed."""
        with self.lock:
            seen = Counter((p, o) for _, p, o in self.reads)
            failed = set(self.failed_commits)
        expected = {(p, o) for p, end in end_offsets.items() for o in range(end)}
        missing = expected - set(seen)
        assert not missing, f"never consumed: {sorted(missing)[:10]} ({len(missing)} in all)"
        twice = {k: n for k, n in seen.items() if n > 1 and k not in failed}
        assert not twice, f"read again after a successful commit: {sorted(twice)[:10]}"


class Member(threading.Thread):
    """One consumer in its own thread until `leave()`; `assigned` follows its callbacks."""

    def __init__(self, name: str, ledger: Ledger) -> None:
        super().__init__(name=name, daemon=True)
        self.ledger = ledger
        self.assigned: set[int] = set()
        self.rebalances = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def on_assign(self, partitions: list[int]) -> None:
        self.assigned |= set(partitions)
        self.rebalances += 1

    def on_revoke(self, partitions: list[int]) -> None:
        self.assigned -= set(partitions)
        self.rebalances += 1

    def run(self) -> None:
        try:
            self.consume()
        except BaseException as exc:
            self.error = exc

    def consume(self) -> None:
        raise NotImplementedError

    def leave(self, timeout: float = 30) -> None:
        self.stop.set()
        self.join(timeout)
        assert not self.is_alive(), f"{self.name} did not stop"
        if self.error is not None:
            raise AssertionError(f"{self.name} failed") from self.error


class ConfluentMember(Member):
    def __init__(
        self,
        name: str,
        ledger: Ledger,
        bootstrap: str,
        group: str,
        topic: str,
        **conf: Any,
    ) -> None:
        super().__init__(name, ledger)
        self.conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": name,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS,
            **conf,
        }
        self.topic = topic

    def consume(self) -> None:
        consumer = Consumer(self.conf)
        consumer.subscribe(
            [self.topic],
            on_assign=lambda c, tps: self.on_assign([tp.partition for tp in tps]),
            on_revoke=lambda c, tps: self.on_revoke([tp.partition for tp in tps]),
        )
        try:
            while not self.stop.is_set():
                msg = consumer.poll(0.1)
                if msg is None or msg.error():
                    continue
                partition, offset = msg.partition(), msg.offset()
                assert partition is not None and offset is not None
                self.ledger.read(self.name, partition, offset)
                try:
                    consumer.commit(message=msg, asynchronous=False)
                except KafkaException:
                    self.ledger.commit_failed(partition, offset)
        finally:
            consumer.close()  # a static member (group.instance.id) sends no LeaveGroup


class KafkaPythonMember(Member):
    def __init__(self, name: str, ledger: Ledger, bootstrap: str, group: str, topic: str) -> None:
        super().__init__(name, ledger)
        self.bootstrap, self.group, self.topic = bootstrap, group, topic

    def consume(self) -> None:
        member = self

        class Listener(KpListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
                member.on_revoke([tp.partition for tp in revoked])

            def on_partitions_assigned(self, assigned: Any) -> None:
                member.on_assign([tp.partition for tp in assigned])

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            client_id=self.name,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
        )
        consumer.subscribe([self.topic], listener=Listener())
        try:
            while not self.stop.is_set():
                batches = consumer.poll(timeout_ms=100)
                for tp, batch in batches.items():
                    for record in batch:
                        self.ledger.read(self.name, tp.partition, record.offset)
                        commit = {
                            KpTopicPartition(tp.topic, tp.partition): OffsetAndMetadata(
                                record.offset + 1, "", -1
                            )
                        }
                        try:
                            consumer.commit(commit)
                        except Exception:
                            self.ledger.commit_failed(tp.partition, record.offset)
        finally:
            consumer.close()


class AiokafkaMember(Member):
    def __init__(self, name: str, ledger: Ledger, bootstrap: str, group: str, topic: str) -> None:
        super().__init__(name, ledger)
        self.bootstrap, self.group, self.topic = bootstrap, group, topic

    def consume(self) -> None:
        asyncio.run(self._consume())

    async def _consume(self) -> None:
        member = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                member.on_revoke([tp.partition for tp in revoked])

            async def on_partitions_assigned(self, assigned: Any) -> None:
                member.on_assign([tp.partition for tp in assigned])

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            client_id=self.name,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
        )
        consumer.subscribe([self.topic], listener=Listener())
        await consumer.start()
        try:
            while not self.stop.is_set():
                batches = await consumer.getmany(timeout_ms=100)
                for tp, batch in batches.items():
                    for record in batch:
                        self.ledger.read(self.name, tp.partition, record.offset)
                        try:
                            await consumer.commit(
                                {AioTopicPartition(tp.topic, tp.partition): record.offset + 1}
                            )
                        except Exception:
                            self.ledger.commit_failed(tp.partition, record.offset)
        finally:
            await consumer.stop()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def assert_disjoint_cover(members: Sequence[Member], partitions: int) -> None:
    """A stable generation: every partition owned by exactly one member."""
    owned = Counter(p for m in members for p in m.assigned)
    assert set(owned) == set(range(partitions)), f"unowned: {set(range(partitions)) - set(owned)}"
    shared = [p for p, n in owned.items() if n > 1]
    assert not shared, f"partitions owned twice: {shared} ({[m.assigned for m in members]})"
