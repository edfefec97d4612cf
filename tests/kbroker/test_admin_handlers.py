"""Admin APIs over a real socket, with our own protocol layer: every advertised version, and edges.

DescribeConfigs, AlterConfigs, IncrementalAlterConfigs, CreatePartitions, DeleteRecords,
DescribeCluster, DescribeLogDirs and DescribeTopicPartitions against an in-process broker of this
module's own (broker-level config changes must not leak into other test modules). Effects are
checked on the broker's own objects (its topic store and partition logs) through `Broker.run`.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kbroker import broker as broker_module
from kbroker.testing import Broker
from protocol._codec import ApiMessage
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.frames import decode_response, encode_request
from protocol.messages import (
    alter_configs_request as ac,
)
from protocol.messages import (
    create_partitions_request as cp,
)
from protocol.messages import (
    delete_records_request as dr,
)
from protocol.messages import (
    describe_configs_request as dc,
)
from protocol.messages import (
    describe_log_dirs_request as dld,
)
from protocol.messages import (
    describe_topic_partitions_request as dtp,
)
from protocol.messages import (
    incremental_alter_configs_request as iac,
)
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.describe_cluster_request import DescribeClusterRequest
from protocol.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from protocol.messages.request_header import RequestHeader
from protocol.records import build_batch

TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
DYNAMIC_TOPIC_CONFIG, DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG = 1, 2, 3
STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 4, 5
DEFAULT_SEGMENT_BYTES = 1024 * 1024 * 1024
EARLIEST = -2

_names = itertools.count()


class WireClient:
    """A tiny synchronous Kafka client: one request at a time, our own encoder and decoder."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("localhost", port), timeout=10)
        self.correlation_id = 0

    def call(self, body: ApiMessage, version: int) -> Any:
        assert body.API_KEY is not None
        self.correlation_id += 1
        header = RequestHeader(
            request_api_key=body.API_KEY,
            request_api_version=version,
            correlation_id=self.correlation_id,
            client_id="admin-handler-test",
        )
        self.sock.sendall(encode_request(header, body))
        (size,) = struct.unpack(">i", self._read(4))
        response_header, response = decode_response(self._read(size), body.API_KEY, version)
        assert response_header.correlation_id == self.correlation_id
        return response

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("connection closed by the broker")
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def kb() -> Iterator[Broker]:
    with Broker() as b:
        yield b


@pytest.fixture(scope="module")
def client(kb: Broker) -> Iterator[WireClient]:
    c = WireClient(kb.port)
    yield c
    c.close()


def on_broker(kb: Broker, fn: Callable[[broker_module.Broker], Any]) -> Any:
    return kb.run(fn).result(10)


def make_topic(kb: Broker, partitions: int = 1, configs: dict[str, str] | None = None) -> str:
    name = f"admin{next(_names)}"
    on_broker(kb, lambda b: b.create_topic(name, partitions, configs or {}))
    return name


def produce(kb: Broker, topic: str, count: int, partition: int = 0) -> None:
    now = time.time_ns() // 1_000_000
    batch = bytearray(build_batch([(None, b"value-%d" % i, [], now) for i in range(count)]))
    on_broker(kb, lambda b: b.partition(topic, partition).append(memoryview(batch), now))


def overrides(kb: Broker, topic: str) -> dict[str, str]:
    return dict(on_broker(kb, lambda b: b.topics.topics[topic].configs))


def log_config(kb: Broker, topic: str, partition: int = 0) -> Any:
    return on_broker(kb, lambda b: b.partition(topic, partition).log.config)


# ---------------------------------------------------------------- ApiVersions


def test_advertised_versions(client: WireClient) -> None:
    response = client.call(ApiVersionsRequest(), 0)
    ranges = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert ranges[ApiKey.DESCRIBE_CONFIGS] == (0, 4)
    assert ranges[ApiKey.ALTER_CONFIGS] == (0, 2)
    assert ranges[ApiKey.INCREMENTAL_ALTER_CONFIGS] == (0, 1)
    assert ranges[ApiKey.CREATE_PARTITIONS] == (0, 3)
    assert ranges[ApiKey.DELETE_RECORDS] == (0, 2)
    assert ranges[ApiKey.DESCRIBE_CLUSTER] == (0, 1)
    assert ranges[ApiKey.DESCRIBE_LOG_DIRS] == (0, 4)
    assert ranges[ApiKey.DESCRIBE_TOPIC_PARTITIONS] == (0, 0)


