"""Real admin clients against kbroker: configs, partitions, records, cluster, and their effects.

confluent-kafka's AdminClient (librdkafka) and kafka-python's KafkaAdminClient each create a
topic, describe and alter its configs (legacy and incremental), alter a broker config, add
partitions, delete records, describe the cluster and delete the topic. Effects are checked
where they land: DescribeConfigs sources, the partition Log's config, Metadata, and ListOffsets.
The broker is this module's own, since broker-level config changes must not leak elsewhere.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError as CKafkaError
from confluent_kafka import KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType as KpResourceType
from kafka.admin import KafkaAdminClient
from kafka.admin import NewPartitions as KpNewPartitions
from kafka.admin import NewTopic as KpNewTopic
from kafka.protocol.consumer.offsets import OffsetSpec as KpOffsetSpec
from kafka.structs import TopicPartition as KpTopicPartition

from kbroker import broker as broker_module
from kbroker.testing import Broker

pytestmark = pytest.mark.clients

TIMEOUT = 10
DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000
_names = itertools.count()


@pytest.fixture(scope="module")
def kb() -> Iterator[Broker]:
    with Broker() as b:
        yield b


@pytest.fixture(scope="module")
def admin(kb: Broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": kb.bootstrap_servers})


@pytest.fixture(scope="module")
def kp_admin(kb: Broker) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=kb.bootstrap_servers)
    yield client
    client.close()


def name() -> str:
    return f"clients{next(_names)}"


def on_broker(kb: Broker, fn: Callable[[broker_module.Broker], Any]) -> Any:
    return kb.run(fn).result(TIMEOUT)


def log_config(kb: Broker, topic: str, partition: int = 0) -> Any:
    return on_broker(kb, lambda b: b.partition(topic, partition).log.config)


def results(futures: dict[Any, Future[Any]]) -> list[Any]:
    return [f.result(TIMEOUT) for f in futures.values()]


def produce(kb: Broker, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": kb.bootstrap_servers})
    for i in range(count):
        producer.produce(topic, b"value-%d" % i, partition=0)
    assert producer.flush(TIMEOUT) == 0


def source(entry: ConfigEntry) -> ConfigSource:
    """The entry's source as the enum (librdkafka hands back the wire's int)."""
    return ConfigSource(entry.source)


def topic_configs(admin: AdminClient, topic: str) -> dict[str, ConfigEntry]:
    (configs,) = results(admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]))
    return dict(configs)


# ---------------------------------------------------------------- confluent-kafka (librdkafka)


def test_confluent_topic_configs(kb: Broker, admin: AdminClient) -> None:
    topic = name()
    results(admin.create_topics([NewTopic(topic, 1, config={"flush.messages": "100"})]))
    configs = topic_configs(admin, topic)
    assert source(configs["retention.ms"]) is ConfigSource.DEFAULT_CONFIG
    assert source(configs["flush.messages"]) is ConfigSource.DYNAMIC_TOPIC_CONFIG

    resource = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "3600000"})
    with warnings.catch_warnings():  # alter_configs is deprecated in favour of the incremental API
        warnings.simplefilter("ignore", DeprecationWarning)
        results(admin.alter_configs([resource]))
    configs = topic_configs(admin, topic)
    assert configs["retention.ms"].value == "3600000"
    assert source(configs["retention.ms"]) is ConfigSource.DYNAMIC_TOPIC_CONFIG
    assert source(configs["flush.messages"]) is ConfigSource.DEFAULT_CONFIG  # replaced
    assert log_config(kb, topic).retention_ms == 3600000

    edits = [
        ConfigEntry("segment.bytes", "2097152", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
    ]
    results(
        admin.incremental_alter_configs(
            [ConfigResource(ResourceType.TOPIC, topic, incremental_configs=edits)]
        )
    )
    configs = topic_configs(admin, topic)
    assert configs["cleanup.policy"].value == "delete,compact"
    assert source(configs["retention.ms"]) is ConfigSource.DEFAULT_CONFIG
    config = log_config(kb, topic)
    assert (config.segment_bytes, config.cleanup_policy) == (2097152, "delete,compact")
    assert config.retention_ms == DEFAULT_RETENTION_MS

    bad = [ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.APPEND)]
    with pytest.raises(KafkaException) as failure:
        results(
            admin.incremental_alter_configs(
                [ConfigResource(ResourceType.TOPIC, topic, incremental_configs=bad)]
            )
        )
    assert failure.value.args[0].code() == CKafkaError.INVALID_CONFIG


def test_confluent_broker_configs(kb: Broker, admin: AdminClient) -> None:
    topic = name()
    results(admin.create_topics([NewTopic(topic, 1)]))
    (configs,) = results(admin.describe_configs([ConfigResource(ResourceType.BROKER, "0")]))
    assert configs["log.dirs"].value == kb.data_dir and configs["log.dirs"].is_read_only
    assert source(configs["log.dirs"]) is ConfigSource.STATIC_BROKER_CONFIG

    def edit_broker(op: AlterConfigOpType, value: str | None) -> None:
        entry = ConfigEntry("log.retention.ms", value, incremental_operation=op)
        resource = ConfigResource(ResourceType.BROKER, "0", incremental_configs=[entry])
        results(admin.incremental_alter_configs([resource]))

    edit_broker(AlterConfigOpType.SET, "600000")
    try:
        (configs,) = results(admin.describe_configs([ConfigResource(ResourceType.BROKER, "0")]))
        retention = configs["log.retention.ms"]
        assert retention.value == "600000"
        assert source(retention) is ConfigSource.DYNAMIC_BROKER_CONFIG
        assert topic_configs(admin, topic)["retention.ms"].value == "600000"
        assert log_config(kb, topic).retention_ms == 600000
    finally:
        edit_broker(AlterConfigOpType.DELETE, None)
    assert log_config(kb, topic).retention_ms == DEFAULT_RETENTION_MS


def test_confluent_partitions_and_records(kb: Broker, admin: AdminClient) -> None:
    topic = name()
    results(admin.create_topics([NewTopic(topic, 1)]))
    results(admin.create_partitions([NewPartitions(topic, 3)], validate_only=True))
    assert len(admin.list_topics(topic, timeout=TIMEOUT).topics[topic].partitions) == 1
    results(admin.create_partitions([NewPartitions(topic, 3)]))
    assert sorted(admin.list_topics(topic, timeout=TIMEOUT).topics[topic].partitions) == [0, 1, 2]
    with pytest.raises(KafkaException) as failure:
        results(admin.create_partitions([NewPartitions(topic, 2)]))
    assert failure.value.args[0].code() == CKafkaError.INVALID_PARTITIONS

    produce(kb, topic, 10)
    (deleted,) = results(admin.delete_records([TopicPartition(topic, 0, 6)]))
    assert deleted.low_watermark == 6
    (earliest,) = results(admin.list_offsets({TopicPartition(topic, 0): OffsetSpec.earliest()}))  # type: ignore[no-untyped-call]
    assert earliest.offset == 6
    with pytest.raises(KafkaException) as failure:
        results(admin.delete_records([TopicPartition(topic, 0, 11)]))
    assert failure.value.args[0].code() == CKafkaError.OFFSET_OUT_OF_RANGE

    results(admin.delete_topics([topic]))
    assert on_broker(kb, lambda b: topic not in b.topics.topics)


def test_confluent_cluster(kb: Broker, admin: AdminClient) -> None:
    # librdkafka describes the cluster (and topics) with Metadata, not DescribeCluster
    cluster = admin.describe_cluster().result(TIMEOUT)
    assert cluster.cluster_id == on_broker(kb, lambda b: b.cluster_id)
    assert cluster.controller.id == 0
    assert [(n.id, n.host, n.port) for n in cluster.nodes] == [(0, "localhost", kb.port)]

    topic = name()
    results(admin.create_topics([NewTopic(topic, 2)]))
    description = admin.describe_topics(TopicCollection([topic]))[topic].result(TIMEOUT)
    assert [p.id for p in description.partitions] == [0, 1]
    assert all(p.leader.id == 0 and [n.id for n in p.isr] == [0] for p in description.partitions)


# ---------------------------------------------------------------- kafka-python


def test_kafka_python_configs(kb: Broker, kp_admin: KafkaAdminClient) -> None:
    topic = name()
    kp_admin.create_topics([KpNewTopic(topic, 1, 1)])
    resource = KpConfigResource(KpResourceType.TOPIC, topic)
    assert kp_admin.describe_configs([resource]) == {"topic": {topic: {}}}  # nothing modified

    kp_admin.alter_configs(
        [KpConfigResource(KpResourceType.TOPIC, topic, configs={"retention.ms": "120000"})]
    )
    legacy = KpConfigResource(KpResourceType.TOPIC, topic, configs={"segment.bytes": "3145728"})
    assert kp_admin.alter_configs([legacy], incremental=False) == {"topic": {topic: "OK"}}
    modified = kp_admin.describe_configs([KpConfigResource(KpResourceType.TOPIC, topic)])
    entries = modified["topic"][topic]
    assert {k: (v["value"], v["config_source"]) for k, v in entries.items()} == {
        "retention.ms": ("120000", "DYNAMIC_TOPIC_CONFIG"),
        "segment.bytes": ("3145728", "DYNAMIC_TOPIC_CONFIG"),
    }
    config = log_config(kb, topic)
    assert (config.retention_ms, config.segment_bytes) == (120000, 3145728)

    kp_admin.reset_configs(
        [KpConfigResource(KpResourceType.TOPIC, topic, configs=["retention.ms"])]
    )
    assert log_config(kb, topic).retention_ms == DEFAULT_RETENTION_MS

    brokers = kp_admin.describe_configs(
        [KpConfigResource(KpResourceType.BROKER, "0")], config_filter="all"
    )
    assert brokers["broker"]["0"]["log.dirs"]["config_source"] == "STATIC_BROKER_CONFIG"
    kp_admin.delete_topics([topic])
    assert topic not in kp_admin.list_topics()


def test_kafka_python_partitions_records_cluster(kb: Broker, kp_admin: KafkaAdminClient) -> None:
    topic = name()
    kp_admin.create_topics([KpNewTopic(topic, 1, 1)])
    kp_admin.create_partitions({topic: KpNewPartitions(4)})
    described = kp_admin.describe_topic_partitions([topic], response_partition_limit=3)
    (first,) = described["topics"]
    assert [p["partition_index"] for p in first["partitions"]] == [0, 1, 2]
    assert described["next_cursor"] == {"topic_name": topic, "partition_index": 3}
    assert on_broker(kb, lambda b: b.topics.topics[topic].partitions) == 4

    produce(kb, topic, 10)
    deleted = kp_admin.delete_records({KpTopicPartition(topic, 0): 7})
    assert deleted[KpTopicPartition(topic, 0)]["low_watermark"] == 7
    offsets = kp_admin.list_partition_offsets({KpTopicPartition(topic, 0): KpOffsetSpec.EARLIEST})
    assert offsets[KpTopicPartition(topic, 0)].offset == 7

    cluster = kp_admin.describe_cluster()
    assert (cluster["cluster_id"], cluster["controller_id"]) == (
        on_broker(kb, lambda b: b.cluster_id),
        0,
    )
    assert [(b["broker_id"], b["port"]) for b in cluster["brokers"]] == [(0, kb.port)]
    assert len(cluster["authorized_operations"]) == 7  # all cluster operations: no authorizer
    (dirs,) = kp_admin.describe_log_dirs()
    (log_dir,) = dirs["log_dirs"]
    sizes = {
        p["partition_index"]: p["partition_size"]
        for t in log_dir["topics"]
        if t["name"] == topic
        for p in t["partitions"]
    }
    assert sorted(sizes) == [0, 1, 2, 3] and sizes[0] > 0 and log_dir["usable_bytes"] > 0
    kp_admin.delete_topics([topic])
