"""Driver for aiokafka: `python -m compat.clients.aiokafka_driver` (named so that it does not
shadow the aiokafka package)."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import aiokafka
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, for_code

from compat.clients._driver import handlers_of, record_out, serve_async, unb64

Args = dict[str, Any]
CODECS = {"none": None, "gzip": "gzip", "snappy": "snappy", "lz4": "lz4", "zstd": "zstd"}


class Driver:
    def __init__(self) -> None:
        self.base: Args = {}
        self.timeout_s = 30.0
        self.members: list[AIOKafkaConsumer] = []
        self.pending: list[Args] = []
        self.admin: AIOKafkaAdminClient | None = None

    async def version(self, _: Args) -> Args:
        return {"version": f"aiokafka {aiokafka.__version__}"}

    async def init(self, a: Args) -> Args:
        self.base = {"bootstrap_servers": a["bootstrap"], "client_id": a["client_id"]}
        self.timeout_s = a["timeout_ms"] / 1000
        return {}

    def _deadline(self, a: Args) -> float:
        return time.monotonic() + float(a.get("timeout_ms", self.timeout_s * 1000)) / 1000

    # ---------------------------------------------------------------- produce

    async def _send_all(self, producer: AIOKafkaProducer, topic: str, rs: list[Args]) -> list[Any]:
        futures = [
            await producer.send(
                topic,
                key=unb64(r["key"]),
                value=unb64(r["value"]),
                headers=[(k, unb64(v)) for k, v in r["headers"]],
                partition=r["partition"],
                timestamp_ms=r["timestamp"],
            )
            for r in rs
        ]
        metas = [await f for f in futures]
        return [(m.partition, m.offset) for m in metas]

    async def produce(self, a: Args) -> Args:
        producer = AIOKafkaProducer(
            **self.base,
            compression_type=CODECS[a["compression"]],
            enable_idempotence=a["idempotent"],
            acks="all",
            linger_ms=5,
        )
        await producer.start()
        try:
            return {"offsets": await self._send_all(producer, a["topic"], a["records"])}
        finally:
            await producer.stop()

    async def transaction(self, a: Args) -> Args:
        producer = AIOKafkaProducer(**self.base, transactional_id=a["transactional_id"])
        await producer.start()
        try:
            for txn in a["transactions"]:
                await producer.begin_transaction()
                await self._send_all(producer, a["topic"], txn["records"])
                if txn["commit"]:
                    await producer.commit_transaction()
                else:
                    await producer.abort_transaction()
        finally:
            await producer.stop()
        return {}

    # ---------------------------------------------------------------- consume

    def _record(self, msg: Any, **extra: Any) -> Args:
        return record_out(
            msg.partition, msg.offset, msg.key, msg.value, list(msg.headers), msg.timestamp, **extra
        )

    async def consume(self, a: Args) -> Args:
        consumer = AIOKafkaConsumer(
            **self.base,
            isolation_level=a["isolation"],
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            parts = [TopicPartition(a["topic"], p) for p in a["partitions"]]
            consumer.assign(parts)
            if a["from_timestamp"] is None:
                await consumer.seek_to_beginning(*parts)
            else:
                found = await consumer.offsets_for_times({tp: a["from_timestamp"] for tp in parts})
                for tp in parts:
                    hit = found.get(tp)
                    if hit is None:
                        await consumer.seek_to_end(tp)
                    else:
                        consumer.seek(tp, hit.offset)
            got: list[Args] = []
            deadline = self._deadline(a)
            while len(got) < a["count"] and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=200, max_records=a["count"] - len(got))
                for messages in batches.values():
                    got += [self._record(m) for m in messages]
            return {"records": got}
        finally:
            await consumer.stop()

    async def offset_for_time(self, a: Args) -> Args:
        consumer = AIOKafkaConsumer(**self.base)
        await consumer.start()
        try:
            tp = TopicPartition(a["topic"], a["partition"])
            found = (await consumer.offsets_for_times({tp: a["timestamp"]})).get(tp)
            return {"offset": None if found is None else found.offset}
        finally:
            await consumer.stop()

    # ---------------------------------------------------------------- groups

    async def group_join(self, a: Args) -> Args:
        for _ in range(a["members"]):
            member = AIOKafkaConsumer(
                a["topic"],
                **self.base,
                group_id=a["group"],
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                heartbeat_interval_ms=100,
                session_timeout_ms=10000,
            )
            await member.start()
            self.members.append(member)
        every = sorted(self.members[0].partitions_for_topic(a["topic"]) or [])
        deadline = self._deadline(a)
        owned: list[list[int]] = []
        while time.monotonic() < deadline:
            await self._poll_into(self.pending, 50)
            owned = [sorted(tp.partition for tp in m.assignment()) for m in self.members]
            if all(owned) and sorted(p for o in owned for p in o) == every:
                return {"assignments": owned}
        raise TimeoutError(f"group not stable: assignments {owned}")

    async def _poll_into(self, got: list[Args], timeout_ms: int) -> None:
        polls = [m.getmany(timeout_ms=timeout_ms) for m in self.members]
        for i, batches in enumerate(await asyncio.gather(*polls)):
            for messages in batches.values():
                got += [self._record(m, member=i) for m in messages]

    async def group_consume(self, a: Args) -> Args:
        got, self.pending = self.pending, []
        deadline = self._deadline(a)
        while len(got) < a["count"] and time.monotonic() < deadline:
            await self._poll_into(got, 100)
        return {"records": got}

    async def group_commit(self, _: Args) -> Args:
        for member in self.members:
            await member.commit()
        return {}

    async def group_close(self, _: Args) -> Args:
        for member in self.members:
            await member.stop()
        self.members = []
        return {}

    # ---------------------------------------------------------------- admin

    async def _admin(self) -> AIOKafkaAdminClient:
        if self.admin is None:
            self.admin = AIOKafkaAdminClient(**self.base)
            await self.admin.start()
        return self.admin

    async def create_topic(self, a: Args) -> Args:
        topic = NewTopic(a["topic"], a["partitions"], 1, topic_configs=a["configs"])
        response = await (await self._admin()).create_topics([topic])
        _raise_errors(response.topic_errors)
        return {}

    async def describe_topic(self, a: Args) -> Args:
        (topic,) = await (await self._admin()).describe_topics([a["topic"]])
        if topic["error_code"]:
            raise for_code(topic["error_code"])(a["topic"])
        return {"partitions": len(topic["partitions"])}

    async def describe_configs(self, a: Args) -> Args:
        resource = ConfigResource(ConfigResourceType.TOPIC, a["topic"])
        (response,) = await (await self._admin()).describe_configs([resource])
        configs: dict[str, Any] = {}
        for error_code, message, _type, _name, entries in response.resources:
            if error_code:
                raise for_code(error_code)(message)
            configs.update({entry[0]: entry[1] for entry in entries if entry[0] in a["names"]})
        return {"configs": configs}

    async def alter_configs(self, a: Args) -> Args:
        resource = ConfigResource(ConfigResourceType.TOPIC, a["topic"], a["configs"])
        (response,) = await (await self._admin()).alter_configs([resource])
        for error_code, message, *_ in response.resources:
            if error_code:
                raise for_code(error_code)(message)
        return {}

    async def create_partitions(self, a: Args) -> Args:
        request = {a["topic"]: NewPartitions(a["count"])}
        response = await (await self._admin()).create_partitions(request)
        _raise_errors(response.topic_errors)
        return {}

    async def delete_records(self, a: Args) -> Args:
        tp = TopicPartition(a["topic"], a["partition"])
        result = await (await self._admin()).delete_records({tp: RecordsToDelete(a["offset"])})
        return {"low_watermark": result[tp]}

    async def delete_topic(self, a: Args) -> Args:
        response = await (await self._admin()).delete_topics([a["topic"]])
        _raise_errors(response.topic_error_codes)
        return {}

    async def list_groups(self, _: Args) -> Args:
        groups = await (await self._admin()).list_consumer_groups()
        return {"groups": [g[0] for g in groups]}

    async def describe_group(self, a: Args) -> Args:
        (response,) = await (await self._admin()).describe_consumer_groups([a["group"]])
        (group,) = response.groups
        if group[0]:
            raise for_code(group[0])(a["group"])
        return {"state": group[2], "members": len(group[5])}

    async def close(self) -> None:
        for member in self.members:
            await member.stop()
        if self.admin is not None:
            await self.admin.close()


def _raise_errors(results: list[Any]) -> None:
    """Raise the first per-topic error of an admin response ((name, code, ...) tuples)."""
    for name, code, *rest in results:
        if code:
            raise for_code(code)(f"{name}: {rest[0] if rest else ''}")


def error_code(exc: BaseException) -> str | None:
    return type(exc).__name__ if isinstance(exc, KafkaError) else None


async def main() -> int:
    driver = Driver()
    handlers = {k: v for k, v in handlers_of(driver).items() if k != "close"}
    return await serve_async(handlers, error_code, driver.close)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
