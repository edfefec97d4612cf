"""Transactions end to end with real clients: commit, abort, fencing, read_committed, offsets
committed in a transaction, a consume-transform-produce process killed with SIGKILL, and a
broker killed with kill -9 in the middle of a transaction."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioTopicPartition
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition
from kafka.structs import OffsetAndMetadata

from kbroker.testing import Broker
from protocol import records
from protocol.error_codes import ErrorCode
from protocol.messages.add_partitions_to_txn_request import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnTopic,
)
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from tests.kbroker.process import BrokerProcess
from tests.kbroker.wire import WireClient

pytestmark = pytest.mark.clients
REPO = Path(__file__).resolve().parents[2]


def read_all(bootstrap: str, topic: str, partitions: int, isolation: str) -> list[bytes]:
    """Every value a consumer with `isolation` sees, partition by partition, in order.

    Reads until each partition's position reaches its high watermark, so a read_committed
    read also proves that no open transaction holds the last stable offset back."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "reader",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    tps = [TopicPartition(topic, p, 0) for p in range(partitions)]
    consumer.assign(tps)
    values: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for m in consumer.consume(1000, 0.3):
            assert m.error() is None, m.error()
            values[m.partition() or 0].append(m.value() or b"")
        ends = [consumer.get_watermark_offsets(tp, 5)[1] for tp in tps]
        positions = [tp.offset for tp in consumer.position(tps)]
        if all(pos >= end for pos, end in zip(positions, ends, strict=True)):
            break
    else:
        raise AssertionError(f"{isolation} reader stuck at {positions}, ends {ends}")
    consumer.close()
    return [v for p in range(partitions) for v in values[p]]


def txn_producer(bootstrap: str, txn_id: str, **extra: object) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, **extra})
    producer.init_transactions(30)
    return producer


def test_commit_abort_and_isolation_levels(broker: Broker, new_topic: Callable[..., str]) -> None:
    a, b = new_topic(partitions=2), new_topic(partitions=2)
    producer = txn_producer(broker.bootstrap_servers, "txn-commit-abort")
    for outcome in ("commit-1", "abort", "commit-2"):
        producer.begin_transaction()
        for topic in (a, b):
            for p in range(2):
                for i in range(3):
                    producer.produce(topic, value=f"{outcome}-{p}-{i}".encode(), partition=p)
        if outcome == "abort":
            producer.flush(10)  # the records are in the log before the abort
            producer.abort_transaction(30)
        else:
            producer.commit_transaction(30)
    expected = [
        f"{o}-{p}-{i}".encode()
        for p in range(2)
        for o in ("commit-1", "commit-2")
        for i in range(3)
    ]
    everything = [
        f"{o}-{p}-{i}".encode()
        for p in range(2)
        for o in ("commit-1", "abort", "commit-2")
        for i in range(3)
    ]
    for topic in (a, b):
        assert read_all(broker.bootstrap_servers, topic, 2, "read_committed") == expected
        assert read_all(broker.bootstrap_servers, topic, 2, "read_uncommitted") == everything