def test_unadvertised_version_closes_the_connection(kb: Broker) -> None:
    c = WireClient(kb.port)
    try:
        with pytest.raises(ConnectionError):
            c.call(dld.DescribeLogDirsRequest(topics=None), 5)
    finally:
        c.close()


# ---------------------------------------------------------------- DescribeConfigs


def describe(client: WireClient, version: int, *resources: dc.DescribeConfigsResource) -> Any:
    request = dc.DescribeConfigsRequest(
        resources=list(resources), include_synonyms=version >= 1, include_documentation=True
    )
    return client.call(request, version)


@pytest.mark.parametrize("version", range(5))
def test_describe_topic_configs(kb: Broker, client: WireClient, version: int) -> None:
    topic = make_topic(kb, configs={"retention.ms": "1234"})
    (result,) = describe(client, version, dc.DescribeConfigsResource(TOPIC, topic, None)).results
    assert (result.error_code, result.resource_type, result.resource_name) == (0, TOPIC, topic)
    entries = {e.name: e for e in result.configs}
    assert "internal.segment.bytes" not in entries and "segment.bytes" in entries
    retention, segment_ms = entries["retention.ms"], entries["segment.ms"]
    assert retention.value == "1234" and not retention.read_only
    if version == 0:
        assert not retention.is_default and segment_ms.is_default
    else:
        assert retention.config_source == DYNAMIC_TOPIC_CONFIG
        assert segment_ms.config_source == DEFAULT_CONFIG
        assert (retention.synonyms[0].name, retention.synonyms[0].value) == ("retention.ms", "1234")
    if version >= 3:
        assert retention.config_type == 5  # LONG
        assert entries["cleanup.policy"].config_type == 7  # LIST
        assert retention.documentation


def test_describe_configs_key_filter(kb: Broker, client: WireClient) -> None:
    topic = make_topic(kb)
    keys = ["retention.ms", "no.such.config"]
    (result,) = describe(client, 4, dc.DescribeConfigsResource(TOPIC, topic, keys)).results
    assert [e.name for e in result.configs] == ["retention.ms"]
    assert result.configs[0].config_source == DEFAULT_CONFIG
    assert result.configs[0].value == str(7 * 24 * 3600 * 1000)


def test_describe_configs_errors_are_per_resource(kb: Broker, client: WireClient) -> None:
    topic = make_topic(kb)
    resources = [
        dc.DescribeConfigsResource(TOPIC, "no-such-topic", None),
        dc.DescribeConfigsResource(TOPIC, "bad name!", None),
        dc.DescribeConfigsResource(BROKER, "99", None),
        dc.DescribeConfigsResource(BROKER, "0_0", None),
        dc.DescribeConfigsResource(BROKER_LOGGER, "0", None),
        dc.DescribeConfigsResource(TOPIC, topic, ["retention.ms"]),
    ]
    results = describe(client, 4, *resources).results
    assert [(r.resource_type, r.resource_name) for r in results] == [
        (r.resource_type, r.resource_name) for r in resources
    ]
    assert [r.error_code for r in results] == [
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.INVALID_TOPIC_EXCEPTION,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.NONE,
    ]
    assert all(r.configs == [] for r in results[:5])
    assert "expected 0" in results[2].error_message


@pytest.mark.parametrize("version", range(5))
def test_describe_broker_configs(kb: Broker, client: WireClient, version: int) -> None:
    node, default = (dc.DescribeConfigsResource(BROKER, name, None) for name in ("0", ""))
    per_broker, cluster = describe(client, version, node, default).results
    assert per_broker.error_code == cluster.error_code == 0
    entries = {e.name: e for e in per_broker.configs}
    log_dirs = entries["log.dirs"]
    assert log_dirs.value == kb.data_dir and log_dirs.read_only
    assert not entries["log.retention.ms"].read_only  # dynamic
    if version >= 1:
        assert log_dirs.config_source == STATIC_BROKER_CONFIG
        assert entries["num.partitions"].config_source == DEFAULT_CONFIG
    assert cluster.configs == []  # no dynamic cluster-wide default is set


