"""Topic configs that change what the broker stores or accepts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kbroker.testing import Broker
from protocol import records
from protocol.error_codes import ErrorCode
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from tests.kbroker.wire import WireClient


def produce(client: WireClient, topic: str, batch: bytes) -> Any:
    request = ProduceRequest(
        acks=1,
        timeout_ms=5000,
        topic_data=[TopicProduceData(name=topic, partition_data=[PartitionProduceData(0, batch)])],
    )
    return client.call(request, 9).responses[0].partition_responses[0]


def fetch_bytes(client: WireClient, topic: str) -> bytes:
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
    partition = client.call(request, 12).responses[0].partitions[0]
    assert partition.error_code == ErrorCode.NONE
    return bytes(partition.records)


def rows(n: int, ts: int, size: int = 10) -> list[records.RecordTuple]:
    return [(b"k%d" % i, b"v" * size, [], ts + i) for i in range(n)]


def test_log_append_time(broker: Broker, new_topic: Callable[..., str]) -> None:
    topic = new_topic(configs={"message.timestamp.type": "LogAppendTime"})
    client = WireClient(broker.bootstrap_servers)
    before = int(time.time() * 1000)
    result = produce(client, topic, records.build_batch(rows(3, 1_000)))
    after = int(time.time() * 1000)
    assert result.error_code == ErrorCode.NONE
    assert before <= result.log_append_time_ms <= after
    stored = fetch_bytes(client, topic)
    client.close()
    header, decoded = records.decode_batch(stored)
    assert header.timestamp_type == records.TimestampType.LOG_APPEND_TIME
    assert header.max_timestamp == result.log_append_time_ms
    assert [r.timestamp for r in decoded] == [result.log_append_time_ms] * 3
    records.validate_batch(stored)  # the CRC was recomputed after stamping


def test_create_time_keeps_producer_timestamps(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    client = WireClient(broker.bootstrap_servers)
    now = int(time.time() * 1000)
    result = produce(client, topic, records.build_batch(rows(2, now - 5000)))
    assert result.log_append_time_ms == -1
    _, decoded = records.decode_batch(fetch_bytes(client, topic))
    client.close()
    assert [r.timestamp for r in decoded] == [now - 5000, now - 4999]


def test_topic_compression_type_recompresses(broker: Broker, new_topic: Callable[..., str]) -> None:
    topic = new_topic(configs={"compression.type": "gzip"})
    client = WireClient(broker.bootstrap_servers)
    sent = rows(50, 1_700_000_000_000, size=200)
    assert produce(client, topic, records.build_batch(sent)).error_code == ErrorCode.NONE
    stored = fetch_bytes(client, topic)
    client.close()
    header, decoded = records.decode_batch(stored)
    assert header.compression == records.Compression.GZIP
    assert len(stored) < 50 * 200  # actually compressed
    assert [(r.key, r.value, r.timestamp) for r in decoded] == [(k, v, t) for k, v, _, t in sent]


def test_max_message_bytes(broker: Broker, new_topic: Callable[..., str]) -> None:
    topic = new_topic(configs={"max.message.bytes": "1000"})
    client = WireClient(broker.bootstrap_servers)
    too_big = produce(client, topic, records.build_batch(rows(1, 0, size=2000)))
    fits = produce(client, topic, records.build_batch(rows(1, 0, size=100)))
    client.close()
    assert too_big.error_code == ErrorCode.MESSAGE_TOO_LARGE
    assert fits.error_code == ErrorCode.NONE and fits.base_offset == 0


def test_timestamp_bounds(broker: Broker, new_topic: Callable[..., str]) -> None:
    topic = new_topic(
        configs={
            "message.timestamp.after.max.ms": "60000",
            "message.timestamp.before.max.ms": "60000",
        }
    )
    client = WireClient(broker.bootstrap_servers)
    now = int(time.time() * 1000)
    future = produce(client, topic, records.build_batch(rows(1, now + 3_600_000)))
    past = produce(client, topic, records.build_batch(rows(1, now - 3_600_000)))
    ok = produce(client, topic, records.build_batch(rows(1, now)))
    client.close()
    assert future.error_code == ErrorCode.INVALID_TIMESTAMP
    assert past.error_code == ErrorCode.INVALID_TIMESTAMP
    assert ok.error_code == ErrorCode.NONE
