"""Driver for confluent-kafka (librdkafka): `python -m compat.clients.confluent`."""

from __future__ import annotations

import sys
import time
from typing import Any

import confluent_kafka
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from compat.clients._driver import handlers_of, record_out, serve, unb64

Args = dict[str, Any]


class Driver:
    def __init__(self) -> None:
        self.base: dict[str, Any] = {}
        self.timeout_s = 30.0
        self.members: list[Consumer] = []
        self.pending: list[dict[str, Any]] = []
        self.admin: AdminClient | None = None

    # ---------------------------------------------------------------- session

    def version(self, _: Args) -> Args:
        return {
            "version": f"confluent-kafka {confluent_kafka.__version__} "
            f"(librdkafka {confluent_kafka.libversion()[0]})"
        }

    def init(self, a: Args) -> Args:
        self.base = {"bootstrap.servers": a["bootstrap"], "client.id": a["client_id"]}
        self.timeout_s = a["timeout_ms"] / 1000
        return {}

    def _deadline(self, a: Args) -> float:
        return time.monotonic() + float(a.get("timeout_ms", self.timeout_s * 1000)) / 1000

    # ---------------------------------------------------------------- produce

    def _produce_all(self, producer: Producer, topic: str, records: list[Args]) -> list[Any]:
        reports: list[Any] = [None] * len(records)

        def report(i: int) -> Any:
            def done(err: KafkaError | None, msg: Message) -> None:
                reports[i] = err if err is not None else (msg.partition(), msg.offset())

            return done

        for i, r in enumerate(records):
            kwargs: dict[str, Any] = {"key": unb64(r["key"]), "value": unb64(r["value"])}
            if r["partition"] is not None:
                kwargs["partition"] = r["partition"]
            if r["headers"]:
                kwargs["headers"] = [(k, unb64(v)) for k, v in r["headers"]]
            if r["timestamp"] is not None:
                kwargs["timestamp"] = r["timestamp"]
            producer.produce(topic, on_delivery=report(i), **kwargs)
            producer.poll(0)
        if producer.flush(self.timeout_s) != 0:
            raise TimeoutError("records still undelivered at the timeout")
        for item in reports:
            if isinstance(item, KafkaError):
                raise KafkaException(item)
        return reports

    def produce(self, a: Args) -> Args:
        producer = Producer(
            {
                **self.base,
                "compression.type": a["compression"],
                "enable.idempotence": a["idempotent"],
                "linger.ms": 5,
                "acks": "all",
            }
        )
        return {"offsets": self._produce_all(producer, a["topic"], a["records"])}

    def transaction(self, a: Args) -> Args:
        producer = Producer({**self.base, "transactional.id": a["transactional_id"]})
        producer.init_transactions(self.timeout_s)
        for txn in a["transactions"]:
            producer.begin_transaction()
            self._produce_all(producer, a["topic"], txn["records"])
            if txn["commit"]:
                producer.commit_transaction(self.timeout_s)
            else:
                producer.abort_transaction(self.timeout_s)
        return {}

    # ---------------------------------------------------------------- consume

    def _consumer(self, group: str, **extra: Any) -> Consumer:
        return Consumer(
            {
                **self.base,
                "group.id": group,  # librdkafka wants one even for assign(); nothing committed
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                **extra,
            }
        )

    def consume(self, a: Args) -> Args:
        consumer = self._consumer(a["group"], **{"isolation.level": a["isolation"]})
        try:
            start = [TopicPartition(a["topic"], p, OFFSET_BEGINNING) for p in a["partitions"]]
            if a["from_timestamp"] is not None:
                asked = [
                    TopicPartition(a["topic"], p, a["from_timestamp"]) for p in a["partitions"]
                ]
                start = consumer.offsets_for_times(asked, self.timeout_s)
                for tp in start:
                    tp.offset = OFFSET_END if tp.offset < 0 else tp.offset
            consumer.assign(start)
            got: list[Args] = []
            deadline = self._deadline(a)
            while len(got) < a["count"] and time.monotonic() < deadline:
                for msg in consumer.consume(a["count"] - len(got), 0.2):
                    got.append(self._record(msg))
            return {"records": got}
        finally:
            consumer.close()

    def _record(self, msg: Message, **extra: Any) -> Args:
        if msg.error() is not None:
            raise KafkaException(msg.error())
        headers = msg.headers() or []
        return record_out(
            msg.partition() or 0,
            msg.offset() or 0,
            _bytes(msg.key()),
            _bytes(msg.value()),
            [(k, _bytes(v)) for k, v in headers] if isinstance(headers, list) else [],
            msg.timestamp()[1],
            **extra,
        )

    def offset_for_time(self, a: Args) -> Args:
        consumer = self._consumer("compat-offsets-for-times")
        try:
            asked = [TopicPartition(a["topic"], a["partition"], a["timestamp"])]
            (answer,) = consumer.offsets_for_times(asked, self.timeout_s)
            if answer.error is not None:
                raise KafkaException(answer.error)
            return {"offset": None if answer.offset < 0 else answer.offset}
        finally:
            consumer.close()

    # ---------------------------------------------------------------- groups

    def group_join(self, a: Args) -> Args:
        extra = {"heartbeat.interval.ms": 100, "session.timeout.ms": 10000}
        self.members = [self._consumer(a["group"], **extra) for _ in range(a["members"])]
        for member in self.members:
            member.subscribe([a["topic"]])
        topic = self.members[0].list_topics(a["topic"], self.timeout_s).topics[a["topic"]]
        every = sorted(topic.partitions)
        deadline = self._deadline(a)
        while time.monotonic() < deadline:
            for i, member in enumerate(self.members):
                msg = member.poll(0.05)
                if msg is not None:
                    self.pending.append(self._record(msg, member=i))
            owned = [sorted(tp.partition for tp in m.assignment()) for m in self.members]
            if all(owned) and sorted(p for o in owned for p in o) == every:
                return {"assignments": owned}
        raise TimeoutError(f"group not stable: assignments {owned}")

    def group_consume(self, a: Args) -> Args:
        got, self.pending = self.pending, []
        deadline = self._deadline(a)
        while len(got) < a["count"] and time.monotonic() < deadline:
            for i, member in enumerate(self.members):
                msg = member.poll(0.05)
                if msg is not None:
                    got.append(self._record(msg, member=i))
        return {"records": got}

    def group_commit(self, _: Args) -> Args:
        for member in self.members:
            try:
                member.commit(asynchronous=False)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError._NO_OFFSET:  # nothing consumed: nothing due
                    raise
        return {}

    def group_close(self, _: Args) -> Args:
        for member in self.members:
            member.close()
        self.members = []
        return {}

    # ---------------------------------------------------------------- admin

    def _admin(self) -> AdminClient:
        if self.admin is None:  # kept: a dropped handle fails its pending futures (_DESTROY)
            self.admin = AdminClient(self.base)
        return self.admin

    def create_topic(self, a: Args) -> Args:
        topic = NewTopic(a["topic"], a["partitions"], config=a["configs"])
        self._admin().create_topics([topic])[a["topic"]].result(self.timeout_s)
        return {}

    def describe_topic(self, a: Args) -> Args:
        meta = self._admin().list_topics(a["topic"], self.timeout_s).topics[a["topic"]]
        if meta.error is not None:
            raise KafkaException(meta.error)
        return {"partitions": len(meta.partitions)}

    def describe_configs(self, a: Args) -> Args:
        resource = ConfigResource(ResourceType.TOPIC, a["topic"])
        entries = self._admin().describe_configs([resource])[resource].result(self.timeout_s)
        return {"configs": {k: e.value for k, e in entries.items() if k in a["names"]}}

    def alter_configs(self, a: Args) -> Args:
        ops = [
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
            for k, v in a["configs"].items()
        ]
        resource = ConfigResource(ResourceType.TOPIC, a["topic"], incremental_configs=ops)
        self._admin().incremental_alter_configs([resource])[resource].result(self.timeout_s)
        return {}

    def create_partitions(self, a: Args) -> Args:
        request = [NewPartitions(a["topic"], a["count"])]
        self._admin().create_partitions(request)[a["topic"]].result(self.timeout_s)
        return {}

    def delete_records(self, a: Args) -> Args:
        tp = TopicPartition(a["topic"], a["partition"], a["offset"])
        futures = self._admin().delete_records([tp])
        deleted = next(iter(futures.values())).result(self.timeout_s)
        return {"low_watermark": deleted.low_watermark}

    def delete_topic(self, a: Args) -> Args:
        self._admin().delete_topics([a["topic"]])[a["topic"]].result(self.timeout_s)
        return {}

    def list_groups(self, _: Args) -> Args:
        result = self._admin().list_consumer_groups().result(self.timeout_s)
        return {"groups": [g.group_id for g in result.valid]}

    def describe_group(self, a: Args) -> Args:
        described = self._admin().describe_consumer_groups([a["group"]])[a["group"]]
        group = described.result(self.timeout_s)
        return {"state": group.state.name, "members": len(group.members)}


def _bytes(data: str | bytes | None) -> bytes | None:
    return data.encode() if isinstance(data, str) else data


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, KafkaException) and isinstance(exc.args[0], KafkaError):
        return str(exc.args[0].name())
    return None


if __name__ == "__main__":
    driver = Driver()
    sys.exit(serve(handlers_of(driver), error_code))