# ---------------------------------------------------------------- AlterConfigs


def alter(
    client: WireClient, version: int, rtype: int, name: str, configs: dict[str, str | None]
) -> Any:
    resource = ac.AlterConfigsResource(
        rtype, name, [ac.AlterableConfig(k, v) for k, v in configs.items()]
    )
    (result,) = client.call(ac.AlterConfigsRequest(resources=[resource]), version).responses
    assert (result.resource_type, result.resource_name) == (rtype, name)
    return result


@pytest.mark.parametrize("version", range(3))
def test_alter_configs_replaces_all_overrides(kb: Broker, client: WireClient, version: int) -> None:
    topic = make_topic(kb, configs={"flush.messages": "5"})
    configs: dict[str, str | None] = {"retention.ms": "1000", "segment.bytes": "2000000"}
    assert alter(client, version, TOPIC, topic, configs).error_code == 0
    assert overrides(kb, topic) == configs
    config = log_config(kb, topic)
    assert (config.retention_ms, config.segment_bytes) == (1000, 2000000)
    assert config.flush_interval_messages == 2**63 - 1  # flush.messages was not listed: reverts
    assert alter(client, version, TOPIC, topic, {"retention.ms": "2000"}).error_code == 0
    assert overrides(kb, topic) == {"retention.ms": "2000"}
    assert log_config(kb, topic).segment_bytes == DEFAULT_SEGMENT_BYTES


def test_alter_configs_validate_only_changes_nothing(kb: Broker, client: WireClient) -> None:
    topic = make_topic(kb, configs={"retention.ms": "5000"})
    resource = ac.AlterConfigsResource(TOPIC, topic, [ac.AlterableConfig("retention.ms", "7")])
    request = ac.AlterConfigsRequest(resources=[resource], validate_only=True)
    assert client.call(request, 2).responses[0].error_code == 0
    assert overrides(kb, topic) == {"retention.ms": "5000"}
    assert log_config(kb, topic).retention_ms == 5000


def test_alter_configs_errors(kb: Broker, client: WireClient) -> None:
    topic = make_topic(kb, configs={"retention.ms": "5000"})
    bad = alter(client, 2, TOPIC, topic, {"retention.ms": "soon"})
    assert bad.error_code == ErrorCode.INVALID_CONFIG and "retention.ms" in bad.error_message
    unknown = alter(client, 2, TOPIC, topic, {"no.such.config": "1"})
    assert (
        unknown.error_code == ErrorCode.INVALID_CONFIG and "no.such.config" in unknown.error_message
    )
    too_small = alter(client, 2, TOPIC, topic, {"segment.bytes": "100"})
    assert too_small.error_code == ErrorCode.INVALID_CONFIG
    missing = alter(client, 2, TOPIC, "no-such-topic", {"retention.ms": "1"})
    assert missing.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert alter(client, 2, TOPIC, "", {}).error_code == ErrorCode.INVALID_REQUEST
    assert alter(client, 2, TOPIC, "a b", {}).error_code == ErrorCode.INVALID_TOPIC_EXCEPTION
    null = alter(client, 2, TOPIC, topic, {"retention.ms": None})
    assert null.error_code == ErrorCode.INVALID_REQUEST and "Null value" in null.error_message
    assert alter(client, 2, BROKER_LOGGER, "0", {}).error_code == ErrorCode.INVALID_REQUEST
    twice = ac.AlterConfigsResource(
        TOPIC,
        topic,
        [ac.AlterableConfig("retention.ms", "1"), ac.AlterableConfig("retention.ms", "2")],
    )
    response = client.call(ac.AlterConfigsRequest(resources=[twice]), 2)
    assert response.responses[0].error_code == ErrorCode.INVALID_REQUEST
    same = ac.AlterConfigsResource(TOPIC, topic, [])
    response = client.call(ac.AlterConfigsRequest(resources=[same, same]), 2)
    assert [r.error_code for r in response.responses] == [ErrorCode.INVALID_REQUEST] * 2
    assert overrides(kb, topic) == {"retention.ms": "5000"}  # nothing applied


