"""Example: testing Kafka code with kbroker's pytest fixtures (nothing else is set up)."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import KafkaException

from kbroker.pytest_plugin import KafkaTestBroker
from tests.example_suite.orders import publish_orders, total_per_customer

ORDERS = [
    {"customer": "ada", "amount": 30},
    {"customer": "bob", "amount": 5},
    {"customer": "ada", "amount": 12},
]


def test_orders_are_published_as_one_record_each(
    kafka_topic: str, bootstrap_servers: str, kafka_broker: KafkaTestBroker
) -> None:
    publish_orders(bootstrap_servers, kafka_topic, ORDERS)
    records = kafka_broker.records(kafka_topic)
    assert [json.loads(r.value or b"") for r in records] == ORDERS
    assert [r.key for r in records] == [b"ada", b"bob", b"ada"]
    assert all(r.headers == [("schema", b"order-v1")] for r in records)


def test_each_test_gets_a_fresh_empty_topic(
    kafka_topic: str, kafka_broker: KafkaTestBroker
) -> None:
    assert kafka_broker.records(kafka_topic) == []
    assert kafka_broker.end_offsets(kafka_topic) == {0: 0}


@pytest.mark.kafka_topic(partitions=4)
def test_a_customers_orders_share_a_partition(
    kafka_topic: str, bootstrap_servers: str, kafka_broker: KafkaTestBroker
) -> None:
    publish_orders(bootstrap_servers, kafka_topic, ORDERS * 5)
    assert sum(kafka_broker.end_offsets(kafka_topic).values()) == 15
    by_customer: dict[bytes | None, set[int]] = {}
    for record in kafka_broker.records(kafka_topic):
        by_customer.setdefault(record.key, set()).add(record.partition)
    assert all(len(partitions) == 1 for partitions in by_customer.values())


@pytest.mark.parametrize("kafka_topic", [1, 2], indirect=True)
def test_totals_read_back_what_was_published(
    kafka_topic: str, bootstrap_servers: str, kafka_broker: KafkaTestBroker
) -> None:
    publish_orders(bootstrap_servers, kafka_topic, ORDERS)
    partitions = len(kafka_broker.end_offsets(kafka_topic))
    assert total_per_customer(bootstrap_servers, kafka_topic, partitions) == {"ada": 42, "bob": 5}


@pytest.mark.kafka_topic(configs={"max.message.bytes": "200"})
def test_an_oversized_order_is_refused_by_the_broker(
    kafka_topic: str, bootstrap_servers: str, kafka_broker: KafkaTestBroker
) -> None:
    huge = {"customer": "eve", "amount": 1, "note": "x" * 500}
    with pytest.raises(KafkaException, match="too large"):
        publish_orders(bootstrap_servers, kafka_topic, [huge])
    assert kafka_broker.records(kafka_topic) == []


def test_topics_can_be_made_by_hand(kafka_broker: KafkaTestBroker, bootstrap_servers: str) -> None:
    topic = kafka_broker.create_topic(partitions=3, configs={"retention.ms": "60000"})
    publish_orders(bootstrap_servers, topic, ORDERS)
    published = sorted(json.dumps(order).encode() for order in ORDERS)
    assert sorted(value or b"" for value in kafka_broker.values(topic)) == published
