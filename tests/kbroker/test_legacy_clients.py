"""Produce v0-2 and Fetch v0-3: clients from before Kafka 0.11, speaking magic 0/1 message sets.

kafka-python pinned to an old `api_version` sends the old request versions and message formats
(the broker records which versions it served, so a client quietly using v3+ fails the test).
The log stores magic 2 only: old message sets are up-converted on produce and down-converted on
fetch, so old and new clients read each other's records.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition

from kbroker.broker import Broker as KBroker
from kbroker.context import RequestContext
from kbroker.testing import Broker
from protocol import legacy, records
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from tests.kbroker.wire import WireClient

pytestmark = pytest.mark.clients

TIMEOUT = 10.0
BASE_TS = 1_700_000_000_000
N = 50
_names = itertools.count()

# kafka-python's api_version -> (Produce version, Fetch version, message magic) it then uses
CLIENTS = {
    (0, 8, 2): (0, 0, 0),
    (0, 9): (1, 1, 0),
    (0, 10, 0): (2, 2, 1),
    (0, 10, 1): (2, 3, 1),
}


class Served:
    """The broker's Produce and Fetch handlers, wrapped to record the versions they served."""

    def __init__(self) -> None:
        self.versions: set[tuple[int, int]] = set()

    def install(self, broker: KBroker) -> None:
        for key in (ApiKey.PRODUCE, ApiKey.FETCH):
            handler = broker.handlers[key]
            inner = handler.fn

            async def spy(ctx: RequestContext, request: Any, inner: Any = inner) -> Any:
                self.versions.add((ctx.header.request_api_key, ctx.api_version))
                return await inner(ctx, request)

            broker.handlers[key] = dataclasses.replace(handler, fn=spy)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Broker, Served]]:
    with Broker() as b:
        spy = Served()
        b.run(spy.install).result(TIMEOUT)
        yield b, spy


def new_topic(kb: Broker) -> str:
    name = f"legacy-{next(_names)}"
    kb.run(lambda b: b.create_topic(name, 1, {})).result(TIMEOUT)
    return name


def rows(topic: str) -> list[tuple[bytes | None, bytes]]:
    return [
        (None if i % 9 == 4 else b"k%d" % i, b"%s-value-%d" % (topic.encode(), i)) for i in range(N)
    ]


def old_consume(kb: Broker, topic: str, api: tuple[int, ...], start: int, count: int) -> list[Any]:
    """Read `count` records from `start` (seek: old ListOffsets v0 is not served)."""
    consumer = KafkaConsumer(bootstrap_servers=kb.bootstrap_servers, api_version=api)
    try:  # closed even when decoding fails, so no socket leaks into later tests' warnings
        tp = KpTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, start)
        found: list[Any] = []
        deadline = time.monotonic() + TIMEOUT
        while len(found) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                found.extend(batch)
    finally:
        consumer.close()
    return found


