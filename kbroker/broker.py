"""The broker: topics, partitions, request dispatch, and the periodic storage duties.

One owner for all mutable state: everything here runs on the event loop; only fsync, file
deletion and checkpoint writes leave it (on the storage committer thread). Dispatch decodes the
request header, checks the API and version against the handler registry (an unsupported version
closes the connection, as in Kafka, except ApiVersions which answers UNSUPPORTED_VERSION), then
decodes the body and calls the handler. A handler's KafkaError becomes an error code where the
API has one; a ProtocolError closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Iterable

from kbroker import topics_naming
from kbroker.config import BrokerConfig, new_cluster_id
from kbroker.config_dynamic import with_persisted_dynamic_configs
from kbroker.context import RequestContext
from kbroker.fetch_session import FetchSessionCache
from kbroker.groups.runtime import GROUP_METADATA_TOPIC, GroupCoordinator
from kbroker.handlers import load
from kbroker.handlers.api_versions import unsupported_version_response
from kbroker.network import CloseConnection, Connection, Server
from kbroker.partition import SINGLE_NODE_LEADER_EPOCH, Partition
from kbroker.producer_ids import ProducerIdManager
from kbroker.topic_config import ResolvedTopicConfig, TopicConfigs
from kbroker.topic_store import TopicInfo, TopicStore
from kbroker.txn.runtime import TransactionCoordinator
from protocol._codec import Writer
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode, KafkaError
from protocol.frames import decode_request_header, encode_response
from storage.config import LogConfig
from storage.errors import KafkaStorageError
from storage.fs import OS_FS
from storage.manager import LogManager

log = logging.getLogger("kbroker")

CHECKPOINT_INTERVAL_S = 5.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def log_config(resolved: ResolvedTopicConfig) -> LogConfig:
    """The storage settings of a topic's effective configuration."""
    return LogConfig(
        segment_bytes=resolved.segment_bytes,
        segment_ms=resolved.segment_ms,
        segment_jitter_ms=resolved.segment_jitter_ms,
        segment_index_bytes=resolved.segment_index_bytes,
        index_interval_bytes=resolved.index_interval_bytes,
        retention_ms=resolved.retention_ms,
        retention_bytes=resolved.retention_bytes,
        flush_interval_messages=resolved.flush_messages,
        flush_interval_ms=resolved.flush_ms,
        max_message_bytes=resolved.max_message_bytes,
        message_timestamp_type=resolved.message_timestamp_type,
        message_timestamp_before_max_ms=resolved.message_timestamp_before_max_ms,
        message_timestamp_after_max_ms=resolved.message_timestamp_after_max_ms,
        cleanup_policy=",".join(resolved.cleanup_policy),
        file_delete_delay_ms=resolved.file_delete_delay_ms,
        min_insync_replicas=resolved.min_insync_replicas,
        compression_type=resolved.compression_type,
    )


