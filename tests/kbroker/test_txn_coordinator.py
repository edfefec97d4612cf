"""The transaction coordinator with a real transactional producer (confluent-kafka/librdkafka).

Markers are read back as control batches through a read_uncommitted Fetch; coordinator states
through DescribeTransactions/ListTransactions on the wire (confluent-kafka 2.x's AdminClient
has no transaction admin calls). read_committed visibility is the partition side's to test.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from kbroker.testing import Broker
from protocol import records
from protocol.messages.describe_transactions_request import DescribeTransactionsRequest
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.list_transactions_request import ListTransactionsRequest
from tests.kbroker.process import BrokerProcess
from tests.kbroker.wire import WireClient

WAIT_S = 20.0


def producer(bootstrap: str, txn_id: str, **extra: Any) -> ck.Producer:
    return ck.Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, **extra})


def describe(bootstrap: str, txn_id: str) -> Any:
    client = WireClient(bootstrap)
    try:
        return client.call(DescribeTransactionsRequest([txn_id]), 0).transaction_states[0]
    finally:
        client.close()


def wait_for_state(bootstrap: str, txn_id: str, state: str) -> Any:
    """Poll DescribeTransactions until the id is in `state` (fails after WAIT_S)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        described = describe(bootstrap, txn_id)
        if described.transaction_state == state or time.monotonic() > deadline:
            assert described.transaction_state == state
            return described
        time.sleep(0.05)


def control_markers(bootstrap: str, topic: str, index: int) -> list[tuple[int, int, bool]]:
    """(producer id, epoch, commit?) of each control batch in the partition."""
    fetch = FetchRequest(
        isolation_level=0,
        topics=[
            FetchTopic(topic=topic, partitions=[FetchPartition(index, partition_max_bytes=1 << 20)])
        ],
    )
    client = WireClient(bootstrap)
    try:
        data = bytes(client.call(fetch, 11).responses[0].partitions[0].records or b"")
    finally:
        client.close()
    found = []
    for pos, header in records.iter_batch_headers(data):
        if header.is_control:
            key = records.decode_batch(data, pos)[1][0].key
            assert key is not None
            _, control_type = struct.unpack(">hh", key)
            commit = control_type == records.ControlType.COMMIT
            found.append((header.producer_id, header.producer_epoch, commit))
    return found


def produce_each(p: ck.Producer, topics: list[str], value: bytes) -> None:
    for topic in topics:
        for index in (0, 1):
            p.produce(topic, value, partition=index)
    assert p.flush(10) == 0


