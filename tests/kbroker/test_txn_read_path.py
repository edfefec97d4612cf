"""The transactional read path (KIP-98) with real consumers: LSO, aborted transactions, markers.

Transactional batches are sent over the wire with hand-picked producer ids, and transactions are
ended with WriteTxnMarkers, as another broker's transaction coordinator would end them; then
confluent-kafka and kafka-python consumers read in both isolation levels.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition

from kbroker.testing import Broker
from protocol import records
from protocol.error_codes import ErrorCode
from protocol.messages.describe_producers_request import DescribeProducersRequest, TopicRequest
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from protocol.messages.write_txn_markers_request import (
    WritableTxnMarker,
    WritableTxnMarkerTopic,
    WriteTxnMarkersRequest,
)
from tests.kbroker.process import BrokerProcess
from tests.kbroker.wire import WireClient

A, B, C = 7001, 7002, 7003  # producer ids
HANG_GUARD_S = 30  # a consumer loop that never ends fails here instead of hanging the suite


class Producers:
    """Sends batches of several producers, each keeping its own sequence per partition."""

    def __init__(self, client: WireClient, topic: str) -> None:
        self.client = client
        self.topic = topic
        self.seqs: dict[tuple[int, int], int] = {}

    def send(self, partition: int, pid: int, *values: bytes, txn: bool = True) -> Any:
        seq = self.seqs.get((pid, partition), 0)
        rows: list[records.RecordTuple] = [(None, v, [], int(time.time() * 1000)) for v in values]
        batch = records.build_batch(
            rows,
            producer_id=pid if pid >= 0 else -1,
            producer_epoch=0 if pid >= 0 else -1,
            base_sequence=seq if pid >= 0 else -1,
            is_transactional=txn,
        )
        data = [
            TopicProduceData(
                name=self.topic, partition_data=[PartitionProduceData(partition, batch)]
            )
        ]
        response = self.client.call(ProduceRequest(acks=-1, timeout_ms=5000, topic_data=data), 9)
        result = response.responses[0].partition_responses[0]
        if result.error_code == ErrorCode.NONE and pid >= 0:
            self.seqs[(pid, partition)] = seq + len(values)
        return result

    def plain(self, partition: int, *values: bytes) -> Any:
        return self.send(partition, -1, *values, txn=False)

    def end(self, pid: int, commit: bool, partitions: list[int], **kw: int) -> list[int]:
        """WriteTxnMarkers v1; the per-partition error codes."""
        marker = WritableTxnMarker(
            producer_id=pid,
            producer_epoch=kw.get("epoch", 0),
            transaction_result=commit,
            topics=[WritableTxnMarkerTopic(self.topic, partitions)],
            coordinator_epoch=kw.get("coordinator_epoch", 0),
        )
        response = self.client.call(WriteTxnMarkersRequest(markers=[marker]), 1)
        return [p.error_code for p in response.markers[0].topics[0].partitions]


def confluent_read(
    bootstrap: str, topic: str, partitions: int, isolation: str
) -> list[list[bytes]]:
    """Every value up to the end (the LSO for read_committed), per partition, in order."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"g-{topic}-{isolation}-{time.monotonic_ns()}",
            "isolation.level": isolation,
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        return _drain(consumer, partitions)
    finally:
        consumer.close()


def _drain(consumer: Consumer, partitions: int) -> list[list[bytes]]:
    got: list[list[bytes]] = [[] for _ in range(partitions)]
    eof: set[int] = set()
    deadline = time.monotonic() + HANG_GUARD_S
    while len(eof) < partitions:
        assert time.monotonic() < deadline, f"no end of partitions reached: {got}"
        message = consumer.poll(0.2)
        if message is None:
            continue
        error, partition = message.error(), message.partition()
        assert partition is not None
        if error is not None:
            assert error.code() == KafkaError._PARTITION_EOF, error
            eof.add(partition)
            continue
        value = message.value()
        assert value is not None
        got[partition].append(value)
        eof.discard(partition)
    return got


