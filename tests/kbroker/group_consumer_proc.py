"""A consumer-group member as its own process, for tests that kill it with SIGKILL.

    python -m tests.kbroker.group_consumer_proc BOOTSTRAP GROUP TOPIC

Prints `assigned P,P,...` on each assignment and `read P O` for each record, after its
offset was committed (synchronously); the test reads stdout to know what it committed.
"""

from __future__ import annotations

import sys

from confluent_kafka import Consumer, TopicPartition

from tests.kbroker.group_members import HEARTBEAT_MS, SESSION_TIMEOUT_MS


def main() -> None:
    bootstrap, group, topic = sys.argv[1:4]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": "victim",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS,
        }
    )

    def assigned(_: Consumer, tps: list[TopicPartition]) -> None:
        parts = ",".join(str(tp.partition) for tp in tps)
        print(f"assigned {parts}", flush=True)

    consumer.subscribe([topic], on_assign=assigned)
    while True:
        msg = consumer.poll(0.1)
        if msg is None or msg.error():
            continue
        consumer.commit(message=msg, asynchronous=False)
        print(f"read {msg.partition()} {msg.offset()}", flush=True)


if __name__ == "__main__":
    main()
