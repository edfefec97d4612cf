"""Capture golden request frames from real Kafka clients (a developer tool, run by hand).

    python -m tests.protocol.golden.capture

Theory of operation. A small fake broker, built only on our `protocol` package, listens on
127.0.0.1 (a free port), records every request frame it receives and answers just enough for
real clients to proceed: ApiVersions (a version above what it advertises gets
UNSUPPORTED_VERSION in a v0 response listing its ranges, as from Kafka), Metadata (itself as
node 1; every topic asked for exists, with one partition it leads), Produce, FindCoordinator
(itself), JoinGroup (one member, the leader; a v4+ join without a member id first gets
MEMBER_ID_REQUIRED, as from Kafka), SyncGroup, Heartbeat, LeaveGroup, OffsetFetch,
OffsetCommit, ListOffsets, Fetch (empty, after up to 100 ms), InitProducerId (producer 1000,
epoch 0), the transaction APIs (all succeed) and CreateTopics. Each scenario drives one client
against a fresh fake broker: a producer sending `RECORDS` with each codec the client supports,
an idempotent one, a transactional one, and a consumer in a group that commits an offset.

The first frame of each (client, API key, version, variant) is written, without its int32 size
prefix, to `<client>/<api>_v<version>[_<variant>].bin`, and described in `index.json`. The
variant tells apart frames of one API version: a Produce's codec and producer kind, a JoinGroup
before and after MEMBER_ID_REQUIRED. Each Produce frame stored is checked here to hold exactly
`RECORDS` in one batch, so a client splitting them fails the capture rather than the tests.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import itertools
import json
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import aiokafka
import confluent_kafka
import kafka
from kafka.structs import OffsetAndMetadata

from protocol._codec import ApiMessage, FileRegion, Records
from protocol.api_keys import API_SPECS, ApiKey
from protocol.error_codes import ErrorCode
from protocol.frames import FrameDecoder, Request, decode_request_header, encode_response
from protocol.messages import add_partitions_to_txn_response as ap
from protocol.messages import api_versions_response as av
from protocol.messages import create_topics_response as ct
from protocol.messages import fetch_response as fr
from protocol.messages import find_coordinator_response as fc
from protocol.messages import join_group_response as jg
from protocol.messages import leave_group_response as lg
from protocol.messages import list_offsets_response as lo
from protocol.messages import metadata_response as md
from protocol.messages import offset_commit_response as oc
from protocol.messages import offset_fetch_response as of
from protocol.messages import produce_response as pr
from protocol.messages import txn_offset_commit_response as tc
from protocol.messages.add_offsets_to_txn_response import AddOffsetsToTxnResponse
from protocol.messages.add_partitions_to_txn_request import AddPartitionsToTxnRequest
from protocol.messages.create_topics_request import CreateTopicsRequest
from protocol.messages.end_txn_response import EndTxnResponse
from protocol.messages.fetch_request import FetchRequest
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.heartbeat_response import HeartbeatResponse
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.init_producer_id_response import InitProducerIdResponse
from protocol.messages.join_group_request import JoinGroupRequest
from protocol.messages.leave_group_request import LeaveGroupRequest
from protocol.messages.list_offsets_request import ListOffsetsRequest
from protocol.messages.metadata_request import MetadataRequest
from protocol.messages.offset_commit_request import OffsetCommitRequest
from protocol.messages.offset_fetch_request import OffsetFetchRequest
from protocol.messages.produce_request import ProduceRequest
from protocol.messages.sync_group_request import SyncGroupRequest
from protocol.messages.sync_group_response import SyncGroupResponse
from protocol.messages.txn_offset_commit_request import TxnOffsetCommitRequest
from protocol.records import decode_batch, read_batch_header

GOLDEN_DIR = Path(__file__).resolve().parent
INDEX = GOLDEN_DIR / "index.json"
HOST = "127.0.0.1"
NODE_ID = 1
TOPIC = "golden-topic"
GROUP = "golden-group"
CLIENT_ID = "golden-capture"
TRANSACTIONAL_ID = "golden-txn"
PRODUCER_ID = 1000
COMMIT_OFFSET = 3
EARLIEST = -2  # the ListOffsets timestamp asking for the log start

# What the fake broker advertises: a realistic subset of a Kafka 3.x broker's ranges.
ADVERTISED: dict[ApiKey, tuple[int, int]] = {
    ApiKey.PRODUCE: (0, 11),
    ApiKey.FETCH: (4, 12),
    ApiKey.LIST_OFFSETS: (1, 7),
    ApiKey.METADATA: (0, 12),
    ApiKey.OFFSET_COMMIT: (2, 8),
    ApiKey.OFFSET_FETCH: (1, 8),
    ApiKey.FIND_COORDINATOR: (0, 4),
    ApiKey.JOIN_GROUP: (0, 7),
    ApiKey.HEARTBEAT: (0, 4),
    ApiKey.LEAVE_GROUP: (0, 4),
    ApiKey.SYNC_GROUP: (0, 5),
    ApiKey.API_VERSIONS: (0, 3),
    ApiKey.CREATE_TOPICS: (2, 7),
    ApiKey.INIT_PRODUCER_ID: (0, 4),
    ApiKey.ADD_PARTITIONS_TO_TXN: (0, 3),
    ApiKey.ADD_OFFSETS_TO_TXN: (0, 3),
    ApiKey.END_TXN: (0, 3),
    ApiKey.TXN_OFFSET_COMMIT: (0, 3),
}

Header: TypeAlias = tuple[str, bytes | None]
RecordSpec: TypeAlias = tuple[bytes | None, bytes | None, list[Header], int]
M = TypeVar("M", bound=ApiMessage)

# What every producer scenario sends, in order: keys, a null key, a null value, headers
# (an empty header value too), explicit timestamps, and one value long enough to compress.
RECORDS: list[RecordSpec] = [
    (b"key-0", b"value-0", [("trace-id", b"abc123")], 1_700_000_000_000),
    (None, b"no key here", [], 1_700_000_000_001),
    (b"tombstone", None, [("h1", b"1"), ("h2", b"")], 1_700_000_000_002),
    (b"bin\x00\xff", b"compressible " * 20, [], 1_700_000_000_250),
]


def records_json(records: list[RecordSpec]) -> list[dict[str, Any]]:
    """Records as index.json holds them: bytes as hex, offsets counted from 0."""

    def hx(value: bytes | None) -> str | None:
        return None if value is None else value.hex()

    return [
        {
            "offset": i,
            "timestamp": ts,
            "key": hx(key),
            "value": hx(value),
            "headers": [[name, hx(hval)] for name, hval in headers],
        }
        for i, (key, value, headers, ts) in enumerate(records)
    ]


def as_bytes(records: Records | None) -> bytes:
    if isinstance(records, FileRegion):
        raise TypeError("a request never holds a file region")
    return b"" if records is None else bytes(records)


def body_of(request: Request, cls: type[M]) -> M:
    body = request.body()
    assert isinstance(body, cls)
    return body


class FakeBroker:
    """One node on one asyncio loop (its own thread); all state is owned by that loop.

    The driving thread reads the frames only through `snapshot()`, a copy taken under a lock.
    """

    def __init__(self) -> None:
        self.port = 0
        self._frames: list[bytes] = []
        self._lock = threading.Lock()
        self._log_end: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, str, int], int] = {}
        self._member_ids = itertools.count(1)
        self._generation = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: dict[int, Callable[[Request], ApiMessage | None]] = {
            ApiKey.PRODUCE: self._produce,
            ApiKey.FETCH: self._fetch,
            ApiKey.LIST_OFFSETS: self._list_offsets,
            ApiKey.METADATA: self._metadata,
            ApiKey.OFFSET_COMMIT: self._offset_commit,
            ApiKey.OFFSET_FETCH: self._offset_fetch,
            ApiKey.FIND_COORDINATOR: self._find_coordinator,
            ApiKey.JOIN_GROUP: self._join_group,
            ApiKey.HEARTBEAT: lambda _: HeartbeatResponse(),
            ApiKey.LEAVE_GROUP: self._leave_group,
            ApiKey.SYNC_GROUP: self._sync_group,
            ApiKey.CREATE_TOPICS: self._create_topics,
            ApiKey.INIT_PRODUCER_ID: lambda _: InitProducerIdResponse(producer_id=PRODUCER_ID),
            ApiKey.ADD_PARTITIONS_TO_TXN: self._add_partitions_to_txn,
            ApiKey.ADD_OFFSETS_TO_TXN: lambda _: AddOffsetsToTxnResponse(),
            ApiKey.END_TXN: lambda _: EndTxnResponse(),
            ApiKey.TXN_OFFSET_COMMIT: self._txn_offset_commit,
        }

    def __enter__(self) -> FakeBroker:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    def snapshot(self) -> list[bytes]:
        with self._lock:
            return list(self._frames)

    def seen(self, api_key: ApiKey) -> bool:
        return any(decode_request_header(f).api_key == api_key for f in self.snapshot())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        self._writers.add(writer)
        try:
            while data := await reader.read(65536):
                for frame in map(bytes, decoder.feed(data)):
                    with self._lock:
                        self._frames.append(frame)
                    response = await self._answer(frame)
                    if response is not None:
                        writer.write(response)
                        await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, frame: bytes) -> bytes | None:
        request = decode_request_header(frame)
        key, version = request.api_key, request.api_version
        correlation_id = request.header.correlation_id
        if key == ApiKey.API_VERSIONS:
            low, high = ADVERTISED[ApiKey.API_VERSIONS]
            if not low <= version <= high:  # answered in v0, which every client can read
                body = self._api_versions(ErrorCode.UNSUPPORTED_VERSION)
                return encode_response(key, 0, correlation_id, body).getvalue()
            body = self._api_versions(ErrorCode.NONE)
            return encode_response(key, version, correlation_id, body).getvalue()
        if key == ApiKey.FETCH:  # make a consumer wait, as a real broker would
            await asyncio.sleep(min(body_of(request, FetchRequest).max_wait_ms, 100) / 1000)
        handler = self._handlers.get(key)
        if handler is None:
            raise RuntimeError(f"fake broker: no handler for API key {key} v{version}")
        response = handler(request)
        if response is None:
            return None
        return encode_response(key, version, correlation_id, response).getvalue()

    @staticmethod
    def _api_versions(error: ErrorCode) -> av.ApiVersionsResponse:
        keys = [av.ApiVersion(k, low, high) for k, (low, high) in sorted(ADVERTISED.items())]
        return av.ApiVersionsResponse(error_code=error, api_keys=keys)

    def _produce(self, request: Request) -> pr.ProduceResponse | None:
        body = body_of(request, ProduceRequest)
        topics = []
        for topic in body.topic_data:
            parts = []
            for part in topic.partition_data:
                batch = read_batch_header(as_bytes(part.records))
                base = self._log_end.get((topic.name, part.index), 0)
                self._log_end[(topic.name, part.index)] = base + batch.last_offset_delta + 1
                parts.append(pr.PartitionProduceResponse(part.index, 0, base, -1, 0))
            topics.append(pr.TopicProduceResponse(topic.name, partition_responses=parts))
        return None if body.acks == 0 else pr.ProduceResponse(topics)

    def _fetch(self, request: Request) -> fr.FetchResponse:
        topics = []
        for topic in body_of(request, FetchRequest).topics:
            parts = []
            for part in topic.partitions:
                end = self._log_end.get((topic.topic, part.partition), 0)
                parts.append(fr.PartitionData(part.partition, 0, end, end, 0, records=b""))
            topics.append(fr.FetchableTopicResponse(topic.topic, partitions=parts))
        return fr.FetchResponse(responses=topics)

    def _list_offsets(self, request: Request) -> lo.ListOffsetsResponse:
        topics = []
        for topic in body_of(request, ListOffsetsRequest).topics:
            parts = []
            for part in topic.partitions:
                end = self._log_end.get((topic.name, part.partition_index), 0)
                offset = 0 if part.timestamp == EARLIEST else end
                response = lo.ListOffsetsPartitionResponse(part.partition_index, 0, [offset])
                response.offset, response.leader_epoch = offset, 0
                parts.append(response)
            topics.append(lo.ListOffsetsTopicResponse(topic.name, parts))
        return lo.ListOffsetsResponse(topics=topics)

    def _metadata(self, request: Request) -> md.MetadataResponse:
        body = body_of(request, MetadataRequest)
        if body.topics is None or (body.topics == [] and request.api_version == 0):
            names = [TOPIC]  # all topics: null in v1+, an empty list in v0
        else:
            names = [t.name or TOPIC for t in body.topics]
        partition = md.MetadataResponsePartition(0, 0, NODE_ID, 0, [NODE_ID], [NODE_ID])
        topics = [
            md.MetadataResponseTopic(
                0, name, uuid.uuid5(uuid.NAMESPACE_DNS, name), False, [partition]
            )
            for name in names
        ]
        broker = md.MetadataResponseBroker(NODE_ID, HOST, self.port)
        return md.MetadataResponse(0, [broker], "golden-cluster", NODE_ID, topics)

    def _find_coordinator(self, request: Request) -> fc.FindCoordinatorResponse:
        body = body_of(request, FindCoordinatorRequest)
        keys = body.coordinator_keys or [body.key]
        coordinators = [fc.Coordinator(k, NODE_ID, HOST, self.port, 0, None) for k in keys]
        response = fc.FindCoordinatorResponse(0, 0, None, NODE_ID, HOST, self.port)
        response.coordinators = coordinators
        return response

    def _join_group(self, request: Request) -> jg.JoinGroupResponse:
        body = body_of(request, JoinGroupRequest)
        member_id = body.member_id or f"member-{next(self._member_ids)}"
        if not body.member_id and request.api_version >= 4:
            error = ErrorCode.MEMBER_ID_REQUIRED
            return jg.JoinGroupResponse(error_code=error, member_id=member_id, protocol_name=None)
        self._generation += 1
        chosen = body.protocols[0]
        return jg.JoinGroupResponse(
            generation_id=self._generation,
            protocol_type=body.protocol_type,
            protocol_name=chosen.name,
            leader=member_id,
            member_id=member_id,
            members=[
                jg.JoinGroupResponseMember(member_id, body.group_instance_id, chosen.metadata)
            ],
        )

    def _sync_group(self, request: Request) -> SyncGroupResponse:
        body = body_of(request, SyncGroupRequest)
        mine = [a.assignment for a in body.assignments if a.member_id == body.member_id]
        assignment = mine[0] if mine else b""
        return SyncGroupResponse(0, 0, body.protocol_type, body.protocol_name, assignment)

    def _leave_group(self, request: Request) -> lg.LeaveGroupResponse:
        body = body_of(request, LeaveGroupRequest)
        members = [lg.MemberResponse(m.member_id, m.group_instance_id) for m in body.members]
        return lg.LeaveGroupResponse(members=members)

    def _offset_commit(self, request: Request) -> oc.OffsetCommitResponse:
        body = body_of(request, OffsetCommitRequest)
        topics = []
        for topic in body.topics:
            for part in topic.partitions:
                key = (body.group_id, topic.name, part.partition_index)
                self._committed[key] = part.committed_offset
            parts = [oc.OffsetCommitResponsePartition(p.partition_index) for p in topic.partitions]
            topics.append(oc.OffsetCommitResponseTopic(topic.name, partitions=parts))
        return oc.OffsetCommitResponse(topics=topics)

    def _offset_fetch(self, request: Request) -> of.OffsetFetchResponse:
        body = body_of(request, OffsetFetchRequest)

        def offsets(group: str, topic: str, indexes: list[int]) -> Iterator[tuple[int, int]]:
            return ((i, self._committed.get((group, topic, i), -1)) for i in indexes)

        if request.api_version < 8:
            topics = [
                of.OffsetFetchResponseTopic(
                    t.name,
                    [
                        of.OffsetFetchResponsePartition(i, offset)
                        for i, offset in offsets(body.group_id, t.name, t.partition_indexes)
                    ],
                )
                for t in body.topics or []
            ]
            return of.OffsetFetchResponse(topics=topics)
        groups = []
        for group in body.groups:
            group_topics = [
                of.OffsetFetchResponseTopics(
                    t.name,
                    partitions=[
                        of.OffsetFetchResponsePartitions(i, offset)
                        for i, offset in offsets(group.group_id, t.name, t.partition_indexes)
                    ],
                )
                for t in group.topics or []
            ]
            groups.append(of.OffsetFetchResponseGroup(group.group_id, group_topics))
        return of.OffsetFetchResponse(groups=groups)

    def _create_topics(self, request: Request) -> ct.CreateTopicsResponse:
        body = body_of(request, CreateTopicsRequest)
        results = [ct.CreatableTopicResult(t.name, error_message=None) for t in body.topics]
        return ct.CreateTopicsResponse(topics=results)

    def _add_partitions_to_txn(self, request: Request) -> ap.AddPartitionsToTxnResponse:
        body = body_of(request, AddPartitionsToTxnRequest)
        results = [
            ap.AddPartitionsToTxnTopicResult(
                t.name, [ap.AddPartitionsToTxnPartitionResult(p) for p in t.partitions]
            )
            for t in body.v3_and_below_topics
        ]
        return ap.AddPartitionsToTxnResponse(results_by_topic_v3_and_below=results)

    def _txn_offset_commit(self, request: Request) -> tc.TxnOffsetCommitResponse:
        body = body_of(request, TxnOffsetCommitRequest)
        topics = [
            tc.TxnOffsetCommitResponseTopic(
                t.name,
                [tc.TxnOffsetCommitResponsePartition(p.partition_index) for p in t.partitions],
            )
            for t in body.topics
        ]
        return tc.TxnOffsetCommitResponse(topics=topics)


# --- scenarios ------------------------------------------------------------------------------
#
# A producer scenario takes the broker's port, a codec and a kind: "plain", "idempotent" or
# "transactional" (which also sends the offset COMMIT_OFFSET of GROUP with the transaction).


def wait_for(condition: Callable[[], bool], what: str, step: Callable[[], object]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        step()


def confluent_producer(port: int, codec: str, kind: str) -> None:
    config: dict[str, Any] = {
        "bootstrap.servers": f"{HOST}:{port}",
        "client.id": CLIENT_ID,
        "compression.type": codec,
        "linger.ms": 500,
        "enable.idempotence": kind != "plain",
    }
    if kind == "transactional":
        config["transactional.id"] = TRANSACTIONAL_ID
    producer = confluent_kafka.Producer(config)
    if kind == "transactional":
        producer.init_transactions(30)
        producer.begin_transaction()
    for key, value, headers, ts in RECORDS:
        producer.produce(
            TOPIC, value=value, key=key, headers=list(headers), timestamp=ts, partition=0
        )
    if producer.flush(30) != 0:
        raise RuntimeError("confluent-kafka producer did not deliver")
    if kind == "transactional":
        consumer = confluent_kafka.Consumer(
            {"bootstrap.servers": f"{HOST}:{port}", "group.id": GROUP}
        )
        offsets = [confluent_kafka.TopicPartition(TOPIC, 0, COMMIT_OFFSET)]
        producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        consumer.close()


def confluent_consumer(broker: FakeBroker) -> None:
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": f"{HOST}:{broker.port}",
            "client.id": CLIENT_ID,
            "group.id": GROUP,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([TOPIC])
    wait_for(lambda: broker.seen(ApiKey.FETCH), "a Fetch", lambda: consumer.poll(0.1))
    offsets = [confluent_kafka.TopicPartition(TOPIC, 0, COMMIT_OFFSET)]
    consumer.commit(offsets=offsets, asynchronous=False)
    consumer.close()


def kafka_python_producer(port: int, codec: str, kind: str) -> None:
    producer = kafka.KafkaProducer(
        bootstrap_servers=f"{HOST}:{port}",
        client_id=CLIENT_ID,
        compression_type=None if codec == "none" else codec,
        linger_ms=500,
        enable_idempotence=kind != "plain",
        acks=1 if kind == "plain" else -1,
        transactional_id=TRANSACTIONAL_ID if kind == "transactional" else None,
    )
    if kind == "transactional":
        producer.init_transactions()
        producer.begin_transaction()
    for key, value, headers, ts in RECORDS:
        producer.send(TOPIC, value=value, key=key, headers=headers, timestamp_ms=ts, partition=0)
    producer.flush(30)
    if kind == "transactional":
        offsets = {kafka.TopicPartition(TOPIC, 0): OffsetAndMetadata(COMMIT_OFFSET, "", -1)}
        producer.send_offsets_to_transaction(offsets, GROUP)
        producer.commit_transaction()
    producer.close(10)


def kafka_python_consumer(broker: FakeBroker) -> None:
    consumer = kafka.KafkaConsumer(
        TOPIC,
        bootstrap_servers=f"{HOST}:{broker.port}",
        client_id=CLIENT_ID,
        group_id=GROUP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    wait_for(lambda: broker.seen(ApiKey.FETCH), "a Fetch", lambda: consumer.poll(100))
    consumer.commit({kafka.TopicPartition(TOPIC, 0): OffsetAndMetadata(COMMIT_OFFSET, "", -1)})
    consumer.close()


async def aiokafka_produce(port: int, codec: str, kind: str) -> None:
    producer = aiokafka.AIOKafkaProducer(
        bootstrap_servers=f"{HOST}:{port}",
        client_id=CLIENT_ID,
        compression_type=None if codec == "none" else codec,
        linger_ms=500,
        enable_idempotence=kind != "plain",
        transactional_id=TRANSACTIONAL_ID if kind == "transactional" else None,
    )
    await producer.start()
    try:
        if kind == "transactional":
            await producer.begin_transaction()
        sent = [
            await producer.send(
                TOPIC, value=value, key=key, headers=headers, timestamp_ms=ts, partition=0
            )
            for key, value, headers, ts in RECORDS
        ]
        await asyncio.gather(*sent)
        if kind == "transactional":
            offsets = {aiokafka.TopicPartition(TOPIC, 0): COMMIT_OFFSET}
            await producer.send_offsets_to_transaction(offsets, GROUP)
            await producer.commit_transaction()
    finally:
        await producer.stop()


def aiokafka_producer(port: int, codec: str, kind: str) -> None:
    asyncio.run(asyncio.wait_for(aiokafka_produce(port, codec, kind), 30))


async def aiokafka_consume(broker: FakeBroker) -> None:
    consumer = aiokafka.AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=f"{HOST}:{broker.port}",
        client_id=CLIENT_ID,
        group_id=GROUP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while not broker.seen(ApiKey.FETCH):
            await consumer.getmany(timeout_ms=100)
        await consumer.commit({aiokafka.TopicPartition(TOPIC, 0): COMMIT_OFFSET})
    finally:
        await consumer.stop()


def aiokafka_consumer(broker: FakeBroker) -> None:
    asyncio.run(asyncio.wait_for(aiokafka_consume(broker), 30))


@dataclass
class Client:
    name: str  # its directory under golden/
    version: str
    producer: Callable[[int, str, str], None]
    consumer: Callable[[FakeBroker], None]
    codecs: list[str]


def clients() -> list[Client]:
    version = importlib.metadata.version
    librdkafka = confluent_kafka.libversion()[0]
    every = ["none", "gzip", "snappy", "lz4", "zstd"]
    return [
        Client(
            "confluent_kafka",
            f"confluent-kafka {version('confluent-kafka')} (librdkafka {librdkafka})",
            confluent_producer,
            confluent_consumer,
            every,
        ),
        Client(
            "kafka_python",
            f"kafka-python {version('kafka-python')}",
            kafka_python_producer,
            kafka_python_consumer,
            ["none", "gzip", "lz4", "zstd"],  # its snappy needs python-snappy
        ),
        Client(
            "aiokafka",
            f"aiokafka {version('aiokafka')}",
            aiokafka_producer,
            aiokafka_consumer,
            every,
        ),
    ]


# --- selection and storage ------------------------------------------------------------------


def produce_batch(request: Request) -> bytes:
    (topic,) = body_of(request, ProduceRequest).topic_data
    (partition,) = topic.partition_data
    return as_bytes(partition.records)


def variant(request: Request) -> str:
    """What tells apart frames of one API version worth keeping separately."""
    if request.api_key == ApiKey.PRODUCE:
        batch = read_batch_header(produce_batch(request))
        kind = "_transactional" if batch.is_transactional else "_idempotent"
        return batch.compression.name.lower() + (kind if batch.producer_id >= 0 else "")
    if request.api_key == ApiKey.JOIN_GROUP:
        return "rejoin" if body_of(request, JoinGroupRequest).member_id else "initial"
    if request.api_key == ApiKey.FIND_COORDINATOR:
        return "transaction" if body_of(request, FindCoordinatorRequest).key_type else "group"
    if request.api_key == ApiKey.INIT_PRODUCER_ID:
        transactional = body_of(request, InitProducerIdRequest).transactional_id
        return "transactional" if transactional else "idempotent"
    return ""


def check_records(request: Request) -> None:
    """A stored Produce frame must hold exactly RECORDS, in one batch."""
    records = produce_batch(request)
    header, decoded = decode_batch(records)
    if header.size != len(records):
        raise RuntimeError("the Produce frame holds more than one batch")
    got = [(r.key, r.value, list(r.headers), r.timestamp) for r in decoded]
    if got != RECORDS:
        raise RuntimeError(f"the Produce frame holds {got!r}, not RECORDS")


def run_scenario(scenario: Callable[[FakeBroker], None]) -> list[bytes]:
    with FakeBroker() as broker:
        scenario(broker)
        time.sleep(0.2)  # let the last frames land
        return broker.snapshot()


def producing(client: Client, codec: str, kind: str, broker: FakeBroker) -> None:
    client.producer(broker.port, codec, kind)


def capture_client(client: Client) -> Iterator[tuple[str, Request, str]]:
    """Yields (scenario label, request, variant), the first of each kind only."""
    scenarios: list[tuple[str, Callable[[FakeBroker], None]]] = [
        (f"producer, compression {codec}", functools.partial(producing, client, codec, "plain"))
        for codec in client.codecs
    ]
    scenarios += [
        (f"{kind} producer", functools.partial(producing, client, "none", kind))
        for kind in ("idempotent", "transactional")
    ]
    scenarios.append(("consumer in a group", client.consumer))
    seen: set[tuple[int, int, str]] = set()
    for label, scenario in scenarios:
        print(f"{client.name}: {label}", file=sys.stderr)
        for frame in run_scenario(scenario):
            request = decode_request_header(frame)
            kind = (request.api_key, request.api_version, variant(request))
            if kind not in seen:
                seen.add(kind)
                yield label, request, kind[2]


def main() -> None:
    entries: list[dict[str, Any]] = []
    for client in clients():
        directory = GOLDEN_DIR / client.name
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        for label, request, var in capture_client(client):
            spec = API_SPECS[request.api_key]
            stem = spec.request_module.removesuffix("_request")
            name = f"{stem}_v{request.api_version}" + (f"_{var}" if var else "") + ".bin"
            (directory / name).write_bytes(bytes(request.frame))
            entry: dict[str, Any] = {
                "client": client.name,
                "client_version": client.version,
                "file": f"{client.name}/{name}",
                "api_key": request.api_key,
                "api_name": spec.name,
                "api_version": request.api_version,
                "label": label,
            }
            if request.api_key == ApiKey.PRODUCE:
                check_records(request)
                entry["codec"] = var.split("_")[0]
                entry["producer"] = var.split("_")[1] if "_" in var else "plain"
                entry["records"] = records_json(RECORDS)
            entries.append(entry)
    entries.sort(key=lambda e: (e["client"], e["api_key"], e["api_version"], e["file"]))
    document = {
        "about": "Request frames from real clients, without their int32 size prefix; "
        "rewritten by: python -m tests.protocol.golden.capture",
        "frames": entries,
    }
    INDEX.write_text(json.dumps(document, indent=1) + "\n")
    total = sum(p.stat().st_size for p in GOLDEN_DIR.rglob("*.bin"))
    print(f"{len(entries)} frames, {total} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
