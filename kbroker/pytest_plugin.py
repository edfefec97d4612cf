"""pytest plugin: a real Kafka broker for a test suite, with no JVM and no Docker.

Installed with kbroker (entry point `pytest11: kbroker`), so its fixtures are there in every
suite that has kbroker installed; nothing starts until a test asks for one:

    kafka_broker        session scope: an ephemeral kbroker on a free port, data in a temp dir,
                        group.initial.rebalance.delay.ms=0 (a `KafkaTestBroker`)
    bootstrap_servers   session scope: its "host:port"
    kafka_topic         a fresh topic per test; `@pytest.mark.kafka_topic(partitions=3,
                        configs={...})` sets its shape (1 partition by default), as does
                        indirect parametrization (`parametrize("kafka_topic", [1, 8],
                        indirect=True)`)

    def test_orders(kafka_topic, bootstrap_servers, kafka_broker):
        produce_orders(bootstrap_servers, kafka_topic)          # the code under test
        assert [r.value for r in kafka_broker.records(kafka_topic)] == [b"o-1", b"o-2"]

`kafka_broker.records(topic)` reads back what a topic holds and `kafka_broker.committed(group,
topic)` what a group committed, for assertions, over the Kafka protocol (they are the module's
`read_records` and `committed_offsets`, and work against any broker). `pytest
--kafka-bootstrap HOST:PORT` points every fixture at a running broker instead (Apache Kafka,
say) so the same suite can check both.

The broker itself runs in this process, on its own event loop thread (`kbroker.testing.Broker`);
it is imported only when a test first asks for it, so collecting other suites costs nothing.
"""

# Imports of protocol/ and kbroker.testing sit inside the functions that use them: pytest loads
# this plugin in every run wherever kbroker is installed, and they cost ~200 ms.
# ruff: noqa: PLC0415

from __future__ import annotations

import itertools
import re
import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from kbroker.testing import Broker
    from protocol._codec import ApiMessage

M = TypeVar("M", bound="ApiMessage")
CLIENT_ID = "kbroker-pytest"
TIMEOUT_S = 30.0
_SIZE = struct.Struct(">i")
# Versions every broker of the last years serves (Kafka 2.1+, Kafka 4, kbroker).
_METADATA, _CREATE_TOPICS, _FETCH, _LIST_OFFSETS = 8, 4, 11, 5
_FIND_COORDINATOR, _OFFSET_FETCH = 2, 5
_EARLIEST = -2
_names = itertools.count()


# --------------------------------------------------------------------------- options, markers


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kbroker", "Kafka test broker (kbroker)")
    group.addoption(
        "--kafka-bootstrap",
        metavar="HOST:PORT",
        help="use this running broker for the kafka_* fixtures instead of starting kbroker",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kafka_topic(partitions=1, configs=None): the shape of the test's kafka_topic",
    )


# --------------------------------------------------------------------------- reading back


@dataclass(frozen=True)
class Record:
    """A record as stored, for assertions."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp: int = -1


class ProtocolFailure(AssertionError):
    """The broker answered a helper's request with an error (or not at all)."""


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT_S)
        self.correlation_id = 0

    def call(self, body: ApiMessage, version: int, response_type: type[M]) -> M:
        from protocol.frames import decode_response, encode_request
        from protocol.messages.request_header import RequestHeader

        assert body.API_KEY is not None
        self.correlation_id += 1
        header = RequestHeader(body.API_KEY, version, self.correlation_id, CLIENT_ID)
        self.sock.sendall(encode_request(header, body))
        try:
            (size,) = _SIZE.unpack(self._recv(4))
            frame = self._recv(size)
        except ConnectionError:
            what = f"{type(body).__name__.removesuffix('Request')} v{version}"
            raise ProtocolFailure(
                f"the broker closed the connection on {what}: does it serve it?"
            ) from None
        _, reply = decode_response(frame, body.API_KEY, version)
        assert isinstance(reply, response_type)
        return reply

    def _recv(self, n: int) -> bytes:
        chunks, remaining = [], n
        while remaining:
            chunk = self.sock.recv(min(remaining, 1 << 20))
            if not chunk:
                raise ConnectionError("closed by the broker")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


def _check(code: int, what: str) -> None:
    from protocol.error_codes import error_code

    if code != 0:
        raise ProtocolFailure(f"{what}: {error_code(code).name}")


