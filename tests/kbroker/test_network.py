"""Network behaviour: sendfile for record bytes, bad input isolated per connection/partition."""

from __future__ import annotations

import logging
import os
import random
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from kbroker.testing import Broker
from protocol import records
from protocol.error_codes import ErrorCode
from protocol.frames import encode_request
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from protocol.messages.produce_response import ProduceResponse
from protocol.messages.request_header import RequestHeader
from tests.kbroker.wire import WireClient


def batch(n: int = 3, size: int = 10) -> bytearray:
    rows: list[records.RecordTuple] = [
        (b"k", b"v" * size, [], 1_700_000_000_000 + i) for i in range(n)
    ]
    return bytearray(records.build_batch(rows))


def produce(client: WireClient, topic: str, parts: dict[int, bytes], acks: int = 1) -> Any:
    request = ProduceRequest(
        acks=acks,
        timeout_ms=5000,
        topic_data=[
            TopicProduceData(
                name=topic,
                partition_data=[PartitionProduceData(index=i, records=r) for i, r in parts.items()],
            )
        ],
    )
    if acks == 0:
        client.send(request, 9)
        return None
    return client.call(request, 9)


def test_record_bytes_leave_through_sendfile(
    broker: Broker, new_topic: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    real_sendfile = os.sendfile

    def counting_sendfile(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        n = real_sendfile(out_fd, in_fd, offset, count)
        sent.append(n)
        return n

    monkeypatch.setattr(os, "sendfile", counting_sendfile)
    topic = new_topic()
    client = WireClient(broker.bootstrap_servers)
    payload = batch(200, 1000)
    response = produce(client, topic, {0: bytes(payload)})
    assert response.responses[0].partition_responses[0].error_code == ErrorCode.NONE
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": "sendfile",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    got: list[Any] = []
    while len(got) < 200:
        got += [m for m in consumer.consume(200, 1.0) if m.error() is None]
    consumer.close()
    client.close()
    assert [m.value() for m in got] == [b"v" * 1000] * 200
    assert sum(sent) >= len(payload)  # the whole stored batch went out through os.sendfile


def test_corrupt_batch_fails_only_its_partition(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=2)
    corrupt = batch()
    corrupt[-1] ^= 0xFF  # breaks the CRC
    client = WireClient(broker.bootstrap_servers)
    response: ProduceResponse = produce(client, topic, {0: bytes(batch()), 1: bytes(corrupt)})
    results = {p.index: p for p in response.responses[0].partition_responses}
    assert results[0].error_code == ErrorCode.NONE and results[0].base_offset == 0
    assert results[1].error_code == ErrorCode.CORRUPT_MESSAGE
    # the connection is still usable
    again: ProduceResponse = produce(client, topic, {1: bytes(batch())})
    assert again.responses[0].partition_responses[0].error_code == ErrorCode.NONE
    client.close()


def test_unknown_topic_and_invalid_acks(broker: Broker, new_topic: Callable[..., str]) -> None:
    client = WireClient(broker.bootstrap_servers)
    response = produce(client, "no-such-topic", {0: bytes(batch())})
    code = response.responses[0].partition_responses[0].error_code
    assert code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    response = produce(client, new_topic(), {0: bytes(batch())}, acks=2)
    assert (
        response.responses[0].partition_responses[0].error_code == ErrorCode.INVALID_REQUIRED_ACKS
    )
    client.close()


def test_acks_zero_gets_no_response(broker: Broker, new_topic: Callable[..., str]) -> None:
    topic = new_topic()
    client = WireClient(broker.bootstrap_servers)
    produce(client, topic, {0: bytes(batch())}, acks=0)
    # the next response on this connection answers the next request, not the produce
    versions = client.call(ApiVersionsRequest(), 0)
    assert versions.error_code == ErrorCode.NONE
    response = produce(client, topic, {0: bytes(batch())})
    assert response.responses[0].partition_responses[0].base_offset == 3  # acks=0 was written
    client.close()


def test_bad_frames_close_only_their_connection(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    good = WireClient(broker.bootstrap_servers)
    cases = [
        struct.pack(">i", 2**31 - 1),  # 2 GB frame
        struct.pack(">i", -5),  # negative size
        struct.pack(">ihhihb", 11, 18, 99, 1, -1, 0),  # ApiVersions v99: answered, not closed
        struct.pack(">ihhih", 10, 999, 0, 1, -1),  # unknown API key
        struct.pack(">ihhih", 10, 0, 9, 1, -1),  # Produce v9 with no body
    ]
    with caplog.at_level(logging.WARNING, logger="kbroker.network"):
        for raw in cases:
            bad = WireClient(broker.bootstrap_servers)
            bad.sock.sendall(raw)
            if raw == cases[2]:
                bad.correlation_id = 1  # the raw frame above
                body = bad.receive(18, 0)
                assert body.error_code == ErrorCode.UNSUPPORTED_VERSION and body.api_keys
            else:
                assert bad.is_closed_by_peer()
            bad.close()
            assert good.call(ApiVersionsRequest(), 0).error_code == ErrorCode.NONE
    assert any("closing connection" in r.getMessage() for r in caplog.records)
    good.close()


def _fuzz_connection(bootstrap: str, rng: random.Random, frames: int, seeds: list[bytes]) -> None:
    host, port = bootstrap.rsplit(":", 1)
    sent = 0
    while sent < frames:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            for _ in range(rng.randint(1, 20)):
                frame = bytearray(rng.choice(seeds))
                for _ in range(rng.randint(0, 3)):
                    if frame:
                        frame[rng.randrange(len(frame))] = rng.randrange(256)
                if rng.random() < 0.2:
                    frame = bytearray(rng.randbytes(rng.randint(0, 64)))
                try:
                    sock.sendall(struct.pack(">i", len(frame)) + frame)
                except OSError:
                    break  # the broker closed this connection: open another
                sent += 1


def test_fuzzed_frames_do_not_disturb_a_good_client(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    """10,000 random and mutated frames on 4 connections while a real client works."""
    topic = new_topic()
    seed_frames = [
        encode_request(RequestHeader(18, 3, 1, "f"), ApiVersionsRequest("a", "1"))[4:],
        encode_request(
            RequestHeader(0, 9, 2, "f"),
            ProduceRequest(
                acks=1,
                topic_data=[
                    TopicProduceData(
                        name=topic, partition_data=[PartitionProduceData(0, bytes(batch()))]
                    )
                ],
            ),
        )[4:],
    ]
    threads = [
        threading.Thread(
            target=_fuzz_connection,
            args=(broker.bootstrap_servers, random.Random(seed), 2500, seed_frames),
        )
        for seed in range(4)
    ]
    for t in threads:
        t.start()
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 1})
    for i in range(2000):
        producer.produce(topic, value=b"good-%d" % i)
        producer.poll(0)
    assert producer.flush(30) == 0
    for t in threads:
        t.join(120)
        assert not t.is_alive()
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": "f",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    good: list[bytes] = []
    while len(good) < 2000:
        messages = consumer.consume(1000, 2.0)
        assert messages, "consumer stalled"
        for m in messages:
            value = m.value()
            if m.error() is None and value is not None and value.startswith(b"good-"):
                good.append(value)
    consumer.close()
    assert good == [b"good-%d" % i for i in range(2000)]