def test_read_committed_stops_at_an_open_transaction(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    plain = Producer({"bootstrap.servers": broker.bootstrap_servers})
    plain.produce(topic, value=b"before")
    plain.flush(10)
    producer = txn_producer(broker.bootstrap_servers, "txn-open")
    producer.begin_transaction()
    producer.produce(topic, value=b"in-txn")
    producer.flush(10)
    plain.produce(topic, value=b"after")  # behind the open transaction: not yet stable
    plain.flush(10)
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers,
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    tp = KpTopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    assert consumer.end_offsets([tp])[tp] == 1  # ListOffsets latest, read_committed: the LSO
    seen = [r.value for batch in consumer.poll(2000).values() for r in batch]
    assert seen == [b"before"]
    producer.commit_transaction(30)
    assert consumer.end_offsets([tp])[tp] == 4  # the marker is the 4th record
    deadline = time.monotonic() + 20
    while len(seen) < 3 and time.monotonic() < deadline:
        seen += [r.value for batch in consumer.poll(500).values() for r in batch]
    assert seen == [b"before", b"in-txn", b"after"]
    consumer.close()


def test_a_zombie_producer_is_fenced(broker: Broker, new_topic: Callable[..., str]) -> None:
    topic = new_topic()
    zombie = txn_producer(broker.bootstrap_servers, "txn-zombie")
    zombie.begin_transaction()
    zombie.produce(topic, value=b"zombie")
    zombie.flush(10)
    successor = txn_producer(broker.bootstrap_servers, "txn-zombie")  # aborts the zombie's txn
    successor.begin_transaction()
    successor.produce(topic, value=b"successor")
    successor.commit_transaction(30)
    with pytest.raises(KafkaException) as raised:
        zombie.produce(topic, value=b"late")
        zombie.commit_transaction(30)
    assert raised.value.args[0].fatal(), raised.value
    assert read_all(broker.bootstrap_servers, topic, 1, "read_committed") == [b"successor"]


def test_kafka_python_transactional_flow(broker: Broker, new_topic: Callable[..., str]) -> None:
    source, sink = new_topic(), new_topic()
    plain = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    for i in range(10):
        plain.send(source, b"%d" % i)
    plain.flush(10)
    group = "kp-txn-group"
    consumer = KafkaConsumer(
        source,
        bootstrap_servers=broker.bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    seen: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(seen) < 10 and time.monotonic() < deadline:
        seen += [r.value for batch in consumer.poll(500).values() for r in batch]
    assert len(seen) == 10
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, transactional_id="kp-txn")
    producer.init_transactions()
    producer.begin_transaction()
    for value in seen[:5]:
        producer.send(sink, b"aborted:" + value)
    producer.abort_transaction()
    producer.begin_transaction()
    for value in seen:
        producer.send(sink, b"out:" + value)
    tp = KpTopicPartition(source, 0)
    producer.send_offsets_to_transaction(
        {tp: OffsetAndMetadata(10, "", -1)}, consumer.group_metadata()
    )
    producer.commit_transaction()
    producer.close()
    assert consumer.committed(tp) == 10
    consumer.close()
    assert read_all(broker.bootstrap_servers, sink, 1, "read_committed") == [
        b"out:%d" % i for i in range(10)
    ]


def test_aiokafka_transactional_flow(broker: Broker, new_topic: Callable[..., str]) -> None:
    source, sink = new_topic(), new_topic()
    bootstrap = broker.bootstrap_servers

    async def flow() -> int | None:
        plain = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await plain.start()
        for i in range(10):
            await plain.send_and_wait(source, b"%d" % i)
        await plain.stop()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="aio-txn")
        await producer.start()
        try:
            async with producer.transaction():
                await producer.send_and_wait(sink, b"first")
            with pytest.raises(RuntimeError):
                async with producer.transaction():
                    await producer.send_and_wait(sink, b"aborted")
                    raise RuntimeError("abort this one")
            tp = AioTopicPartition(source, 0)
            async with producer.transaction():
                await producer.send_and_wait(sink, b"second")
                await producer.send_offsets_to_transaction({tp: 10}, "aio-txn-group")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id="aio-txn-group", enable_auto_commit=False
        )
        await consumer.start()
        try:
            committed: int | None = await consumer.committed(tp)
            return committed
        finally:
            await consumer.stop()

    assert asyncio.run(flow()) == 10
    assert read_all(bootstrap, sink, 1, "read_committed") == [b"first", b"second"]


def test_consume_transform_produce_survives_sigkill(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    """The process is killed with SIGKILL at random points and restarted; at the end the output
    topic holds exactly one output per input (read_committed)."""
    source, sink = new_topic(partitions=3), new_topic(partitions=3)
    n = 1500
    plain = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 5})
    for i in range(n):
        plain.produce(source, key=b"%d" % i, value=b"%d" % i, partition=i % 3)
    assert plain.flush(30) == 0
    args = [broker.bootstrap_servers, source, sink, "ctp-group", "ctp-txn"]
    rng = random.Random(os.environ.get("KBROKER_TEST_SEED", "ctp"))
    kills = 0
    for _ in range(4):
        proc = start_ctp(args)
        time.sleep(rng.uniform(0.5, 1.5))
        kill_ctp(proc)
        kills += 1
    done_before_last = len(read_all(broker.bootstrap_servers, sink, 3, "read_committed"))
    proc = start_ctp(args)
    try:
        deadline = time.monotonic() + 120
        outputs: list[bytes] = []
        while time.monotonic() < deadline:
            outputs = read_all(broker.bootstrap_servers, sink, 3, "read_committed")
            if len(outputs) >= n:
                break
            time.sleep(0.5)
    finally:
        kill_ctp(proc)
    written = len(read_all(broker.bootstrap_servers, sink, 3, "read_uncommitted"))
    counts = Counter(outputs)
    duplicates = {v: c for v, c in counts.items() if c > 1}
    assert not duplicates, f"{len(duplicates)} outputs written twice, e.g. {list(duplicates)[:5]}"
    assert sorted(counts) == sorted(b"out:%d" % i for i in range(n))
    assert kills == 4 and done_before_last < n, "the kills never interrupted the work"
    # Outputs of killed transactions are in the log (read_uncommitted) but not read_committed.
    assert written > n, "no kill landed inside a transaction: the test proved nothing"


