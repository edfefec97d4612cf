"""Single-node gaps closed: old producers' max_timestamp, all-or-nothing topic store, ListOffsets
v0, sendfile errors."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import (
    AdminClient,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition

from kbroker import admin as admin_module
from kbroker import config_dynamic
from kbroker.network import Connection, Server
from kbroker.testing import Broker
from kbroker.topic_store import TopicStore
from protocol import records
from protocol._codec import FileRegion, Writer
from protocol.error_codes import ErrorCode
from protocol.messages.incremental_alter_configs_request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)
from protocol.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from storage.errors import KafkaStorageError
from storage.filecache import FileHandleCache, SegmentFile
from storage.fs import OS_FS
from storage.types import FetchDataInfo
from tests.kbroker.process import BrokerProcess
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


# --- sendfile of a segment that is gone -------------------------------------------------------


def test_a_region_that_cannot_be_opened_closes_the_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A fetch chose a range of a segment whose file then vanished (no descriptor was open).

    Opening it for sendfile fails: the connection is closed with a log line, the serving task
    ends normally, and the lease the fetch held on the file is released.
    """
    path = tmp_path / "00000000000000000000.log"
    path.write_bytes(b"x" * 100)
    segment = SegmentFile(FileHandleCache(), OS_FS, str(path))
    chosen = FetchDataInfo(0, 0, 10, 50, segment)
    assert segment.leased
    regions = [FileRegion(-1, 10, 50, chosen.open_fd)]  # what the fetch handler builds
    del chosen  # now the region alone holds the range, as in a fetch response
    path.unlink()
    connections: list[Connection] = []

    async def dispatch(conn: Connection, frame: bytearray) -> Writer:
        connections.append(conn)
        response = Writer()
        response.buf += b"\0\0\0\x3c" + b"header"  # size prefix, then the start of a body
        response.regions.append((len(response.buf), regions.pop()))
        return response

    async def scenario() -> bytes:
        server = Server(dispatch, 1 << 20, 60_000)
        ((host, port),) = await server.listen(("127.0.0.1",), 0)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"\0\0\0\x04ping")
        # until the broker closes the connection (the bound only turns a hang into a failure)
        received = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        (conn,) = connections
        assert conn._task is not None
        await conn._task  # ended by itself: not cancelled, no exception
        await server.stop_accepting()
        await server.close_all()
        return received

    with caplog.at_level(logging.WARNING, logger="kbroker.network"):
        received = asyncio.run(scenario())
    assert received == b"\0\0\0\x3cheader"  # the frame was cut short where the region began
    assert any("sendfile failed" in r.getMessage() for r in caplog.records), caplog.text
    assert not regions and not segment.leased  # the response and its region were dropped


# --- ListOffsets v0 ---------------------------------------------------------------------------


def offsets_v0(
    client: WireClient, topic: str, timestamp: int, max_num: int = 10, partition: int = 0
) -> tuple[int, list[int]]:
    wanted = ListOffsetsPartition(partition, timestamp=timestamp, max_num_offsets=max_num)
    request = ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsTopic(topic, [wanted])])
    answer = client.call(request, 0).topics[0].partitions[0]
    return answer.error_code, list(answer.old_style_offsets)


