"""A consume-transform-produce process with exactly-once semantics, for kill -9 tests.

    python -m tests.kbroker.txn_ctp_proc BOOTSTRAP IN_TOPIC OUT_TOPIC GROUP TRANSACTIONAL_ID

It reads IN_TOPIC with isolation.level=read_committed in GROUP (a static member, so that a
restarted process takes over its partitions at once), and for every poll of up to
`BATCH` records writes `out:<value>` to OUT_TOPIC and commits the input offsets in the same
transaction (send_offsets_to_transaction). Between writing the outputs (flushed, so they are
in the log) and committing, it "works" for `WORK_S`: most of its life is spent inside an open
transaction, so a kill at a random moment usually leaves one to be aborted. It prints
"ready" once its transactional producer is initialised (fencing any previous incarnation)
and runs until killed.
"""

from __future__ import annotations

import sys
import time

from confluent_kafka import Consumer, Producer

BATCH = 10
WORK_S = 0.05


def main(bootstrap: str, in_topic: str, out_topic: str, group: str, txn_id: str) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.instance.id": f"{group}-member",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": 10_000,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": txn_id,
            "transaction.timeout.ms": 60_000,
            "linger.ms": 1,
        }
    )
    producer.init_transactions(60)
    print("ready", flush=True)
    consumer.subscribe([in_topic])
    while True:
        messages = [m for m in consumer.consume(BATCH, 0.2) if m.error() is None]
        if not messages:
            continue
        producer.begin_transaction()
        for m in messages:
            producer.produce(out_topic, key=m.key(), value=b"out:" + (m.value() or b""))
        producer.flush(60)
        time.sleep(WORK_S)
        positions = consumer.position(consumer.assignment())
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 60)
        producer.commit_transaction(60)


if __name__ == "__main__":
    main(*sys.argv[1:6])