def test_alter_broker_configs_take_effect(kb: Broker, client: WireClient) -> None:
    plain = make_topic(kb)
    pinned = make_topic(kb, configs={"retention.ms": "5000"})
    try:
        assert alter(client, 2, BROKER, "0", {"log.retention.ms": "7200000"}).error_code == 0
        assert alter(client, 2, BROKER, "", {"log.segment.bytes": "2097152"}).error_code == 0
        assert log_config(kb, plain).retention_ms == 7200000
        assert log_config(kb, plain).segment_bytes == 2097152
        assert log_config(kb, pinned).retention_ms == 5000  # the topic's own override wins
        node, default, topic = describe(
            client,
            4,
            dc.DescribeConfigsResource(BROKER, "0", ["log.retention.ms", "log.segment.bytes"]),
            dc.DescribeConfigsResource(BROKER, "", None),
            dc.DescribeConfigsResource(TOPIC, plain, ["retention.ms"]),
        ).results
        sources = {e.name: (e.value, e.config_source) for e in node.configs}
        assert sources == {
            "log.retention.ms": ("7200000", DYNAMIC_BROKER_CONFIG),
            "log.segment.bytes": ("2097152", DYNAMIC_DEFAULT_BROKER_CONFIG),
        }
        assert [(e.name, e.value) for e in default.configs] == [("log.segment.bytes", "2097152")]
        assert topic.configs[0].config_source == DYNAMIC_BROKER_CONFIG
        # errors: a static config, another broker, a bad value; nothing changes
        static = alter(client, 2, BROKER, "0", {"log.dirs": "/elsewhere"})
        assert static.error_code == ErrorCode.INVALID_REQUEST and "log.dirs" in static.error_message
        assert alter(client, 2, BROKER, "7", {}).error_code == ErrorCode.INVALID_REQUEST
        bad = alter(client, 2, BROKER, "0", {"log.retention.ms": "x"})
        assert bad.error_code == ErrorCode.INVALID_REQUEST
        assert log_config(kb, plain).retention_ms == 7200000
    finally:
        assert alter(client, 2, BROKER, "0", {}).error_code == 0
        assert alter(client, 2, BROKER, "", {}).error_code == 0
    assert log_config(kb, plain).retention_ms == 7 * 24 * 3600 * 1000
    assert log_config(kb, plain).segment_bytes == DEFAULT_SEGMENT_BYTES


# ---------------------------------------------------------------- IncrementalAlterConfigs


def edit(
    client: WireClient,
    version: int,
    rtype: int,
    name: str,
    *ops: tuple[str, int, str | None],
    validate_only: bool = False,
) -> Any:
    configs = [iac.AlterableConfig(n, op, v) for n, op, v in ops]
    request = iac.IncrementalAlterConfigsRequest(
        resources=[iac.AlterConfigsResource(rtype, name, configs)], validate_only=validate_only
    )
    (result,) = client.call(request, version).responses
    return result


@pytest.mark.parametrize("version", range(2))
def test_incremental_alter_configs(kb: Broker, client: WireClient, version: int) -> None:
    topic = make_topic(kb, configs={"flush.messages": "5"})
    ok = edit(
        client,
        version,
        TOPIC,
        topic,
        ("retention.ms", SET, "9000"),
        ("cleanup.policy", APPEND, "compact"),
    )
    assert ok.error_code == 0
    assert overrides(kb, topic) == {
        "flush.messages": "5",
        "retention.ms": "9000",
        "cleanup.policy": "delete,compact",
    }
    assert (
        edit(client, version, TOPIC, topic, ("cleanup.policy", SUBTRACT, "delete")).error_code == 0
    )
    assert edit(client, version, TOPIC, topic, ("retention.ms", DELETE, None)).error_code == 0
    assert overrides(kb, topic) == {"flush.messages": "5", "cleanup.policy": "compact"}
    config = log_config(kb, topic)
    assert (config.cleanup_policy, config.retention_ms) == ("compact", 7 * 24 * 3600 * 1000)
    assert edit(client, version, TOPIC, topic, ("no.such.config", DELETE, None)).error_code == 0
    dry = edit(client, version, TOPIC, topic, ("flush.messages", DELETE, None), validate_only=True)
    assert dry.error_code == 0 and overrides(kb, topic)["flush.messages"] == "5"


