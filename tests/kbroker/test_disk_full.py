"""A full disk: produces fail with KAFKA_STORAGE_ERROR, reads go on, nothing acked is lost;
a topic that cannot be created is not half-created.

A real broker process writes its log dir to a small tmpfs mounted for the test (the machine, and
CI's, runs tests as root), and a real client produces until the disk is full. Segments are
small, so the disk fills across segment rolls and index pages, not only mid-write. Mounting is a
prerequisite, not an option: if it fails the test fails and says why.
"""

from __future__ import annotations

import errno
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from protocol.error_codes import ErrorCode
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.metadata_request import MetadataRequest
from protocol.records import LOG_OVERHEAD, check_batch, iter_batch_headers
from tests.kbroker.process import BrokerProcess
from tests.kbroker.wire import WireClient

pytestmark = pytest.mark.clients

TOPIC = "filling"
RECORD = 3000  # bytes of value per record
DISK_BYTES = 384 * 1024
TIMEOUT = 10.0
TOPIC_CONFIG = {
    "internal.segment.bytes": str(32 * 1024),  # rolls every ~10 records
    "index.interval.bytes": "0",  # an index entry per batch
    "file.delete.delay.ms": "0",  # DeleteRecords gives the space back at once
}


def run(*cmd: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of DISK_BYTES bytes, unmounted at the end whatever happened."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    run("mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0755", "tmpfs", str(mount_point))
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def processes() -> Iterator[list[BrokerProcess]]:
    started: list[BrokerProcess] = []
    yield started
    for process in started:
        process.ensure_stopped()


def start(data_dir: Path, processes: list[BrokerProcess]) -> str:
    broker = BrokerProcess(str(data_dir / "logs"))
    # The broker's own log file goes next to the data dir: not on the small disk.
    broker.log_path = str(data_dir.parent / f"broker-{len(processes)}.log")
    processes.append(broker)
    return broker.start()


class Filled:
    """What a fill-up produced: acknowledged (offset -> value) and the failures' error codes."""

    def __init__(self) -> None:
        self.acked: dict[int, bytes] = {}
        self.errors: list[int] = []

    def on_delivery(self, err: Any, msg: Any) -> None:
        if err is None:
            self.acked[msg.offset()] = msg.value()
        else:
            self.errors.append(err.code())


def producer(bootstrap: str) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 0,
            "retries": 0,  # show us the broker's answer, do not retry it
            "enable.idempotence": False,
            "message.timeout.ms": 10_000,
        }
    )


def fill_disk(bootstrap: str) -> Filled:
    """Produce one record at a time until three in a row fail (or twice the disk's worth)."""
    filled = Filled()
    client = producer(bootstrap)
    failures_in_a_row = 0
    for i in range(2 * DISK_BYTES // RECORD):
        value = b"%06d" % i + bytes([i % 251]) * (RECORD - 6)
        before = len(filled.errors)
        client.produce(TOPIC, value, partition=0, on_delivery=filled.on_delivery)
        assert client.flush(TIMEOUT) == 0, f"produce {i} got no answer"
        failures_in_a_row = failures_in_a_row + 1 if len(filled.errors) > before else 0
        if failures_in_a_row == 3:
            break
    return filled


def read_all(bootstrap: str, start: int = 0) -> dict[int, bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "disk-full", "enable.auto.commit": False}
    )
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=TIMEOUT)
        consumer.assign([TopicPartition(TOPIC, 0, max(start, low))])
        found: dict[int, bytes] = {}
        while len(found) < high - max(start, low):
            messages = consumer.consume(high - max(start, low) - len(found), TIMEOUT)
            assert messages, f"stalled at {len(found)} records below the high watermark {high}"
            for m in messages:
                assert m.error() is None, m.error()
                offset, value = m.offset(), m.value()
                assert offset is not None and value is not None
                found[offset] = value
        return found
    finally:
        consumer.close()


def assert_whole_batches(partition_dir: Path) -> None:
    """Every segment file tiles into complete batches whose CRCs hold: nothing torn is kept."""
    logs = sorted(partition_dir.glob("*.log"))
    assert logs, f"no segment in {partition_dir}"
    for path in logs:
        data = path.read_bytes()
        end = 0
        for position, header in iter_batch_headers(data):
            assert position == end, f"{path.name}: gap before byte {position}"
            end = position + header.batch_length + LOG_OVERHEAD
            check_batch(memoryview(data)[position:end])
        assert end == len(data), f"{path.name}: {len(data) - end} stray bytes after the last batch"


def create_topic(bootstrap: str) -> AdminClient:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, 1, 1, config=TOPIC_CONFIG)])[TOPIC].result(TIMEOUT)
    return admin


def check_filled(filled: Filled) -> None:
    assert filled.errors, "the disk never filled up"
    assert set(filled.errors) == {KafkaError.KAFKA_STORAGE_ERROR}, filled.errors
    assert len(filled.acked) * RECORD > DISK_BYTES // 2, "the disk failed long before it was full"
    assert sorted(filled.acked) == list(range(len(filled.acked))), "acknowledged offsets have gaps"


