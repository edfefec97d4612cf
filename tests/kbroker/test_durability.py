"""kill -9 during a produce storm loses nothing acknowledged with flush-before-ack."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from tests.kbroker.process import BrokerProcess

pytestmark = pytest.mark.clients
PARTITIONS = 3


def storm(
    bootstrap: str, topic: str, acked: dict[tuple[int, int], bytes], stop: threading.Event
) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": 3000,
            "retries": 0,
        }
    )

    def delivered(err: Any, msg: Any) -> None:
        if err is None:
            acked[(msg.partition(), msg.offset())] = msg.value()  # type checked by the reader

    i = 0
    while not stop.is_set():
        try:
            producer.produce(topic, value=b"storm-%d" % i, on_delivery=delivered)
            i += 1
        except BufferError:
            pass
        producer.poll(0.0005 if i % 100 == 0 else 0)
    producer.flush(5)


def read_all(bootstrap: str, topic: str) -> dict[tuple[int, int], bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "verify", "enable.auto.commit": False}
    )
    found: dict[tuple[int, int], bytes] = {}
    for p in range(PARTITIONS):
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        consumer.assign([TopicPartition(topic, p, 0)])
        while sum(1 for (q, _) in found if q == p) < high:
            messages = consumer.consume(1000, 5.0)
            assert messages, f"partition {p} stalled below its high watermark {high}"
            for m in messages:
                assert m.error() is None, m.error()
                value, partition, offset = m.value(), m.partition(), m.offset()
                assert value is not None and partition is not None and offset is not None
                found[(partition, offset)] = value
    consumer.close()
    return found


@pytest.fixture
def processes() -> Iterator[list[BrokerProcess]]:
    """Broker processes of a test, killed at the end whatever happened."""
    started: list[BrokerProcess] = []
    yield started
    for process in started:
        process.ensure_stopped()


def test_kill_9_loses_no_acknowledged_record(
    tmp_path: Path, processes: list[BrokerProcess]
) -> None:
    broker = BrokerProcess(str(tmp_path / "data"))
    processes.append(broker)
    bootstrap = broker.start()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic_config = {"kbroker.flush.before.ack": "true", "internal.segment.bytes": "65536"}
    futures = admin.create_topics([NewTopic("durable", PARTITIONS, 1, config=topic_config)])
    futures["durable"].result(10)
    acked: dict[tuple[int, int], bytes] = {}
    stop = threading.Event()
    producer = threading.Thread(target=storm, args=(bootstrap, "durable", acked, stop))
    producer.start()
    deadline = time.monotonic() + 30
    while len(acked) < 5000 and time.monotonic() < deadline:
        time.sleep(0.05)
    broker.kill()  # mid-storm: the producer is still sending
    stop.set()
    producer.join(30)
    assert len(acked) >= 5000, "the storm did not get going"

    restarted = BrokerProcess(str(tmp_path / "data"))
    processes.append(restarted)
    bootstrap = restarted.start()
    try:
        found = read_all(bootstrap, "durable")
    finally:
        assert restarted.stop() == 0
    missing = {k: v for k, v in acked.items() if found.get(k) != v}
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {list(missing)[:5]}"
    assert "unclean shutdown" in restarted.log_text()