def test_incremental_alter_configs_errors(kb: Broker, client: WireClient) -> None:
    topic = make_topic(kb)
    not_list = edit(client, 1, TOPIC, topic, ("retention.ms", APPEND, "1"))
    assert not_list.error_code == ErrorCode.INVALID_CONFIG and "LIST" in not_list.error_message
    unknown_op = edit(client, 1, TOPIC, topic, ("retention.ms", 9, "1"))
    assert unknown_op.error_code == ErrorCode.INVALID_REQUEST
    assert (
        edit(client, 1, TOPIC, topic, ("retention.ms", SET, None)).error_code
        == ErrorCode.INVALID_REQUEST
    )
    bad = edit(client, 1, TOPIC, topic, ("cleanup.policy", APPEND, "shred"))
    assert bad.error_code == ErrorCode.INVALID_CONFIG
    twice = edit(
        client, 1, TOPIC, topic, ("retention.ms", SET, "1"), ("retention.ms", DELETE, None)
    )
    assert twice.error_code == ErrorCode.INVALID_REQUEST
    missing = edit(client, 1, TOPIC, "no-such-topic", ("retention.ms", SET, "1"))
    assert missing.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert edit(client, 1, BROKER_LOGGER, "0").error_code == ErrorCode.INVALID_REQUEST
    same = iac.AlterConfigsResource(TOPIC, topic, [iac.AlterableConfig("retention.ms", SET, "1")])
    response = client.call(iac.IncrementalAlterConfigsRequest(resources=[same, same]), 1)
    assert [r.error_code for r in response.responses] == [ErrorCode.INVALID_REQUEST] * 2
    assert overrides(kb, topic) == {}
    assert edit(client, 1, TOPIC, topic, ("retention.ms", SET, "7")).error_code == ErrorCode.NONE
    deleted = edit(client, 1, TOPIC, topic, ("retention.ms", DELETE, None))  # null is fine here
    assert deleted.error_code == ErrorCode.NONE and overrides(kb, topic) == {}


def test_incremental_alter_broker_configs(kb: Broker, client: WireClient) -> None:
    topic = make_topic(kb)
    try:
        assert edit(client, 1, BROKER, "0", ("log.retention.ms", SET, "60000")).error_code == 0
        assert (
            edit(client, 1, BROKER, "", ("log.cleanup.policy", APPEND, "compact")).error_code == 0
        )
        config = log_config(kb, topic)
        assert (config.retention_ms, config.cleanup_policy) == (60000, "delete,compact")
        assert edit(client, 1, BROKER, "0", ("log.retention.ms", DELETE, None)).error_code == 0
        assert log_config(kb, topic).retention_ms == 7 * 24 * 3600 * 1000
        wrong = edit(client, 1, BROKER, "3", ("log.retention.ms", SET, "1"))
        assert wrong.error_code == ErrorCode.INVALID_REQUEST
    finally:
        assert edit(client, 1, BROKER, "", ("log.cleanup.policy", DELETE, None)).error_code == 0
    assert log_config(kb, topic).cleanup_policy == "delete"


# ---------------------------------------------------------------- CreatePartitions


def grow(
    client: WireClient,
    version: int,
    *topics: cp.CreatePartitionsTopic,
    validate_only: bool = False,
) -> list[Any]:
    request = cp.CreatePartitionsRequest(
        topics=list(topics), timeout_ms=5000, validate_only=validate_only
    )
    results: list[Any] = client.call(request, version).results
    return results


def metadata_partitions(client: WireClient, topic: str) -> list[int]:
    request = MetadataRequest(topics=[MetadataRequestTopic(name=topic)])
    (meta,) = client.call(request, 12).topics
    return [p.partition_index for p in meta.partitions]