def kafka_python_read(bootstrap: str, topic: str, partitions: int) -> list[list[bytes]]:
    """kafka-python, read_committed: every value below each partition's end offset (LSO)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    try:
        tps = [KTopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        got: list[list[bytes]] = [[] for _ in range(partitions)]
        deadline = time.monotonic() + HANG_GUARD_S
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, f"stuck below {ends}: {got}"
            for tp, batch in consumer.poll(timeout_ms=200).items():
                got[tp.partition].extend(r.value for r in batch)
        return got
    finally:
        consumer.close()


def latest(client: WireClient, topic: str, partition: int, isolation: int) -> int:
    request = ListOffsetsRequest(
        replica_id=-1,
        isolation_level=isolation,
        topics=[ListOffsetsTopic(topic, [ListOffsetsPartition(partition, timestamp=-1)])],
    )
    result = client.call(request, 7).topics[0].partitions[0]
    assert result.error_code == ErrorCode.NONE
    offset: int = result.offset
    return offset


def interleave(p: Producers) -> None:
    """Two transactions (A, B) interleaved on two partitions, and a plain batch."""
    assert p.send(0, A, b"a0").error_code == ErrorCode.NONE  # p0 offset 0
    assert p.send(0, B, b"b0", b"b1").base_offset == 1  # 1-2
    assert p.send(1, B, b"b2").base_offset == 0
    assert p.plain(0, b"n0").base_offset == 3
    assert p.send(1, A, b"a1", b"a2").base_offset == 1  # 1-2
    assert p.send(0, A, b"a3").base_offset == 4


COMMITTED = [[b"a0", b"n0", b"a3"], [b"a1", b"a2"]]
EVERYTHING = [[b"a0", b"b0", b"b1", b"n0", b"a3"], [b"b2", b"a1", b"a2"]]


def test_commit_one_abort_the_other(broker: Broker, new_topic: Callable[..., str]) -> None:
    topic = new_topic(2)
    bootstrap = broker.bootstrap_servers
    client = WireClient(bootstrap)
    p = Producers(client, topic)
    interleave(p)
    assert confluent_read(bootstrap, topic, 2, "read_committed") == [[], []]
    assert [latest(client, topic, i, 1) for i in (0, 1)] == [0, 0]
    assert [latest(client, topic, i, 0) for i in (0, 1)] == [5, 3]

    assert p.end(B, commit=False, partitions=[0, 1]) == [0, 0]  # markers at 5 and 3
    # A is still open on both partitions, from offset 0 on p0 and 1 on p1
    assert [latest(client, topic, i, 1) for i in (0, 1)] == [0, 1]
    assert p.end(A, commit=True, partitions=[0, 1]) == [0, 0]  # markers at 6 and 4
    assert [latest(client, topic, i, 1) for i in (0, 1)] == [7, 5]
    assert [latest(client, topic, i, 0) for i in (0, 1)] == [7, 5]

    assert confluent_read(bootstrap, topic, 2, "read_committed") == COMMITTED
    assert confluent_read(bootstrap, topic, 2, "read_uncommitted") == EVERYTHING
    assert kafka_python_read(bootstrap, topic, 2) == COMMITTED
    client.close()


def fetch(client: WireClient, topic: str, isolation: int) -> Any:
    partitions = [FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)]
    request = FetchRequest(
        replica_id=-1,
        max_wait_ms=0,
        min_bytes=0,
        max_bytes=1 << 20,
        isolation_level=isolation,
        topics=[FetchTopic(topic=topic, partitions=partitions)],
    )
    return client.call(request, 11).responses[0].partitions[0]


def test_fetch_answers_lso_and_aborted_transactions(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    client = WireClient(broker.bootstrap_servers)
    p = Producers(client, topic)
    p.plain(0, b"x")  # 0
    p.send(0, A, b"a")  # 1
    p.send(0, B, b"b")  # 2
    assert p.end(B, commit=False, partitions=[0]) == [0]  # 3
    committed = fetch(client, topic, 1)
    assert (committed.high_watermark, committed.last_stable_offset) == (4, 1)
    assert committed.aborted_transactions == []  # the read stops before B's transaction
    assert p.end(A, commit=False, partitions=[0]) == [0]  # 4
    committed, uncommitted = fetch(client, topic, 1), fetch(client, topic, 0)
    assert (committed.high_watermark, committed.last_stable_offset) == (5, 5)
    aborted = sorted((t.producer_id, t.first_offset) for t in committed.aborted_transactions)
    assert aborted == [(A, 1), (B, 2)]
    assert uncommitted.aborted_transactions is None
    assert confluent_read(broker.bootstrap_servers, topic, 1, "read_committed") == [[b"x"]]
    client.close()


def test_lso_holds_a_read_committed_consumer_until_the_marker(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    bootstrap = broker.bootstrap_servers
    client = WireClient(bootstrap)
    p = Producers(client, topic)
    p.plain(0, b"x0")
    p.send(0, A, b"t0")
    p.plain(0, b"x1")
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"hold-{topic}",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        assert _drain(consumer, 1) == [[b"x0"]]  # end of partition at the LSO, 1
        assert p.end(A, commit=True, partitions=[0]) == [0]
        assert _drain(consumer, 1) == [[b"t0", b"x1"]]
    finally:
        consumer.close()
    client.close()


def test_marker_and_batch_validation(broker: Broker, new_topic: Callable[..., str]) -> None:
    topic = new_topic()
    client = WireClient(broker.bootstrap_servers)
    p = Producers(client, topic)
    p.send(0, C, b"c0")
    p.send(0, A, b"a0")
    assert p.plain(0, b"n").error_code == ErrorCode.NONE
    # a non-transactional batch of a producer in a transaction
    assert p.send(0, A, b"a1", txn=False).error_code == ErrorCode.INVALID_TXN_STATE
    assert p.end(A, True, [0], epoch=0, coordinator_epoch=3) == [0]
    assert p.end(A, True, [0], epoch=0, coordinator_epoch=2) == [
        ErrorCode.TRANSACTION_COORDINATOR_FENCED
    ]
    p.seqs[(A, 0)] = 0
    assert p.send(0, A, b"a2").error_code == ErrorCode.NONE  # epoch 0 continues
    assert p.end(A, False, [0], epoch=1, coordinator_epoch=3) == [0]  # the abort bumps it
    assert p.end(A, True, [0], epoch=0, coordinator_epoch=3) == [ErrorCode.INVALID_PRODUCER_EPOCH]
    assert p.end(A, True, [5], epoch=1) == [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]

    request = DescribeProducersRequest(topics=[TopicRequest(topic, [0])])
    described = client.call(request, 0).topics[0].partitions[0]
    states = {s.producer_id: s for s in described.active_producers}
    assert (states[A].producer_epoch, states[A].coordinator_epoch) == (1, 3)
    assert states[A].current_txn_start_offset == -1
    assert (states[C].current_txn_start_offset, states[C].last_sequence) == (0, 0)
    client.close()


def test_kill_9_after_abort_rebuilds_txn_index_and_lso(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    proc = BrokerProcess(data)
    try:
        bootstrap = proc.start()
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("tx", 2, 1)])["tx"].result(10)
        client = WireClient(bootstrap)
        p = Producers(client, "tx")
        interleave(p)
        assert p.end(B, commit=False, partitions=[0, 1]) == [0, 0]
        assert p.end(A, commit=True, partitions=[0, 1]) == [0, 0]
        p.send(0, C, b"c0")  # open when the broker dies: offset 7 of p0
        p.plain(0, b"after")
        client.close()
        proc.kill()
        index = os.path.join(data, "tx-0", f"{0:020d}.txnindex")
        with open(index, "rb") as f:
            written = f.read()
        assert len(written) == 34
        os.unlink(index)  # whatever the crash left, the replay rebuilds it

        bootstrap = proc.start()
        with open(index, "rb") as f:
            assert f.read() == written
        client = WireClient(bootstrap)
        assert [latest(client, "tx", i, 1) for i in (0, 1)] == [7, 5]
        assert confluent_read(bootstrap, "tx", 2, "read_committed") == COMMITTED
        assert kafka_python_read(bootstrap, "tx", 2) == COMMITTED
        assert Producers(client, "tx").end(C, commit=True, partitions=[0]) == [0]
        assert latest(client, "tx", 0, 1) == 10
        committed = confluent_read(bootstrap, "tx", 2, "read_committed")
        assert committed == [[*COMMITTED[0], b"c0", b"after"], COMMITTED[1]]
        client.close()
    finally:
        proc.ensure_stopped()