def test_commit_and_abort_mark_every_partition(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topics = [new_topic(2), new_topic(2)]
    p = producer(broker.bootstrap_servers, "tx-two-topics")
    p.init_transactions(10)
    p.begin_transaction()
    produce_each(p, topics, b"committed")
    p.commit_transaction(10)
    p.begin_transaction()
    produce_each(p, topics, b"aborted")
    p.abort_transaction(10)
    described = describe(broker.bootstrap_servers, "tx-two-topics")
    assert (described.error_code, described.transaction_state) == (0, "CompleteAbort")
    assert described.topics == []
    pid, epoch = described.producer_id, described.producer_epoch
    for topic in topics:
        for index in (0, 1):
            markers = control_markers(broker.bootstrap_servers, topic, index)
            assert markers == [(pid, epoch, True), (pid, epoch, False)]


def test_a_new_incarnation_fences_the_old_producer(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(2)
    old = producer(broker.bootstrap_servers, "tx-fence")
    old.init_transactions(10)
    old.begin_transaction()
    produce_each(old, [topic], b"zombie")
    open_txn = describe(broker.bootstrap_servers, "tx-fence")
    assert open_txn.transaction_state == "Ongoing"
    assert sorted(open_txn.topics[0].partitions) == [0, 1]

    new = producer(broker.bootstrap_servers, "tx-fence")
    new.init_transactions(10)  # aborts the zombie's transaction under a bumped epoch
    with pytest.raises(ck.KafkaException) as caught:
        old.commit_transaction(10)
    error = caught.value.args[0]
    assert error.fatal() and error.code() in (
        ck.KafkaError._FENCED,
        ck.KafkaError.PRODUCER_FENCED,
        ck.KafkaError.INVALID_PRODUCER_EPOCH,
    )
    now = describe(broker.bootstrap_servers, "tx-fence")
    pid, epoch = open_txn.producer_id, open_txn.producer_epoch
    assert (now.producer_id, now.producer_epoch) == (pid, epoch + 2)
    assert control_markers(broker.bootstrap_servers, topic, 0) == [(pid, epoch + 1, False)]
    new.begin_transaction()
    new.produce(topic, b"ok", partition=0)
    new.commit_transaction(10)
    assert control_markers(broker.bootstrap_servers, topic, 0)[-1] == (pid, epoch + 2, True)


def test_list_and_describe_transactions(broker: Broker, new_topic: Callable[..., str]) -> None:
    topic = new_topic(2)
    p = producer(broker.bootstrap_servers, "tx-listed-1")
    p.init_transactions(10)
    p.begin_transaction()
    produce_each(p, [topic], b"open")
    client = WireClient(broker.bootstrap_servers)
    try:
        ongoing = client.call(ListTransactionsRequest(state_filters=["Ongoing", "Bogus"]), 0)
        by_pattern = client.call(
            ListTransactionsRequest(transactional_id_pattern="tx-listed-.*"), 2
        )
        long_running = client.call(ListTransactionsRequest(duration_filter=3_600_000), 1)
        unknown = client.call(DescribeTransactionsRequest(["tx-never-seen"]), 0)
    finally:
        client.close()
    p.abort_transaction(10)
    assert ongoing.unknown_state_filters == ["Bogus"]
    assert "tx-listed-1" in {s.transactional_id for s in ongoing.transaction_states}
    assert {s.transaction_state for s in ongoing.transaction_states} == {"Ongoing"}
    assert [(s.transactional_id, s.transaction_state) for s in by_pattern.transaction_states] == [
        ("tx-listed-1", "Ongoing")
    ]
    assert "tx-listed-1" not in {s.transactional_id for s in long_running.transaction_states}
    assert unknown.transaction_states[0].error_code == 105  # TRANSACTIONAL_ID_NOT_FOUND


def test_an_abandoned_transaction_is_aborted_after_its_timeout() -> None:
    overrides = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "100"}
    with Broker(overrides=overrides) as broker:
        broker.run(lambda b: b.create_topic("abandoned", 1, {})).result(10)
        p = producer(broker.bootstrap_servers, "tx-abandoned", **{"transaction.timeout.ms": 1000})
        p.init_transactions(10)
        p.begin_transaction()
        p.produce("abandoned", b"never committed", partition=0)
        assert p.flush(10) == 0
        before = describe(broker.bootstrap_servers, "tx-abandoned")
        after = wait_for_state(broker.bootstrap_servers, "tx-abandoned", "CompleteAbort")
        pid, epoch = before.producer_id, before.producer_epoch
        assert (after.producer_id, after.producer_epoch) == (pid, epoch + 1)
        assert control_markers(broker.bootstrap_servers, "abandoned", 0) == [
            (pid, epoch + 1, False)
        ]
        with pytest.raises(ck.KafkaException):
            p.commit_transaction(10)


@pytest.fixture
def process(tmp_path: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(
        str(tmp_path / "data"), "transaction.abort.timed.out.transaction.cleanup.interval.ms=100"
    )
    try:
        yield proc
    finally:
        proc.ensure_stopped()


def test_kill_9_keeps_the_id_and_aborts_the_open_transaction(process: BrokerProcess) -> None:
    bootstrap = process.start()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("durable", 1)])["durable"].result(10)
    p = producer(bootstrap, "tx-durable", **{"transaction.timeout.ms": 2000})
    p.init_transactions(10)
    p.begin_transaction()
    p.produce("durable", b"kept", partition=0)
    p.commit_transaction(10)
    p.begin_transaction()
    p.produce("durable", b"lost", partition=0)
    assert p.flush(10) == 0
    before = describe(bootstrap, "tx-durable")
    assert before.transaction_state == "Ongoing"
    process.kill()

    bootstrap = process.start()
    pid, epoch = before.producer_id, before.producer_epoch
    after = wait_for_state(bootstrap, "tx-durable", "CompleteAbort")
    assert (after.producer_id, after.producer_epoch) == (pid, epoch + 1)
    assert control_markers(bootstrap, "durable", 0) == [(pid, epoch, True), (pid, epoch + 1, False)]
    again = producer(bootstrap, "tx-durable")
    again.init_transactions(10)
    resumed = describe(bootstrap, "tx-durable")
    assert (resumed.producer_id, resumed.producer_epoch, resumed.transaction_state) == (
        pid,
        epoch + 2,
        "Empty",
    )