@pytest.mark.parametrize("version", range(4))
def test_create_partitions(kb: Broker, client: WireClient, version: int) -> None:
    topic = make_topic(kb)
    (result,) = grow(client, version, cp.CreatePartitionsTopic(topic, 3, None))
    assert (result.name, result.error_code) == (topic, 0)
    assert metadata_partitions(client, topic) == [0, 1, 2]
    assert on_broker(kb, lambda b: b.topics.topics[topic].partitions) == 3
    produce(kb, topic, 3, partition=2)
    assert on_broker(kb, lambda b: b.partition(topic, 2).high_watermark) == 3
    same, fewer, missing = grow(
        client,
        version,
        cp.CreatePartitionsTopic(topic, 3, None),
        cp.CreatePartitionsTopic(make_topic(kb, 4), 2, None),
        cp.CreatePartitionsTopic("no-such-topic", 2, None),
    )
    assert same.error_code == fewer.error_code == ErrorCode.INVALID_PARTITIONS
    assert "would not be an increase" in fewer.error_message
    assert missing.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_create_partitions_assignments_and_validate_only(kb: Broker, client: WireClient) -> None:
    topic = make_topic(kb)

    def assigned(count: int, *replicas: list[int]) -> cp.CreatePartitionsTopic:
        assignments = [cp.CreatePartitionsAssignment(list(r)) for r in replicas]
        return cp.CreatePartitionsTopic(topic, count, assignments)

    for bad in (assigned(2, [1]), assigned(3, [0]), assigned(2, [0, 0]), assigned(2, [])):
        (result,) = grow(client, 3, bad)
        assert result.error_code == ErrorCode.INVALID_REPLICA_ASSIGNMENT, bad
    (dry,) = grow(client, 3, assigned(3, [0], [0]), validate_only=True)
    assert dry.error_code == 0 and metadata_partitions(client, topic) == [0]
    (ok,) = grow(client, 3, assigned(3, [0], [0]))
    assert ok.error_code == 0 and metadata_partitions(client, topic) == [0, 1, 2]
    results = grow(client, 3, assigned(4, [0]), assigned(5, [0], [0]))
    assert [(r.name, r.error_code) for r in results] == [(topic, ErrorCode.INVALID_REQUEST)]
    assert metadata_partitions(client, topic) == [0, 1, 2]


# ---------------------------------------------------------------- DeleteRecords


def delete_records(client: WireClient, version: int, topic: str, *offsets: tuple[int, int]) -> Any:
    partitions = [dr.DeleteRecordsPartition(p, o) for p, o in offsets]
    request = dr.DeleteRecordsRequest(
        topics=[dr.DeleteRecordsTopic(topic, partitions)], timeout_ms=5000
    )
    (result,) = client.call(request, version).topics
    assert result.name == topic
    return {p.partition_index: (p.error_code, p.low_watermark) for p in result.partitions}


def earliest(client: WireClient, topic: str) -> int:
    partition = ListOffsetsPartition(partition_index=0, timestamp=EARLIEST)
    request = ListOffsetsRequest(replica_id=-1, topics=[ListOffsetsTopic(topic, [partition])])
    offset: int = client.call(request, 7).topics[0].partitions[0].offset
    return offset


@pytest.mark.parametrize("version", range(3))
def test_delete_records(kb: Broker, client: WireClient, version: int) -> None:
    topic = make_topic(kb, partitions=2)
    produce(kb, topic, 10)
    assert delete_records(client, version, topic, (0, 4)) == {0: (0, 4)}
    assert earliest(client, topic) == 4
    assert delete_records(client, version, topic, (0, 2)) == {0: (0, 4)}  # never moves back
    assert delete_records(client, version, topic, (0, 11), (1, -5), (7, 1)) == {
        0: (ErrorCode.OFFSET_OUT_OF_RANGE, -1),
        1: (ErrorCode.OFFSET_OUT_OF_RANGE, -1),
        7: (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1),
    }
    assert delete_records(client, version, topic, (0, -1), (1, -1)) == {0: (0, 10), 1: (0, 0)}
    assert earliest(client, topic) == 10


