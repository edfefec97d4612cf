"""Real clients produce 10,000 records per codec and read back exactly what they wrote.

Each record has a key (none on every 11th), a value (null on every 7th), headers and a
timestamp; the topic has one partition so order is total. kcat cannot set per-record timestamps
or headers per line in produce mode, so its check covers keys, values and null values.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as AioTopicPartition
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition

from kbroker.testing import Broker

pytestmark = pytest.mark.clients

N = 10_000
BASE_TS = 1_700_000_000_000
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
Headers = list[tuple[str, str | bytes | None]]
Row = tuple[bytes | None, bytes | None, Headers, int]


def expected_rows() -> list[Row]:
    rows = []
    for i in range(N):
        key = None if i % 11 == 5 else b"key-%d" % i
        value = None if i % 7 == 0 and key is not None else b"value-%d-" % i + b"x" * (i % 50)
        headers: Headers = [("n", b"%d" % i), ("k", b"")]
        rows.append((key, value, headers, BASE_TS + i))
    return rows


EXPECTED = expected_rows()


def wait_until(done: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_kafka(broker: Broker, new_topic: Callable[..., str], codec: str) -> None:
    topic = new_topic()
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap_servers, "compression.type": codec, "linger.ms": 5}
    )
    errors: list[Any] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err)

    for key, value, headers, ts in EXPECTED:
        producer.produce(
            topic, value=value, key=key, headers=headers, timestamp=ts, on_delivery=delivered
        )
        producer.poll(0)
    assert producer.flush(30) == 0 and errors == []
    # librdkafka requires a group.id even for assign(); nothing is committed in this test
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": "unused",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    got: list[Row] = []
    deadline = time.monotonic() + 60
    while len(got) < N and time.monotonic() < deadline:
        for msg in consumer.consume(1000, 0.5):
            assert msg.error() is None, msg.error()
            received = msg.headers() or []
            assert isinstance(received, list)
            got.append((msg.key(), msg.value(), received, msg.timestamp()[1]))
    consumer.close()
    assert got == EXPECTED


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python(broker: Broker, new_topic: Callable[..., str], codec: str) -> None:
    topic = new_topic()
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap_servers,
        compression_type=None if codec == "none" else codec,
        enable_idempotence=False,  # InitProducerId arrives with the exactly-once work
        linger_ms=5,
    )
    futures = [
        producer.send(topic, value=v, key=k, headers=h, timestamp_ms=ts) for k, v, h, ts in EXPECTED
    ]
    producer.flush(60)
    assert [f.get(10).offset for f in futures] == list(range(N))
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, consumer_timeout_ms=5000)
    consumer.assign([KpTopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    got: list[Row] = []
    for msg in consumer:
        got.append((msg.key, msg.value, list(msg.headers), msg.timestamp))
        if len(got) == N:
            break
    consumer.close()
    assert got == EXPECTED


async def _aiokafka_roundtrip(bootstrap: str, topic: str, codec: str) -> list[Row]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value=v, key=k, headers=h, timestamp_ms=ts)
            for k, v, h, ts in EXPECTED
        ]
        offsets = [(await f).offset for f in futures]
        assert offsets == list(range(N))
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    got: list[Row] = []
    try:
        consumer.assign([AioTopicPartition(topic, 0)])
        deadline = time.monotonic() + 60
        while len(got) < N and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                got += [(m.key, m.value, list(m.headers), m.timestamp) for m in messages]
    finally:
        await consumer.stop()
    return got


@pytest.mark.parametrize("codec", CODECS)
def test_aiokafka(broker: Broker, new_topic: Callable[..., str], codec: str) -> None:
    topic = new_topic()
    assert asyncio.run(_aiokafka_roundtrip(broker.bootstrap_servers, topic, codec)) == EXPECTED


@pytest.mark.parametrize("codec", CODECS)
def test_kcat(broker: Broker, new_topic: Callable[..., str], codec: str) -> None:
    topic = new_topic()
    lines = [b"%s\t%s" % (k or b"", v or b"") for k, v, _, _ in EXPECTED]
    produce = ["kcat", "-b", broker.bootstrap_servers, "-t", topic, "-P", "-K", "\t", "-Z"]
    subprocess.run([*produce, "-z", codec], input=b"\n".join(lines) + b"\n", check=True, timeout=60)
    consume = ["kcat", "-b", broker.bootstrap_servers, "-t", topic, "-C", "-e", "-o", "beginning"]
    fmt = "%o|%K|%S|%k|%s\\n"  # offset, key length (-1 if null), value length (-1 if null)
    out = subprocess.run([*consume, "-f", fmt], capture_output=True, check=True, timeout=60)
    got = []
    for line in out.stdout.splitlines():
        offset, klen, vlen, rest = line.split(b"|", 3)
        key, _, value = rest.partition(b"|")
        got.append((int(offset), None if klen == b"-1" else key, None if vlen == b"-1" else value))
    # kcat -Z sends an empty key or value as null
    want = [(i, k or None, v or None) for i, (k, v, _, _) in enumerate(EXPECTED)]
    assert got == want
