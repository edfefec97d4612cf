"""Driver for kafka-python: `python -m compat.clients.kafka_python`."""

from __future__ import annotations

import sys
import time
from typing import Any

import kafka
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError

from compat.clients._driver import handlers_of, record_out, serve, unb64

Args = dict[str, Any]
CODECS = {"none": None, "gzip": "gzip", "snappy": "snappy", "lz4": "lz4", "zstd": "zstd"}


class Driver:
    def __init__(self) -> None:
        self.base: Args = {}
        self.timeout_s = 30.0
        self.members: list[KafkaConsumer] = []
        self.pending: list[Args] = []
        self.admin: KafkaAdminClient | None = None

    def version(self, _: Args) -> Args:
        return {"version": f"kafka-python {kafka.__version__}"}

    def init(self, a: Args) -> Args:
        self.base = {
            "bootstrap_servers": a["bootstrap"],
            "client_id": a["client_id"],
            "bootstrap_timeout_ms": 10_000,  # not 30 s: a broker it cannot talk to fails fast
        }
        self.timeout_s = a["timeout_ms"] / 1000
        return {}

    def _deadline(self, a: Args) -> float:
        return time.monotonic() + float(a.get("timeout_ms", self.timeout_s * 1000)) / 1000

    # ---------------------------------------------------------------- produce

    def _send_all(self, producer: KafkaProducer, topic: str, records: list[Args]) -> list[Any]:
        futures = [
            producer.send(
                topic,
                key=unb64(r["key"]),
                value=unb64(r["value"]),
                headers=[(k, unb64(v)) for k, v in r["headers"]],
                partition=r["partition"],
                timestamp_ms=r["timestamp"],
            )
            for r in records
        ]
        producer.flush(self.timeout_s)
        offsets = []
        for future in futures:
            meta = future.get(self.timeout_s)
            offsets.append((meta.partition, meta.offset))
        return offsets

    def produce(self, a: Args) -> Args:
        producer = KafkaProducer(
            **self.base,
            compression_type=CODECS[a["compression"]],
            enable_idempotence=a["idempotent"],  # kafka-python's default is on
            acks="all",
            linger_ms=5,
        )
        try:
            return {"offsets": self._send_all(producer, a["topic"], a["records"])}
        finally:
            producer.close(self.timeout_s)

    def transaction(self, a: Args) -> Args:
        producer = KafkaProducer(**self.base, transactional_id=a["transactional_id"])
        try:
            producer.init_transactions()
            for txn in a["transactions"]:
                producer.begin_transaction()
                self._send_all(producer, a["topic"], txn["records"])
                if txn["commit"]:
                    producer.commit_transaction()
                else:
                    producer.abort_transaction()
        finally:
            producer.close(self.timeout_s)
        return {}

    # ---------------------------------------------------------------- consume

    def _record(self, msg: Any, **extra: Any) -> Args:
        return record_out(
            msg.partition, msg.offset, msg.key, msg.value, list(msg.headers), msg.timestamp, **extra
        )

    def consume(self, a: Args) -> Args:
        consumer = KafkaConsumer(
            **self.base, isolation_level=a["isolation"], enable_auto_commit=False
        )
        try:
            parts = [TopicPartition(a["topic"], p) for p in a["partitions"]]
            consumer.assign(parts)
            if a["from_timestamp"] is None:
                consumer.seek_to_beginning(*parts)
            else:
                found = consumer.offsets_for_times({tp: a["from_timestamp"] for tp in parts})
                for tp in parts:
                    if found.get(tp) is None:
                        consumer.seek_to_end(tp)
                    else:
                        consumer.seek(tp, found[tp].offset)
            got: list[Args] = []
            deadline = self._deadline(a)
            while len(got) < a["count"] and time.monotonic() < deadline:
                batches = consumer.poll(timeout_ms=200, max_records=a["count"] - len(got))
                for messages in batches.values():
                    got += [self._record(m) for m in messages]
            return {"records": got}
        finally:
            consumer.close()

    def offset_for_time(self, a: Args) -> Args:
        consumer = KafkaConsumer(**self.base)
        try:
            tp = TopicPartition(a["topic"], a["partition"])
            found = consumer.offsets_for_times({tp: a["timestamp"]}).get(tp)
            return {"offset": None if found is None else found.offset}
        finally:
            consumer.close()

    # ---------------------------------------------------------------- groups

    def group_join(self, a: Args) -> Args:
        self.members = [
            KafkaConsumer(
                a["topic"],
                **self.base,
                group_id=a["group"],
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                heartbeat_interval_ms=100,
                session_timeout_ms=10000,
            )
            for _ in range(a["members"])
        ]
        every = sorted(self.members[0].partitions_for_topic(a["topic"]) or [])
        deadline = self._deadline(a)
        owned: list[list[int]] = []
        while time.monotonic() < deadline:
            for i, member in enumerate(self.members):
                for messages in member.poll(timeout_ms=50).values():
                    self.pending += [self._record(m, member=i) for m in messages]
            owned = [sorted(tp.partition for tp in m.assignment()) for m in self.members]
            if all(owned) and sorted(p for o in owned for p in o) == every:
                return {"assignments": owned}
        raise TimeoutError(f"group not stable: assignments {owned}")

    def group_consume(self, a: Args) -> Args:
        got, self.pending = self.pending, []
        deadline = self._deadline(a)
        while len(got) < a["count"] and time.monotonic() < deadline:
            for i, member in enumerate(self.members):
                for messages in member.poll(timeout_ms=50).values():
                    got += [self._record(m, member=i) for m in messages]
        return {"records": got}

    def group_commit(self, _: Args) -> Args:
        for member in self.members:
            member.commit()
        return {}

    def group_close(self, _: Args) -> Args:
        for member in self.members:
            member.close()
        self.members = []
        return {}

    # ---------------------------------------------------------------- admin

    def _admin(self) -> KafkaAdminClient:
        if self.admin is None:
            self.admin = KafkaAdminClient(**self.base)
        return self.admin

    def create_topic(self, a: Args) -> Args:
        spec = {"num_partitions": a["partitions"], "configs": a["configs"]}
        self._admin().create_topics({a["topic"]: spec})
        return {}

    def describe_topic(self, a: Args) -> Args:
        (topic,) = self._admin().describe_topics([a["topic"]])
        if topic.get("error_code"):
            raise kafka.errors.for_code(topic["error_code"])(a["topic"])
        return {"partitions": len(topic["partitions"])}

    def describe_configs(self, a: Args) -> Args:
        resource = ConfigResource(ConfigResourceType.TOPIC, a["topic"], dict.fromkeys(a["names"]))
        found = self._admin().describe_configs([resource])
        entries = next(iter(next(iter(found.values())).values()))
        return {"configs": {k: v["value"] for k, v in entries.items() if k in a["names"]}}

    def alter_configs(self, a: Args) -> Args:
        resource = ConfigResource(ConfigResourceType.TOPIC, a["topic"], a["configs"])
        self._admin().alter_configs([resource], incremental=False)
        return {}

    def create_partitions(self, a: Args) -> Args:
        self._admin().create_partitions({a["topic"]: a["count"]})
        return {}

    def delete_records(self, a: Args) -> Args:
        tp = TopicPartition(a["topic"], a["partition"])
        result = self._admin().delete_records({tp: a["offset"]})
        return {"low_watermark": result[tp]["low_watermark"]}

    def delete_topic(self, a: Args) -> Args:
        self._admin().delete_topics([a["topic"]])
        return {}

    def list_groups(self, _: Args) -> Args:
        return {"groups": [g["group_id"] for g in self._admin().list_groups()]}

    def describe_group(self, a: Args) -> Args:
        group = self._admin().describe_groups([a["group"]])[a["group"]]
        if group.get("error"):
            raise RuntimeError(group["error"])
        return {"state": group["group_state"], "members": len(group["members"])}


def error_code(exc: BaseException) -> str | None:
    return type(exc).__name__ if isinstance(exc, KafkaError) else None


if __name__ == "__main__":
    sys.exit(serve(handlers_of(Driver()), error_code))