def test_delete_records_refusals(kb: Broker, client: WireClient) -> None:
    compacted = make_topic(kb, configs={"cleanup.policy": "compact"})
    assert delete_records(client, 2, compacted, (0, -1)) == {0: (ErrorCode.POLICY_VIOLATION, -1)}
    both = make_topic(kb, configs={"cleanup.policy": "compact,delete"})
    assert delete_records(client, 2, both, (0, -1)) == {0: (0, 0)}
    internal = delete_records(client, 2, "__consumer_offsets", (0, -1))
    assert internal == {0: (ErrorCode.INVALID_TOPIC_EXCEPTION, -1)}


def test_delete_records_deletes_whole_segments(kb: Broker, client: WireClient) -> None:
    topic = make_topic(kb, configs={"internal.segment.bytes": "200"})
    for _ in range(5):
        produce(kb, topic, 3)  # each batch over 100 bytes: a segment holds one or two
    before = on_broker(kb, lambda b: len(b.partition(topic, 0).log.segments))
    assert before >= 3
    assert delete_records(client, 2, topic, (0, -1)) == {0: (0, 15)}
    assert on_broker(kb, lambda b: len(b.partition(topic, 0).log.segments)) == 1


# ---------------------------------------------------------------- DescribeCluster


@pytest.mark.parametrize("version", range(2))
def test_describe_cluster(kb: Broker, client: WireClient, version: int) -> None:
    response = client.call(DescribeClusterRequest(), version)
    cluster_id = on_broker(kb, lambda b: b.cluster_id)
    assert (response.error_code, response.cluster_id, response.controller_id) == (0, cluster_id, 0)
    assert [(b.broker_id, b.host, b.port, b.rack) for b in response.brokers] == [
        (0, "localhost", kb.port, None)
    ]
    assert response.cluster_authorized_operations == -(2**31)  # not asked for
    asked = client.call(DescribeClusterRequest(include_cluster_authorized_operations=True), version)
    codes = {5, 7, 8, 9, 10, 11, 12}  # CREATE ALTER DESCRIBE CLUSTER_ACTION *_CONFIGS IDEMPOTENT
    assert asked.cluster_authorized_operations == sum(1 << c for c in codes)
    if version >= 1:
        assert response.endpoint_type == 1


def test_describe_cluster_endpoint_types(client: WireClient) -> None:
    controllers = client.call(DescribeClusterRequest(endpoint_type=2), 1)
    assert (
        controllers.error_code == ErrorCode.MISMATCHED_ENDPOINT_TYPE and controllers.brokers == []
    )
    unknown = client.call(DescribeClusterRequest(endpoint_type=9), 1)
    assert unknown.error_code == ErrorCode.UNSUPPORTED_ENDPOINT_TYPE


# ---------------------------------------------------------------- DescribeLogDirs


@pytest.mark.parametrize("version", range(5))
def test_describe_log_dirs(kb: Broker, client: WireClient, version: int) -> None:
    topic = make_topic(kb, partitions=2)
    produce(kb, topic, 5)
    (result,) = client.call(dld.DescribeLogDirsRequest(topics=None), version).results
    assert (result.error_code, result.log_dir) == (0, os.path.abspath(kb.data_dir))
    sizes = {
        p.partition_index: (p.partition_size, p.offset_lag, p.is_future_key)
        for t in result.topics
        if t.name == topic
        for p in t.partitions
    }
    size = on_broker(kb, lambda b: b.partition(topic, 0).log.size_in_bytes)
    assert size > 0 and sizes == {0: (size, 0, False), 1: (0, 0, False)}
    if version >= 4:
        assert result.total_bytes >= result.usable_bytes > 0
    else:
        assert result.total_bytes == result.usable_bytes == -1
    wanted = [dld.DescribableLogDirTopic(topic, [1, 9]), dld.DescribableLogDirTopic("nope", [0])]
    (only,) = client.call(dld.DescribeLogDirsRequest(topics=wanted), version).results
    assert [(t.name, [p.partition_index for p in t.partitions]) for t in only.topics] == [
        (topic, [1])
    ]
    (none,) = client.call(dld.DescribeLogDirsRequest(topics=[]), version).results
    assert none.error_code == 0 and none.topics == []


# ---------------------------------------------------------------- DescribeTopicPartitions


def describe_partitions(
    client: WireClient, names: list[str], limit: int, cursor: dtp.Cursor | None = None
) -> Any:
    request = dtp.DescribeTopicPartitionsRequest(
        topics=[dtp.TopicRequest(n) for n in names], response_partition_limit=limit, cursor=cursor
    )
    return client.call(request, 0)