def start_ctp(args: list[str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.kbroker.txn_ctp_proc", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == b"ready", f"consume-transform-produce process said {line!r}"
    return proc


def kill_ctp(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()  # SIGKILL: no clean-up, no abort, no close of the transactional producer
    proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


TIMEOUT_OVERRIDES = ("transaction.abort.timed.out.transaction.cleanup.interval.ms=200",)


def test_broker_kill_mid_transaction_aborts_after_the_timeout(tmp_path: Path) -> None:
    broker = BrokerProcess(str(tmp_path / "data"), *TIMEOUT_OVERRIDES)
    bootstrap = broker.start()
    try:
        producer = txn_producer(bootstrap, "txn-kill", **{"transaction.timeout.ms": 3000})
        producer.begin_transaction()
        for i in range(100):
            producer.produce("killed", value=b"open-%d" % i)
        assert producer.flush(10) == 0
        broker.kill()
        bootstrap = broker.start()
        # No producer comes back: the coordinator must abort the transaction on its timeout,
        # and the reader must not stay stuck at the last stable offset.
        assert read_all(bootstrap, "killed", 1, "read_committed") == []
        assert len(read_all(bootstrap, "killed", 1, "read_uncommitted")) == 100
        successor = txn_producer(bootstrap, "txn-kill")
        successor.begin_transaction()
        successor.produce("killed", value=b"after-restart")
        successor.commit_transaction(30)
        assert read_all(bootstrap, "killed", 1, "read_committed") == [b"after-restart"]
    finally:
        broker.ensure_stopped()


def test_broker_kill_after_commit_keeps_the_transaction(tmp_path: Path) -> None:
    broker = BrokerProcess(str(tmp_path / "data"), *TIMEOUT_OVERRIDES)
    bootstrap = broker.start()
    try:
        producer = txn_producer(bootstrap, "txn-kill-commit")
        producer.begin_transaction()
        for i in range(100):
            producer.produce("committed", value=b"%d" % i)
        producer.commit_transaction(30)  # EndTxn acknowledged
        broker.kill()
        bootstrap = broker.start()
        values = read_all(bootstrap, "committed", 1, "read_committed")
        assert values == [b"%d" % i for i in range(100)]
    finally:
        broker.ensure_stopped()


def test_produce_to_a_partition_outside_the_transaction_is_refused(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    """KIP-890 part 1: a transactional batch for a partition the producer never added to its
    transaction (a late write of an ended transaction, a client bug) is refused, so it cannot
    open a transaction that nobody ends and hold read_committed readers back for good."""
    topic = new_topic()
    client = WireClient(broker.bootstrap_servers)
    init = client.call(
        InitProducerIdRequest(transactional_id="verify", transaction_timeout_ms=60_000), 4
    )
    pid, epoch = init.producer_id, init.producer_epoch

    def produce(version: int, seq: int) -> Any:
        batch = records.build_batch(
            [(None, b"v", [], 0)], producer_id=pid, producer_epoch=epoch, base_sequence=seq,
            is_transactional=True,
        )  # fmt: skip
        data = [TopicProduceData(name=topic, partition_data=[PartitionProduceData(0, batch)])]
        request = ProduceRequest(
            transactional_id="verify", acks=-1, timeout_ms=5000, topic_data=data
        )
        return client.call(request, version).responses[0].partition_responses[0]

    assert produce(9, 0).error_code == ErrorCode.INVALID_TXN_STATE
    assert produce(11, 0).error_code == ErrorCode.TRANSACTION_ABORTABLE
    added = client.call(
        AddPartitionsToTxnRequest(
            v3_and_below_transactional_id="verify",
            v3_and_below_producer_id=pid,
            v3_and_below_producer_epoch=epoch,
            v3_and_below_topics=[AddPartitionsToTxnTopic(name=topic, partitions=[0])],
        ),
        3,
    )
    assert added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code == 0
    accepted = produce(9, 0)
    assert (accepted.error_code, accepted.base_offset) == (ErrorCode.NONE, 0)
    client.close()