def produce_one(bootstrap: str, value: bytes, within_s: float = TIMEOUT) -> int:
    """Produce until accepted (space is freed by the broker's I/O thread); the offset."""
    client = producer(bootstrap)
    deadline = time.monotonic() + within_s
    while True:
        filled = Filled()
        client.produce(TOPIC, value, partition=0, on_delivery=filled.on_delivery)
        assert client.flush(TIMEOUT) == 0
        if filled.acked:
            (offset,) = filled.acked
            return offset
        assert filled.errors == [KafkaError.KAFKA_STORAGE_ERROR]
        assert time.monotonic() < deadline, "produce still fails after space was freed"
        time.sleep(0.05)


def test_full_disk_fails_produces_and_keeps_serving_reads(
    small_disk: Path, processes: list[BrokerProcess]
) -> None:
    bootstrap = start(small_disk, processes)
    admin = create_topic(bootstrap)
    filled = fill_disk(bootstrap)
    check_filled(filled)
    assert processes[0].proc is not None and processes[0].proc.poll() is None

    assert read_all(bootstrap) == filled.acked  # nothing acknowledged lost, nothing failed kept
    assert_whole_batches(small_disk / "logs" / f"{TOPIC}-0")
    metadata = admin.list_topics(TOPIC, timeout=TIMEOUT).topics[TOPIC]
    assert metadata.error is None and list(metadata.partitions) == [0]

    high = len(filled.acked)
    (deleted,) = admin.delete_records([TopicPartition(TOPIC, 0, high)]).values()
    assert deleted.result(TIMEOUT).low_watermark == high
    assert produce_one(bootstrap, b"after the delete") == high  # offsets go on where they were
    assert read_all(bootstrap) == {high: b"after the delete"}
    assert_whole_batches(small_disk / "logs" / f"{TOPIC}-0")


def test_full_disk_survives_a_restart(small_disk: Path, processes: list[BrokerProcess]) -> None:
    bootstrap = start(small_disk, processes)
    create_topic(bootstrap)
    filled = fill_disk(bootstrap)
    check_filled(filled)
    processes[0].stop()  # SIGTERM with the disk still full
    assert_whole_batches(small_disk / "logs" / f"{TOPIC}-0")

    run("mount", "-o", f"remount,size={4 * DISK_BYTES}", str(small_disk))
    bootstrap = start(small_disk, processes)
    assert read_all(bootstrap) == filled.acked
    high = len(filled.acked)
    assert produce_one(bootstrap, b"after the restart") == high
    assert read_all(bootstrap, start=high) == {high: b"after the restart"}
    assert processes[1].stop() == 0


def fill_with_file(path: Path) -> None:
    """Write `path` until the disk refuses even one more byte."""
    with open(path, "wb", buffering=0) as f:
        for chunk in (64 * 1024, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc


def produce_to(bootstrap: str, topic: str, value: bytes) -> int:
    filled = Filled()
    client = producer(bootstrap)
    client.produce(topic, value, partition=0, on_delivery=filled.on_delivery)
    assert client.flush(TIMEOUT) == 0
    assert filled.errors == [], filled.errors
    (offset,) = filled.acked
    return offset


def test_create_topic_on_a_full_disk_is_all_or_nothing(
    small_disk: Path, processes: list[BrokerProcess]
) -> None:
    bootstrap = start(small_disk, processes)
    admin = create_topic(bootstrap)
    assert produce_to(bootstrap, TOPIC, b"before") == 0
    filler = small_disk / "filler"
    fill_with_file(filler)

    doomed = admin.create_topics([NewTopic("doomed", 3, 1)])["doomed"]
    with pytest.raises(KafkaException) as failed:
        doomed.result(TIMEOUT)
    assert failed.value.args[0].code() == KafkaError.KAFKA_STORAGE_ERROR, failed.value
    # Metadata still answers, without the topic, while the disk is still full.
    topics = admin.list_topics(timeout=TIMEOUT).topics
    assert "doomed" not in topics and list(topics[TOPIC].partitions) == [0]
    assert not list((small_disk / "logs").glob("doomed-*[0-9]")), "partition dirs left behind"
    # The first group and transactional lookups cannot create their internal topics either:
    # the answer is "not available yet" (clients retry), and the connection stays open.
    client = WireClient(bootstrap)
    for key_type in (0, 1):
        found = client.call(FindCoordinatorRequest(key="k", key_type=key_type), 3)
        assert found.error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE, found
    assert client.call(MetadataRequest(topics=None), 9).topics
    client.close()

    filler.unlink()  # space again: the broker serves on and the same create now works
    assert produce_to(bootstrap, TOPIC, b"after") == 1
    admin.create_topics([NewTopic("doomed", 3, 1)])["doomed"].result(TIMEOUT)
    metadata = admin.list_topics("doomed", timeout=TIMEOUT).topics["doomed"]
    assert metadata.error is None and sorted(metadata.partitions) == [0, 1, 2]
    assert produce_to(bootstrap, "doomed", b"first") == 0

    assert processes[0].stop() == 0  # and it is all there after a restart
    bootstrap = start(small_disk, processes)
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=TIMEOUT).topics
    assert sorted(topics["doomed"].partitions) == [0, 1, 2]
    assert processes[1].stop() == 0