def test_list_offsets_v0_answers_segment_boundaries(
    broker: Broker, client: WireClient, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(configs={"internal.segment.bytes": "200"})  # one batch per segment
    for i in range(3):
        rows: list[records.RecordTuple] = [(None, b"v" * 60, [], i), (None, b"w" * 60, [], i)]
        assert produce(client, topic, records.build_batch(rows)).error_code == ErrorCode.NONE
    log_dir = broker.run(lambda b: b.partition(topic, 0).log.dir).result(10)
    segment_files = sorted(Path(log_dir).glob("*.log"))
    assert [int(p.stem) for p in segment_files] == [0, 2, 4]
    t0 = 1_600_000_000_000
    for i, path in enumerate(segment_files):  # modification times 1 s apart, known to the test
        os.utime(path, ns=((t0 + 1000 * i) * 10**6,) * 2)

    # Candidates: (0, t0), (2, t0 + 1 s), (4, t0 + 2 s), and the log end (6, now).
    assert offsets_v0(client, topic, -1) == (ErrorCode.NONE, [6, 4, 2, 0])
    assert offsets_v0(client, topic, -1, max_num=2) == (ErrorCode.NONE, [6, 4])
    assert offsets_v0(client, topic, -2) == (ErrorCode.NONE, [0])
    assert offsets_v0(client, topic, t0 + 1500) == (ErrorCode.NONE, [2, 0])
    assert offsets_v0(client, topic, t0 + 1500, max_num=1) == (ErrorCode.NONE, [2])
    assert offsets_v0(client, topic, t0 - 1) == (ErrorCode.NONE, [])
    assert offsets_v0(client, topic, t0 + 1000, max_num=0) == (ErrorCode.NONE, [])
    assert offsets_v0(client, topic, -3) == (ErrorCode.UNSUPPORTED_VERSION, [])
    assert offsets_v0(client, topic, -1, partition=7) == (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, [])


def test_list_offsets_v0_of_an_empty_partition(
    client: WireClient, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    assert offsets_v0(client, topic, -1) == (ErrorCode.NONE, [0])
    assert offsets_v0(client, topic, -2) == (ErrorCode.NONE, [0])


def test_kafka_python_0_9_seeks_with_list_offsets_v0(
    broker: Broker, client: WireClient, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    rows: list[records.RecordTuple] = [(None, b"v", [], 0)] * 5
    assert produce(client, topic, records.build_batch(rows)).error_code == ErrorCode.NONE
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, api_version=(0, 9))
    try:
        tp = KpTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_end(tp)
        end = consumer.position(tp)
        consumer.seek_to_beginning(tp)
        beginning = consumer.position(tp)
    finally:
        consumer.close()
    assert (beginning, end) == (0, 5)


# --- dynamic broker configs across restarts ---------------------------------------------------


def broker_configs(admin: AdminClient, name: str = "0") -> dict[str, Any]:
    future = admin.describe_configs([ConfigResource(ResourceType.BROKER, name)])
    (configs,) = [f.result(10) for f in future.values()]
    return dict(configs)


def alter_broker(bootstrap: str, name: str, key: str, value: str | None) -> int:
    """IncrementalAlterConfigs on a broker resource (librdkafka refuses the default, "")."""
    op = 0 if value is not None else 1  # SET, DELETE
    resource = AlterConfigsResource(4, name, [AlterableConfig(key, op, value)])
    wire = WireClient(bootstrap)
    try:
        answer = wire.call(IncrementalAlterConfigsRequest(resources=[resource]), 1)
    finally:
        wire.close()
    code: int = answer.responses[0].error_code
    return code


def value_and_source(entry: Any) -> tuple[str, ConfigSource]:
    return entry.value, ConfigSource(entry.source)


def test_dynamic_broker_configs_survive_a_restart(tmp_path: Path) -> None:
    process = BrokerProcess(str(tmp_path / "logs"))
    try:
        bootstrap = process.start()
        admin = AdminClient({"bootstrap.servers": bootstrap})
        assert alter_broker(bootstrap, "0", "log.retention.ms", "600000") == ErrorCode.NONE
        assert alter_broker(bootstrap, "", "log.retention.ms", "900000") == ErrorCode.NONE
        assert alter_broker(bootstrap, "", "log.segment.bytes", "2097152") == ErrorCode.NONE
        admin.create_topics([NewTopic("follows", 1, 1)])["follows"].result(10)
        process.kill()  # acknowledged means saved: no clean shutdown needed

        bootstrap = process.start()
        admin = AdminClient({"bootstrap.servers": bootstrap})
        configs = broker_configs(admin)
        retention = configs["log.retention.ms"]
        assert value_and_source(retention) == ("600000", ConfigSource.DYNAMIC_BROKER_CONFIG)
        # The shadowed cluster default came back too (confluent keys synonyms by name, so
        # of the two log.retention.ms synonyms it keeps the lower one).
        synonyms = [value_and_source(s) for s in retention.synonyms.values()]
        assert ("900000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG) in synonyms
        assert value_and_source(configs["log.segment.bytes"]) == (
            "2097152",
            ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
        )
        topic = ConfigResource(ResourceType.TOPIC, "follows")
        (topic_configs,) = [f.result(10) for f in admin.describe_configs([topic]).values()]
        assert value_and_source(topic_configs["retention.ms"]) == (
            "600000",
            ConfigSource.DYNAMIC_BROKER_CONFIG,
        )

        # Deleting the per-broker value lets the (restored) cluster default show through.
        assert alter_broker(bootstrap, "0", "log.retention.ms", None) == ErrorCode.NONE
        assert process.stop() == 0
        admin = AdminClient({"bootstrap.servers": process.start()})
        assert value_and_source(broker_configs(admin)["log.retention.ms"]) == (
            "900000",
            ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
        )
        assert process.stop() == 0
    finally:
        process.ensure_stopped()


def test_a_failed_save_changes_no_broker_config(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: object) -> None:
        raise KafkaStorageError("no space")

    monkeypatch.setattr(admin_module, "save_dynamic_configs", disk_full)
    code = alter_broker(broker.bootstrap_servers, "0", "log.retention.ms", "12345")
    assert code == ErrorCode.KAFKA_STORAGE_ERROR
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    assert broker_configs(admin)["log.retention.ms"].value != "12345"


def test_dynamic_config_file_rules(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = str(tmp_path)
    assert config_dynamic.read_dynamic_configs(directory, 0) == ({}, {})
    config_dynamic.save_dynamic_configs(
        directory, 0, {"log.retention.ms": "1000"}, {"num.io.threads": "4"}
    )
    assert config_dynamic.read_dynamic_configs(directory, 0) == (
        {"log.retention.ms": "1000"},
        {"num.io.threads": "4"},
    )
    # Another broker's per-broker layer is not ours; the cluster default is.
    assert config_dynamic.read_dynamic_configs(directory, 1) == ({}, {"num.io.threads": "4"})

    path = tmp_path / config_dynamic.FILE_NAME
    body = json.loads(path.read_text())
    body["broker"]["log.dirs"] = "/elsewhere"  # not dynamic: skipped with a warning
    body["checksum"] = config_dynamic._checksum({k: v for k, v in body.items() if k != "checksum"})
    path.write_text(json.dumps(body))
    with caplog.at_level(logging.WARNING, logger="kbroker.config"):
        per_broker, _ = config_dynamic.read_dynamic_configs(directory, 0)
    assert per_broker == {"log.retention.ms": "1000"} and "log.dirs" in caplog.text

    body["broker"]["log.retention.ms"] = "2000"  # edited without fixing the checksum
    path.write_text(json.dumps(body))
    with pytest.raises(config_dynamic.DynamicConfigError, match="checksum"):
        config_dynamic.read_dynamic_configs(directory, 0)
    path.write_text("{not json")
    with pytest.raises(config_dynamic.DynamicConfigError, match="unreadable"):
        config_dynamic.read_dynamic_configs(directory, 0)
