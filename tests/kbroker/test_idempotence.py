"""The idempotent producer: InitProducerId, sequence checks, duplicates answered, restarts."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaProducer

from kbroker.testing import Broker
from protocol import records
from protocol.error_codes import ErrorCode
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from storage.producer_state import snapshot_file_name
from tests.kbroker.cutting_proxy import CuttingProxy
from tests.kbroker.process import BrokerProcess
from tests.kbroker.wire import WireClient


def init_producer(client: WireClient) -> int:
    response = client.call(InitProducerIdRequest(transactional_id=None), 4)
    assert response.error_code == ErrorCode.NONE and response.producer_epoch == 0
    producer_id: int = response.producer_id
    return producer_id


def send(client: WireClient, topic: str, pid: int, epoch: int, seq: int, n: int = 2) -> Any:
    rows: list[records.RecordTuple] = [(None, b"v%d" % (seq + i), [], 0) for i in range(n)]
    batch = records.build_batch(rows, producer_id=pid, producer_epoch=epoch, base_sequence=seq)
    request = ProduceRequest(
        acks=-1,
        timeout_ms=5000,
        topic_data=[TopicProduceData(name=topic, partition_data=[PartitionProduceData(0, batch)])],
    )
    return client.call(request, 9).responses[0].partition_responses[0]


def test_sequence_rules(broker: Broker, new_topic: Callable[..., str]) -> None:
    topic = new_topic()
    client = WireClient(broker.bootstrap_servers)
    pid = init_producer(client)
    assert init_producer(client) != pid  # every init gets a fresh id
    first = send(client, topic, pid, 0, 0)
    second = send(client, topic, pid, 0, 2)
    assert (first.error_code, first.base_offset, second.base_offset) == (0, 0, 2)
    retry = send(client, topic, pid, 0, 0)  # a retry of the first batch
    assert (retry.error_code, retry.base_offset) == (ErrorCode.NONE, 0)
    gap = send(client, topic, pid, 0, 7)
    assert gap.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    new_epoch = send(client, topic, pid, 1, 0)
    assert (new_epoch.error_code, new_epoch.base_offset) == (ErrorCode.NONE, 4)
    stale = send(client, topic, pid, 0, 4)
    assert stale.error_code == ErrorCode.INVALID_PRODUCER_EPOCH
    assert send(client, topic, -1, -1, -1).base_offset == 6  # non-idempotent batches pass
    client.close()


def test_transactional_ids_keep_their_producer_id(broker: Broker) -> None:
    """A transactional id keeps its producer id and gets a new epoch per init; a stale KIP-360
    epoch is fenced (INVALID_PRODUCER_EPOCH below v4, as Kafka answers old clients); an empty
    id or a half-given id/epoch pair is INVALID_REQUEST."""
    client = WireClient(broker.bootstrap_servers)
    try:
        first = client.call(
            InitProducerIdRequest(transactional_id="tx-idem", transaction_timeout_ms=1000), 4
        )
        again = client.call(
            InitProducerIdRequest(transactional_id="tx-idem", transaction_timeout_ms=1000), 4
        )
        stale = InitProducerIdRequest(
            transactional_id="tx-idem",
            transaction_timeout_ms=1000,
            producer_id=first.producer_id,
            producer_epoch=5,
        )
        fenced_v3, fenced_v4 = client.call(stale, 3), client.call(stale, 4)
        empty = client.call(InitProducerIdRequest(transactional_id="", transaction_timeout_ms=1), 4)
        half = client.call(InitProducerIdRequest(transactional_id=None, producer_id=7), 4)
    finally:
        client.close()
    assert (first.error_code, first.producer_epoch) == (ErrorCode.NONE, 0)
    assert (again.error_code, again.producer_id, again.producer_epoch) == (
        ErrorCode.NONE,
        first.producer_id,
        1,
    )
    assert fenced_v3.error_code == ErrorCode.INVALID_PRODUCER_EPOCH
    assert fenced_v4.error_code == ErrorCode.PRODUCER_FENCED
    assert empty.error_code == half.error_code == ErrorCode.INVALID_REQUEST


def test_state_and_ids_survive_a_restart(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    with Broker(data_dir=data) as broker:
        broker.run(lambda b: b.create_topic("r", 1, {})).result(10)
        client = WireClient(broker.bootstrap_servers)
        pid = init_producer(client)
        assert send(client, "r", pid, 0, 0).base_offset == 0
        client.close()
    with Broker(data_dir=data) as broker:
        client = WireClient(broker.bootstrap_servers)
        retry = send(client, "r", pid, 0, 0)  # state rebuilt from the log's batch headers
        assert (retry.error_code, retry.base_offset) == (ErrorCode.NONE, 0)
        assert send(client, "r", pid, 0, 2).base_offset == 2
        assert init_producer(client) > pid  # ids are never reissued
        client.close()


def read_values(bootstrap: str, topic: str, count: int) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "r", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + 60
    while len(values) < count and time.monotonic() < deadline:
        for m in consumer.consume(1000, 0.5):
            value = m.value()
            assert m.error() is None and value is not None
            values.append(value)
    # anything beyond `count` would be a duplicate: give it a moment to show up
    values += [v for m in consumer.consume(1000, 0.5) if (v := m.value()) is not None]
    consumer.close()
    return values


def produce_confluent(bootstrap: str, topic: str, n: int) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 2,
            "batch.num.messages": 500,
        }
    )
    for i in range(n):
        producer.produce(topic, value=b"%d" % i)
        producer.poll(0)
    assert producer.flush(120) == 0


def produce_kafka_python(bootstrap: str, topic: str, n: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)  # idempotent by default
    futures = [producer.send(topic, b"%d" % i) for i in range(n)]
    producer.flush(120)
    assert all(f.succeeded() for f in futures)
    producer.close()


@pytest.mark.clients
@pytest.mark.parametrize("produce", [produce_confluent, produce_kafka_python])
def test_dropped_responses_do_not_duplicate(
    produce: Callable[[str, str, int], None], tmp_path: Path
) -> None:
    """100,000 records through a proxy that cuts the connection after forwarding every 7th
    Produce request: the client retries what it never heard back about, and the log holds
    every record once, in order."""
    proxy = CuttingProxy(cut_every=7)
    overrides = {"advertised.listeners": f"PLAINTEXT://localhost:{proxy.port}"}
    with Broker(overrides) as broker:
        proxy.start(("127.0.0.1", broker.port))
        broker.run(lambda b: b.create_topic("exactly", 1, {})).result(10)
        n = 100_000
        produce(f"localhost:{proxy.port}", "exactly", n)
        values = read_values(broker.bootstrap_servers, "exactly", n)
        proxy.close()
    assert proxy.cuts >= 3, "the proxy never cut a produce: the test proves nothing"
    assert values == [b"%d" % i for i in range(n)]


@pytest.mark.clients
def test_kafka_python_default_producer_is_idempotent(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)  # idempotent by default
    futures = [producer.send(topic, b"%d" % i) for i in range(5000)]
    producer.flush(30)
    assert [f.get(10).offset for f in futures] == list(range(5000))
    producer.close()
    assert read_values(broker.bootstrap_servers, topic, 5000) == [b"%d" % i for i in range(5000)]


def test_producer_snapshot_at_clean_shutdown_and_corrupt_fallback(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Broker(data_dir=str(data)) as broker:
        broker.run(lambda b: b.create_topic("s", 1, {})).result(10)
        client = WireClient(broker.bootstrap_servers)
        pid = init_producer(client)
        for seq in range(0, 10, 2):
            send(client, "s", pid, 0, seq)
        client.close()
    (snapshot,) = (data / "s-0").glob("*.snapshot")
    assert snapshot.name == f"{10:020d}.snapshot"
    for corrupt in (False, True):
        if corrupt:
            snapshot.write_bytes(b"garbage")  # unreadable: the log is replayed instead
        with Broker(data_dir=str(data)) as broker:
            client = WireClient(broker.bootstrap_servers)
            retry = send(client, "s", pid, 0, 8)  # the last batch, retried
            assert (retry.error_code, retry.base_offset) == (ErrorCode.NONE, 8)
            client.close()


def test_snapshots_at_segment_rolls_survive_a_kill_9(tmp_path: Path) -> None:
    """Producer state is snapshotted when a segment rolls (the newest two files are kept), so
    a broker killed with -9 restarts from the snapshot plus the last segment, and a retried
    batch from before the crash is still recognised as a duplicate."""
    process = BrokerProcess(str(tmp_path / "data"), "log.segment.bytes=1048576")
    try:
        client = WireClient(process.start())
        client.call(MetadataRequest(topics=[MetadataRequestTopic(name="rolls")]), 9)  # creates it
        pid = init_producer(client)
        big = b"x" * 100_000
        for seq in range(35):  # ~3.5 MB in 1 MB segments: three rolls
            rows: list[records.RecordTuple] = [(None, big, [], 0)]
            batch = records.build_batch(rows, producer_id=pid, producer_epoch=0, base_sequence=seq)
            request = ProduceRequest(
                acks=-1,
                timeout_ms=5000,
                topic_data=[
                    TopicProduceData(name="rolls", partition_data=[PartitionProduceData(0, batch)])
                ],
            )
            assert client.call(request, 9).responses[0].partition_responses[0].error_code == 0
        client.close()
        # Rolls at offsets 10, 20 and 30 snapshot the state at 11, 21 and 31; the storage
        # worker writes them in the background and keeps the newest two: wait for it.
        directory = tmp_path / "data" / "rolls-0"
        expected = [directory / snapshot_file_name(offset) for offset in (21, 31)]
        deadline = time.monotonic() + 10
        while (snapshots := sorted(directory.glob("*.snapshot"))) != expected:
            assert time.monotonic() < deadline, snapshots
            time.sleep(0.05)
        process.kill()
        client = WireClient(process.start())
        retry = send(client, "rolls", pid, 0, 34, n=1)  # the last batch before the crash
        assert (retry.error_code, retry.base_offset) == (ErrorCode.NONE, 34)
        assert send(client, "rolls", pid, 0, 36, n=1).error_code == (
            ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        )
        assert send(client, "rolls", pid, 0, 35, n=1).base_offset == 35
        client.close()
    finally:
        process.ensure_stopped()
