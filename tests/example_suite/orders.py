"""The "application" the example suite tests: a tiny order service on Kafka (confluent-kafka)."""

from __future__ import annotations

import json
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)


def publish_orders(bootstrap: str, topic: str, orders: list[dict[str, Any]]) -> None:
    """One record per order, keyed by customer so that a customer's orders stay in order."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    failures: list[Any] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(err)

    for order in orders:
        producer.produce(
            topic,
            key=order["customer"].encode(),
            value=json.dumps(order).encode(),
            headers=[("schema", b"order-v1")],
            on_delivery=delivered,
        )
    if producer.flush(30) != 0 or failures:
        raise KafkaException(failures[0] if failures else "orders still undelivered")


def total_per_customer(bootstrap: str, topic: str, partitions: int) -> dict[str, int]:
    """Read every order from the beginning to the end of each partition; sum per customer."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "totals",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    totals: dict[str, int] = {}
    at_end: set[int] = set()
    while len(at_end) < partitions:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        error = msg.error()
        if error is not None and error.code() == KafkaError._PARTITION_EOF:
            at_end.add(msg.partition() or 0)
        elif error is not None:
            raise KafkaException(error)
        else:
            order = json.loads(msg.value() or b"{}")
            totals[order["customer"]] = totals.get(order["customer"], 0) + order["amount"]
    consumer.close()
    return totals