def page(response: Any) -> list[tuple[str, list[int]]]:
    return [(t.name, [p.partition_index for p in t.partitions]) for t in response.topics]


def test_describe_topic_partitions_pages(kb: Broker, client: WireClient) -> None:
    first, second = make_topic(kb, partitions=3), make_topic(kb, partitions=2)
    response = describe_partitions(client, [second, first], 2)
    assert page(response) == [(first, [0, 1])]
    assert (response.next_cursor.topic_name, response.next_cursor.partition_index) == (first, 2)
    topic = response.topics[0]
    topic_id = on_broker(kb, lambda b: b.topics.topics[first].topic_id)
    assert (topic.error_code, topic.topic_id, topic.is_internal) == (0, topic_id, False)
    assert topic.topic_authorized_operations == sum(1 << c for c in (3, 4, 5, 6, 7, 8, 10, 11))
    partition = topic.partitions[0]
    assert (partition.leader_id, partition.leader_epoch) == (0, 0)
    assert (partition.replica_nodes, partition.isr_nodes, partition.offline_replicas) == (
        [0],
        [0],
        [],
    )
    assert partition.eligible_leader_replicas == [] and partition.last_known_elr == []
    response = describe_partitions(client, [first, second], 2, dtp.Cursor(first, 2))
    assert page(response) == [(first, [2]), (second, [0])]
    assert (response.next_cursor.topic_name, response.next_cursor.partition_index) == (second, 1)
    response = describe_partitions(client, [first, second], 2, dtp.Cursor(second, 1))
    assert page(response) == [(second, [1])] and response.next_cursor is None
    # the limit used up exactly at a topic's end: the cursor points at the next topic
    response = describe_partitions(client, [first, second], 3)
    assert page(response) == [(first, [0, 1, 2])]
    assert (response.next_cursor.topic_name, response.next_cursor.partition_index) == (second, 0)
    # a limit of 0 still makes progress, one partition at a time
    assert page(describe_partitions(client, [first], 0)) == [(first, [0])]


def test_describe_topic_partitions_errors_and_all(kb: Broker, client: WireClient) -> None:
    topic = make_topic(kb)
    response = describe_partitions(client, [topic, "no-such-topic", "bad name!"], 100)
    errors = {t.name: t.error_code for t in response.topics}
    assert errors == {
        topic: 0,
        "no-such-topic": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        "bad name!": ErrorCode.INVALID_TOPIC_EXCEPTION,
    }
    for cursor in (dtp.Cursor("not-in-list", 0), dtp.Cursor(topic, -1)):
        response = describe_partitions(client, [topic, "zz"], 100, cursor)
        assert [(t.name, t.error_code) for t in response.topics] == [
            (topic, ErrorCode.INVALID_REQUEST),
            ("zz", ErrorCode.INVALID_REQUEST),
        ]
    everything = describe_partitions(client, [], 2000)
    names = [t.name for t in everything.topics]
    assert topic in names and names == sorted(names) and everything.next_cursor is None
    assert all(t.error_code == 0 for t in everything.topics)


# ---------------------------------------------------------------- persistence


def test_changes_survive_a_restart(tmp_path: Path) -> None:
    data_dir = str(tmp_path)
    with Broker(data_dir=data_dir) as first:
        c = WireClient(first.port)
        topic = make_topic(first)
        assert alter(c, 2, TOPIC, topic, {"retention.ms": "4000"}).error_code == 0
        (grown,) = grow(c, 3, cp.CreatePartitionsTopic(topic, 2, None))
        assert grown.error_code == 0
        produce(first, topic, 10)
        assert delete_records(c, 2, topic, (0, 3)) == {0: (0, 3)}
        c.close()
    with Broker(data_dir=data_dir) as second:
        c = WireClient(second.port)
        assert overrides(second, topic) == {"retention.ms": "4000"}
        assert log_config(second, topic, 1).retention_ms == 4000
        assert metadata_partitions(c, topic) == [0, 1]
        assert earliest(c, topic) == 3
        c.close()