@pytest.mark.parametrize("api", list(CLIENTS), ids=lambda v: ".".join(map(str, v)))
@pytest.mark.parametrize("codec", ["none", "gzip"])
def test_old_client_round_trip(
    served: tuple[Broker, Served], api: tuple[int, ...], codec: str
) -> None:
    kb, spy = served
    produce_version, fetch_version, magic = CLIENTS[api]
    topic = new_topic(kb)
    expected = rows(topic)
    spy.versions.clear()
    producer = KafkaProducer(
        bootstrap_servers=kb.bootstrap_servers,
        api_version=api,
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
    )
    futures = [
        producer.send(topic, key=k, value=v, timestamp_ms=BASE_TS + i if magic else None)
        for i, (k, v) in enumerate(expected)
    ]
    producer.flush(TIMEOUT)
    assert [f.get(TIMEOUT).offset for f in futures] == list(range(N))
    producer.close()

    found = old_consume(kb, topic, api, 3, N - 3)  # mid-batch: earlier records are dropped
    assert [(m.offset, m.key, m.value) for m in found] == [
        (i, k, v) for i, (k, v) in enumerate(expected)
    ][3:]
    if magic:
        assert [m.timestamp for m in found] == [BASE_TS + i for i in range(3, N)]
    assert spy.versions == {(ApiKey.PRODUCE, produce_version), (ApiKey.FETCH, fetch_version)}

    consumer = Consumer(
        {
            "bootstrap.servers": kb.bootstrap_servers,
            "group.id": "legacy",
            "enable.auto.commit": False,  # no group coordinator yet: close() would wait for one
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    modern = consumer.consume(N, TIMEOUT)
    consumer.close()
    assert [(m.offset(), m.key(), m.value()) for m in modern] == [
        (i, k, v) for i, (k, v) in enumerate(expected)
    ]
    if magic:
        assert [m.timestamp()[1] for m in modern] == [BASE_TS + i for i in range(N)]


def test_new_records_read_by_old_clients(served: tuple[Broker, Served]) -> None:
    """Magic-2 batches from a current client, down-converted: headers go, the rest stays."""
    kb, spy = served
    topic = new_topic(kb)
    expected = rows(topic)
    producer = Producer(
        {"bootstrap.servers": kb.bootstrap_servers, "compression.type": "lz4", "linger.ms": 5}
    )
    for i, (k, v) in enumerate(expected):
        producer.produce(topic, v, k, partition=0, timestamp=BASE_TS + i, headers=[("h", b"x")])
    assert producer.flush(TIMEOUT) == 0
    for api in [(0, 9), (0, 10, 1)]:
        spy.versions.clear()
        found = old_consume(kb, topic, api, 0, N)
        assert [(m.offset, m.key, m.value) for m in found] == [
            (i, k, v) for i, (k, v) in enumerate(expected)
        ]
        assert (ApiKey.FETCH, CLIENTS[api][1]) in spy.versions


def produce_v2(client: WireClient, topic: str, message_set: bytes) -> Any:
    request = ProduceRequest(
        acks=1,
        timeout_ms=5000,
        topic_data=[
            TopicProduceData(name=topic, partition_data=[PartitionProduceData(0, message_set)])
        ],
    )
    return client.call(request, 2).responses[0].partition_responses[0]


def fetch_partition(client: WireClient, topic: str, version: int) -> Any:
    request = FetchRequest(
        max_wait_ms=0,
        min_bytes=0,
        max_bytes=1 << 20,
        topics=[
            FetchTopic(
                topic=topic,
                partitions=[FetchPartition(0, fetch_offset=0, partition_max_bytes=1 << 20)],
            )
        ],
    )
    return client.call(request, version).responses[0].partitions[0]


def test_bad_message_sets_and_zstd(served: tuple[Broker, Served]) -> None:
    kb, _ = served
    topic = new_topic(kb)
    client = WireClient(kb.bootstrap_servers)
    good = legacy.build_message_set([(b"k", b"v", (), BASE_TS)], magic=1)
    flipped = bytearray(good)
    flipped[-1] ^= 1  # the value's last byte: the message CRC no longer holds
    assert produce_v2(client, topic, bytes(flipped)).error_code == ErrorCode.CORRUPT_MESSAGE
    assert produce_v2(client, topic, b"").error_code == ErrorCode.CORRUPT_MESSAGE
    answer = produce_v2(client, topic, good)
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 0)

    stored = fetch_partition(client, topic, 12)  # what the log holds: one magic-2 batch
    header, decoded = records.decode_batch(bytes(stored.records))
    assert header.magic == 2 and [(r.key, r.value) for r in decoded] == [(b"k", b"v")]

    zstd = records.build_batch([(b"z", b"zz", [], BASE_TS)], compression=records.Compression.ZSTD)
    request = ProduceRequest(
        acks=1,
        timeout_ms=5000,
        topic_data=[TopicProduceData(name=topic, partition_data=[PartitionProduceData(0, zstd)])],
    )
    assert client.call(request, 9).responses[0].partition_responses[0].error_code == 0
    old = fetch_partition(client, topic, 3)  # the zstd batch cannot be said in magic 1
    assert old.error_code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    client.close()