class _Cluster:
    """Just enough of a client to read a topic and a group's offsets, leader-aware."""

    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.bootstrap = _Connection(host.strip("[]"), int(port))
        self.nodes: dict[int, _Connection] = {}
        self.addresses: dict[int, tuple[str, int]] = {}

    def __enter__(self) -> _Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        for conn in [self.bootstrap, *self.nodes.values()]:
            conn.close()

    def node(self, node_id: int) -> _Connection:
        if node_id not in self.nodes:
            self.nodes[node_id] = _Connection(*self.addresses[node_id])
        return self.nodes[node_id]

    def leaders(self, topic: str) -> dict[int, int]:
        from protocol.messages import metadata_request as mq
        from protocol.messages.metadata_response import MetadataResponse

        request = mq.MetadataRequest(
            topics=[mq.MetadataRequestTopic(name=topic)], allow_auto_topic_creation=False
        )
        reply = self.bootstrap.call(request, _METADATA, MetadataResponse)
        self.addresses.update({b.node_id: (b.host, b.port) for b in reply.brokers})
        (found,) = [t for t in reply.topics if t.name == topic]
        _check(found.error_code, f"Metadata for {topic}")
        return {p.partition_index: p.leader_id for p in found.partitions}

    def create_topic(self, name: str, partitions: int, configs: dict[str, str]) -> None:
        from protocol.messages import create_topics_request as ct
        from protocol.messages.create_topics_response import CreateTopicsResponse

        topic = ct.CreatableTopic(
            name=name,
            num_partitions=partitions,
            replication_factor=-1,
            configs=[ct.CreatableTopicConfig(k, v) for k, v in configs.items()],
        )
        request = ct.CreateTopicsRequest(topics=[topic], timeout_ms=int(TIMEOUT_S * 1000))
        reply = self.bootstrap.call(request, _CREATE_TOPICS, CreateTopicsResponse)
        for result in reply.topics:
            _check(result.error_code, f"CreateTopics {name}: {result.error_message}")
        deadline = time.monotonic() + TIMEOUT_S
        while len([n for n in self._leaders_or_none(name).values() if n >= 0]) < partitions:
            if time.monotonic() > deadline:
                raise ProtocolFailure(f"{name}: partitions without a leader after {TIMEOUT_S} s")
            time.sleep(0.01)

    def _leaders_or_none(self, topic: str) -> dict[int, int]:
        try:
            return self.leaders(topic)
        except ProtocolFailure:
            return {}

    def earliest(self, topic: str, partition: int, leader: int) -> int:
        from protocol.messages import list_offsets_request as lo
        from protocol.messages.list_offsets_response import ListOffsetsResponse

        asked = lo.ListOffsetsPartition(partition_index=partition, timestamp=_EARLIEST)
        request = lo.ListOffsetsRequest(
            replica_id=-1, topics=[lo.ListOffsetsTopic(name=topic, partitions=[asked])]
        )
        reply = self.node(leader).call(request, _LIST_OFFSETS, ListOffsetsResponse)
        answer = reply.topics[0].partitions[0]
        _check(answer.error_code, f"ListOffsets {topic}-{partition}")
        return answer.offset

    def fetch(self, topic: str, partition: int, leader: int) -> tuple[list[Record], int]:
        """Every data record of one partition (control records left out), and its high
        watermark."""
        from protocol.messages import fetch_request as fq
        from protocol.messages.fetch_response import FetchResponse
        from protocol.records import decode_batch, iter_batch_headers

        offset, out = self.earliest(topic, partition, leader), []
        while True:
            part = fq.FetchPartition(partition=partition, fetch_offset=offset)
            part.partition_max_bytes = 16 << 20
            request = fq.FetchRequest(
                max_wait_ms=0, topics=[fq.FetchTopic(topic=topic, partitions=[part])]
            )
            data = self.node(leader).call(request, _FETCH, FetchResponse).responses[0].partitions[0]
            _check(data.error_code, f"Fetch {topic}-{partition}@{offset}")
            buf = data.records if isinstance(data.records, bytes | bytearray | memoryview) else b""
            batches = [decode_batch(buf, pos) for pos, _ in iter_batch_headers(buf)]
            for header, records in batches:
                if not header.is_control:
                    out += [
                        Record(topic, partition, r.offset, r.key, r.value, r.headers, r.timestamp)
                        for r in records
                        if offset <= r.offset < data.high_watermark
                    ]
            if not batches or batches[-1][0].next_offset >= data.high_watermark:
                return out, data.high_watermark
            offset = batches[-1][0].next_offset

    def committed(self, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
        from protocol.messages import offset_fetch_request as of
        from protocol.messages.find_coordinator_request import FindCoordinatorRequest
        from protocol.messages.find_coordinator_response import FindCoordinatorResponse
        from protocol.messages.offset_fetch_response import OffsetFetchResponse

        find = FindCoordinatorRequest(key=group, key_type=0)
        found = self.bootstrap.call(find, _FIND_COORDINATOR, FindCoordinatorResponse)
        _check(found.error_code, f"FindCoordinator for group {group}")
        self.addresses.setdefault(found.node_id, (found.host, found.port))
        request = of.OffsetFetchRequest(
            group_id=group, topics=[of.OffsetFetchRequestTopic(topic, partitions)]
        )
        reply = self.node(found.node_id).call(request, _OFFSET_FETCH, OffsetFetchResponse)
        _check(reply.error_code, f"OffsetFetch for group {group}")
        out = {}
        for t in reply.topics:
            for p in t.partitions:
                _check(p.error_code, f"OffsetFetch {group} {topic}-{p.partition_index}")
                if p.committed_offset >= 0:
                    out[p.partition_index] = p.committed_offset
        return out


@contextmanager
def _reporting(action: str, bootstrap: str) -> Iterator[None]:
    """A refused or broken connection becomes an assertion that says what was being done."""
    try:
        yield
    except OSError as exc:
        raise ProtocolFailure(f"{action} at {bootstrap}: {exc}") from exc


def read_records(bootstrap: str, topic: str, partition: int | None = None) -> list[Record]:
    """What `topic` holds (one partition, or all of them in partition order), from its log
    start to its high watermark. Every data record is there, including those of transactions
    still open or aborted; control records are not."""
    with _reporting(f"reading {topic}", bootstrap), _Cluster(bootstrap) as cluster:
        leaders = cluster.leaders(topic)
        wanted = sorted(leaders) if partition is None else [partition]
        out: list[Record] = []
        for p in wanted:
            out += cluster.fetch(topic, p, leaders[p])[0]
        return out


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """partition -> high watermark."""
    with _reporting(f"reading {topic}", bootstrap), _Cluster(bootstrap) as cluster:
        leaders = cluster.leaders(topic)
        return {p: cluster.fetch(topic, p, leaders[p])[1] for p in sorted(leaders)}


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """partition -> offset committed by `group` for `topic` (partitions with none left out)."""
    with _reporting(f"reading group {group}", bootstrap), _Cluster(bootstrap) as cluster:
        return cluster.committed(group, topic, sorted(cluster.leaders(topic)))


def create_topic(bootstrap: str, name: str, partitions: int = 1, configs: Any = None) -> str:
    with _reporting(f"creating {name}", bootstrap), _Cluster(bootstrap) as cluster:
        cluster.create_topic(name, partitions, dict(configs or {}))
    return name


# --------------------------------------------------------------------------- fixtures


class KafkaTestBroker:
    """The session's broker: its address, and helpers to set up and to assert."""

    def __init__(self, bootstrap_servers: str, broker: Broker | None = None) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.broker = broker  # the in-process kbroker, None with --kafka-bootstrap

    def create_topic(
        self, name: str | None = None, partitions: int = 1, configs: dict[str, str] | None = None
    ) -> str:
        """Create a topic (a fresh name unless given) and wait for its leaders."""
        return create_topic(
            self.bootstrap_servers, name or f"topic-{next(_names)}", partitions, configs
        )

    def records(self, topic: str, partition: int | None = None) -> list[Record]:
        """What the topic holds, for assertions (see `read_records`)."""
        return read_records(self.bootstrap_servers, topic, partition)

    def values(self, topic: str, partition: int | None = None) -> list[bytes | None]:
        return [r.value for r in self.records(topic, partition)]

    def end_offsets(self, topic: str) -> dict[int, int]:
        return end_offsets(self.bootstrap_servers, topic)

    def committed(self, group: str, topic: str) -> dict[int, int]:
        return committed_offsets(self.bootstrap_servers, group, topic)


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest) -> Iterator[KafkaTestBroker]:
    external = request.config.getoption("--kafka-bootstrap")
    if external:
        yield KafkaTestBroker(external)
        return
    from kbroker.testing import Broker

    with Broker() as broker:
        yield KafkaTestBroker(broker.bootstrap_servers, broker)


@pytest.fixture(scope="session")
def bootstrap_servers(kafka_broker: KafkaTestBroker) -> str:
    return kafka_broker.bootstrap_servers


@pytest.fixture
def kafka_topic(kafka_broker: KafkaTestBroker, request: pytest.FixtureRequest) -> str:
    """A topic made for this test alone (named after it). Its shape comes from the
    `kafka_topic` marker, or from indirect parametrization with a partition count or a dict of
    the marker's arguments: `@pytest.mark.parametrize("kafka_topic", [1, 8], indirect=True)`."""
    marker = request.node.get_closest_marker("kafka_topic")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    param = getattr(request, "param", None)
    if param is not None:
        options.update(param if isinstance(param, dict) else {"partitions": param})
    base = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name)[:180].strip("-")
    name = f"{base}-{next(_names)}"
    return kafka_broker.create_topic(name, options.get("partitions", 1), options.get("configs"))