class Broker:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.node_id = max(config.node_id, 0)
        self.log_dirs = config.log_dirs
        for d in self.log_dirs:
            os.makedirs(d, exist_ok=True)
        self.config = config = with_persisted_dynamic_configs(config, self.log_dirs[0])
        self.cluster_id = self._load_meta_properties()
        self.topics = TopicStore(self.log_dirs[0])
        self.logs = LogManager(self.log_dirs, log_config(TopicConfigs.resolve({}, config)))
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.fetch_sessions = FetchSessionCache()
        self.producer_ids = ProducerIdManager(self.log_dirs[0])
        self.groups = GroupCoordinator(self)
        self.txn = TransactionCoordinator(self)
        self.handlers = load()
        max_frame = self.int_config("socket.request.max.bytes")
        self.server = Server(self.dispatch, max_frame, self.int_config("connections.max.idle.ms"))
        self.advertised: tuple[str, int] = ("localhost", 9092)
        self._tasks: list[asyncio.Task[None]] = []

    def int_config(self, name: str) -> int:
        value = self.config.get(name)
        if not isinstance(value, int):
            raise TypeError(f"{name} is not an integer config")
        return value

    # ------------------------------------------------------------------ start and stop

    def _load_meta_properties(self) -> str:
        """cluster.id from meta.properties (Kafka's format), created on first start."""
        path = os.path.join(self.log_dirs[0], "meta.properties")
        props: dict[str, str] = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if "=" in line and not line.startswith("#"):
                        key, _, value = line.strip().partition("=")
                        props[key] = value
        if "cluster.id" not in props:
            props = {
                "version": "1",
                "node.id": str(self.node_id),
                "cluster.id": new_cluster_id(),
                "directory.id": str(uuid.uuid4()),
            }
            text = "".join(f"{k}={v}\n" for k, v in props.items())
            OS_FS.write_atomically(path, text.encode("utf-8"))
        return props["cluster.id"]

    def load_partitions(self) -> None:
        resolved = {t.name: self.topic_config(t) for t in self.topics.topics.values()}
        started = time.monotonic()
        self.logs.startup({name: log_config(r) for name, r in resolved.items()})
        for info in self.topics.topics.values():
            self.open_partitions(info, range(info.partitions), resolved[info.name])
        log.info(
            "loaded %d topics, %d partitions in %.2f s",
            len(self.topics.topics),
            len(self.partitions),
            time.monotonic() - started,
        )

    async def start(self) -> list[tuple[str, int]]:
        self.load_partitions()
        self.groups.start()
        self.txn.start()
        bound: list[tuple[str, int]] = []
        listener = self.config.listeners[0]
        addresses = await self.server.listen(listener.bind_hosts(), listener.port)
        bound += addresses
        port = addresses[0][1]
        advertised = self.config.advertised_listeners[0]
        host = advertised.host or "localhost"
        self.advertised = (host, advertised.port or port)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._periodic()))
        log.info("kbroker node %d serving on %s (cluster %s)", self.node_id, bound, self.cluster_id)
        return bound

    async def _periodic(self) -> None:
        retention_every = self.int_config("log.retention.check.interval.ms") / 1000
        last_retention = time.monotonic()
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            try:
                self.logs.checkpoint_offsets()
                self.logs.flush_dirty_logs(now_ms())
                for partition in self.partitions.values():
                    partition.expire_producers(
                        now_ms(), self.int_config("producer.id.expiration.ms")
                    )
                if time.monotonic() - last_retention >= retention_every:
                    last_retention = time.monotonic()
                    deleted = self.logs.cleanup_logs(now_ms())
                    if deleted:
                        log.info("retention deleted %d segments", deleted)
            except Exception:
                log.exception("periodic storage duty failed")

    async def stop(self) -> None:
        log.info("shutting down: no new connections")
        await self.server.stop_accepting()
        await self.server.close_all()
        self.groups.stop()
        self.txn.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for partition in self.partitions.values():
            try:
                partition.write_producer_snapshot()
            except Exception:  # the log replay at the next start covers it
                log.exception("%s: producer snapshot not written", partition)
        self.logs.close()
        log.info("shut down cleanly")

    # ------------------------------------------------------------------ topics

    def topic_config(self, info: TopicInfo) -> ResolvedTopicConfig:
        return TopicConfigs.resolve(info.configs, self.config)

    def open_partitions(
        self, info: TopicInfo, indexes: Iterable[int], resolved: ResolvedTopicConfig | None = None
    ) -> None:
        """Open (creating if needed) and lead partitions of a topic; its config resolved once."""
        resolved = resolved or self.topic_config(info)
        config = log_config(resolved)
        for index in indexes:
            plog = self.logs.get_or_create_log(info.name, index, config, info.topic_id)
            partition = Partition(
                info.name, index, plog, SINGLE_NODE_LEADER_EPOCH, resolved.flush_before_ack
            )
            partition.become_leader()
            self.partitions[(info.name, index)] = partition

    def apply_topic_config(self, info: TopicInfo) -> None:
        """Make a topic's (changed) configuration take effect on its open partitions."""
        resolved = self.topic_config(info)
        config = log_config(resolved)
        for index in range(info.partitions):
            partition = self.partitions.get((info.name, index))
            if partition is not None:
                partition.log.update_config(config)
                partition.flush_before_ack = resolved.flush_before_ack

    def create_topic(
        self, name: str, partitions: int, configs: dict[str, str], validate_only: bool = False
    ) -> TopicInfo | None:
        """Create a topic (KafkaError with Kafka's code when it cannot be)."""
        try:
            topics_naming.validate_topic_name(name)
        except topics_naming.InvalidTopicName as exc:
            raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, str(exc)) from None
        if name in self.topics.topics:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        collision = topics_naming.find_collision(name, self.topics.topics)
        if collision is not None:
            raise KafkaError(
                ErrorCode.INVALID_TOPIC_EXCEPTION,
                f"Topic '{name}' collides with existing topic: {collision}",
            )
        if partitions < 1:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS, "Number of partitions must be >= 1.")
        try:
            TopicConfigs.validate_all(configs, self.config)
        except Exception as exc:
            raise KafkaError(ErrorCode.INVALID_CONFIG, str(exc)) from None
        if validate_only:
            return None
        info = self.topics.new_topic(name, partitions, configs)
        try:  # all or nothing: the logs, then the topic store; a failure undoes the logs
            self.open_partitions(info, range(partitions))
            self.topics.add(info)
        except (OSError, KafkaError) as exc:
            self.close_partitions(name, range(partitions))
            log.error("topic %s not created: %s", name, exc)
            if isinstance(exc, KafkaError):
                raise
            raise KafkaStorageError(f"cannot create topic {name}: {exc}") from exc
        log.info("created topic %s with %d partitions", name, partitions)
        return info

    def close_partitions(self, name: str, indexes: Iterable[int]) -> None:
        """Undo `open_partitions` of a change that failed: forget the partitions, delete their
        logs (a rename, which needs no space; a failure is logged)."""
        for index in indexes:
            self.partitions.pop((name, index), None)
            try:
                self.logs.delete_log(name, index)
            except OSError:
                log.exception("%s-%d: log not deleted", name, index)

    def auto_create_topic(self, name: str) -> TopicInfo:
        info = self.create_topic(name, self.int_config("num.partitions"), {})
        assert info is not None
        return info

    def delete_topic(self, name: str) -> TopicInfo:
        info = self.topics.topics.get(name)
        if info is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        self.topics.remove(name)  # first: a failed write (KafkaStorageError) leaves it whole
        for index in range(info.partitions):
            partition = self.partitions.pop((name, index), None)
            if partition is not None:
                partition.wake_fetchers()
            self.logs.delete_log(name, index)
        log.info("deleted topic %s", name)
        return info

    def partition(self, topic: str, index: int) -> Partition:
        partition = self.partitions.get((topic, index))
        if partition is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        return partition

    def write_txn_marker(
        self,
        topic: str,
        index: int,
        producer_id: int,
        producer_epoch: int,
        coordinator_epoch: int,
        commit: bool,
    ) -> int:
        """Complete a transaction on one partition this broker leads: append its marker and,
        on `__consumer_offsets`, make the transaction's pending offsets visible or drop them.
        Returns the marker's offset; raises KafkaError (the partition's error)."""
        partition = self.partition(topic, index)
        offset = partition.append_marker(
            producer_id, producer_epoch, coordinator_epoch, commit, now_ms()
        )
        if topic == GROUP_METADATA_TOPIC:
            self.groups.complete_transaction(index, producer_id, commit)
        return offset

    # ------------------------------------------------------------------ dispatch

    async def dispatch(self, conn: Connection, frame: bytearray) -> Writer | None:
        request = decode_request_header(frame)
        key, version = request.api_key, request.api_version
        handler = self.handlers.get(key)
        if handler is None:
            raise CloseConnection(f"unsupported API key {key}")
        if not handler.min_version <= version <= handler.max_version:
            if key == ApiKey.API_VERSIONS:
                body = unsupported_version_response()
                return encode_response(key, 0, request.header.correlation_id, body)
            raise CloseConnection(
                f"{ApiKey(key).name} v{version} is not supported "
                f"(v{handler.min_version}-{handler.max_version} are)"
            )
        ctx = RequestContext(self, conn, request.header)
        response = await handler.fn(ctx, request.body())
        if response is None:
            return None
        return encode_response(key, version, request.header.correlation_id, response)
