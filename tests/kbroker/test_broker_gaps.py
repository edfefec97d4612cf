"""Single-node gaps closed: old producers' max_timestamp, all-or-nothing topic store, ListOffsets
v0, sendfile errors."""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kbroker.testing import Broker
from kbroker.topic_store import TopicStore
from protocol import records
from protocol.error_codes import ErrorCode
from protocol.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from storage.errors import KafkaStorageError
from storage.fs import OS_FS
from tests.kbroker.test_topic_behaviour import fetch_bytes, produce
from tests.kbroker.wire import WireClient


@pytest.fixture
def client(broker: Broker) -> Iterator[WireClient]:
    wire = WireClient(broker.bootstrap_servers)
    yield wire
    wire.close()


def list_offset(client: WireClient, topic: str, timestamp: int) -> tuple[int, int]:
    request = ListOffsetsRequest(
        replica_id=-1,
        topics=[ListOffsetsTopic(topic, [ListOffsetsPartition(0, timestamp=timestamp)])],
    )
    answer = client.call(request, 7).topics[0].partitions[0]
    assert answer.error_code == ErrorCode.NONE
    return answer.timestamp, answer.offset


def old_producer_batch(
    timestamps: list[int], compression: records.Compression = records.Compression.NONE
) -> bytes:
    """A batch as sarama 1.22 writes it: max_timestamp -1 in the header."""
    rows: list[records.RecordTuple] = [(b"k", b"v", [], ts) for ts in timestamps]
    return records.build_batch(rows, compression=compression, max_timestamp=-1)


def test_max_timestamp_minus_one_is_recomputed(
    client: WireClient, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    t0 = int(time.time() * 1000) - 60_000
    first = old_producer_batch([t0, t0 + 10, t0 + 5])
    second = old_producer_batch([t0 + 1000, t0 + 1001], records.Compression.GZIP)
    assert produce(client, topic, first).error_code == ErrorCode.NONE
    assert produce(client, topic, second).error_code == ErrorCode.NONE

    # Seek by timestamp finds each batch; before the fix both answers were -1.
    assert list_offset(client, topic, t0 + 7) == (t0 + 10, 1)  # the first record >= t0 + 7
    assert list_offset(client, topic, t0 + 500) == (t0 + 1000, 3)
    assert list_offset(client, topic, -3) == (t0 + 1001, 4)  # KIP-734: largest timestamp

    # What is stored (and served) carries the recomputed maximum under a correct CRC.
    stored = fetch_bytes(client, topic)
    headers = [records.check_batch(stored, pos) for pos, _ in records.iter_batch_headers(stored)]
    assert [h.max_timestamp for h in headers] == [t0 + 10, t0 + 1001]


def test_a_repaired_timestamp_is_checked_against_the_topic_bounds(
    client: WireClient, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(configs={"message.timestamp.before.max.ms": "3600000"})
    ancient = int(time.time() * 1000) - 10 * 3_600_000
    answer = produce(client, topic, old_producer_batch([ancient, ancient + 1]))
    assert answer.error_code == ErrorCode.INVALID_TIMESTAMP


def test_topic_store_changes_are_all_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TopicStore(str(tmp_path))
    kept = store.add(store.new_topic("kept", 2, {"retention.ms": "1000"}))

    def no_space(path: str, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(OS_FS, "write_atomically", no_space)
    attempts: list[Callable[[], object]] = [
        lambda: store.add(store.new_topic("doomed", 1, {})),
        lambda: store.remove("kept"),
        lambda: store.set_partitions("kept", 5),
        lambda: store.set_configs("kept", {}),
    ]
    for attempt in attempts:
        with pytest.raises(KafkaStorageError):
            attempt()
    assert list(store.topics) == ["kept"] and list(store.by_id) == [kept.topic_id]
    assert (kept.partitions, kept.configs) == (2, {"retention.ms": "1000"})
    monkeypatch.undo()
    reloaded = TopicStore(str(tmp_path)).topics
    assert list(reloaded) == ["kept"] and reloaded["kept"].partitions == 2
