"""Topic configs altered through the admin API reach the open partitions."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from kbroker.broker import Broker as Core
from kbroker.testing import Broker


def test_altered_flush_before_ack_and_retention_take_effect(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=2)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    entries = [
        ConfigEntry(
            "kbroker.flush.before.ack", "true", incremental_operation=AlterConfigOpType.SET
        ),
        ConfigEntry("retention.ms", "12345", incremental_operation=AlterConfigOpType.SET),
    ]
    resource = ConfigResource("topic", topic, incremental_configs=entries)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(10)

    def state(b: Core) -> list[tuple[bool, int]]:
        return [
            (b.partition(topic, i).flush_before_ack, b.partition(topic, i).log.config.retention_ms)
            for i in range(2)
        ]

    assert broker.run(state).result(10) == [(True, 12345), (True, 12345)]
