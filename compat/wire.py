"""The harness's own view of a broker, over our protocol layer: what it advertises, topic set-up,
and read-only checks that do not trust the client under test.

Broker-neutral: it speaks plain Kafka (ApiVersions v0, then versions chosen inside what the
broker advertises), finds partition leaders and group coordinators through Metadata and
FindCoordinator, and so works against kbroker, Apache Kafka, Redpanda or librdkafka's mock
cluster alike. One blocking connection per node, one request in flight.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import TypeVar

from protocol._codec import ApiMessage
from protocol.api_keys import API_SPECS, ApiKey
from protocol.error_codes import ErrorCode, error_code
from protocol.errors import ProtocolError
from protocol.frames import decode_response, encode_request
from protocol.messages import create_topics_request as ct
from protocol.messages import fetch_request as fq
from protocol.messages import list_offsets_request as lo
from protocol.messages import metadata_request as mq
from protocol.messages import offset_fetch_request as of
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.api_versions_response import ApiVersionsResponse
from protocol.messages.create_topics_response import CreateTopicsResponse
from protocol.messages.fetch_response import FetchResponse
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.find_coordinator_response import FindCoordinatorResponse
from protocol.messages.list_offsets_response import ListOffsetsResponse
from protocol.messages.metadata_response import MetadataResponse
from protocol.messages.offset_fetch_response import OffsetFetchResponse
from protocol.messages.request_header import RequestHeader
from protocol.records import BatchHeader, Record, decode_batch, iter_batch_headers

CLIENT_ID = "compat-harness"
_SIZE = struct.Struct(">i")
M = TypeVar("M", bound=ApiMessage)

# The version ranges this module's requests are written for (fields it sets exist in all), and
# the highest non-flexible version of each: preferred, because brokers' encoders of flexible
# versions vary most (librdkafka's mock cluster adds a byte to Metadata v12).
_OURS: dict[ApiKey, tuple[int, int, int]] = {
    ApiKey.METADATA: (4, 12, 8),  # 13+ adds nothing we use; names, not topic ids
    ApiKey.CREATE_TOPICS: (2, 7, 4),
    ApiKey.FETCH: (4, 12, 11),  # 13+ addresses topics by id only
    ApiKey.LIST_OFFSETS: (1, 7, 5),
    ApiKey.FIND_COORDINATOR: (0, 3, 2),  # 4+ batches keys
    ApiKey.OFFSET_FETCH: (1, 7, 5),  # 8+ batches groups
}


def api_name(key: int) -> str:
    spec = API_SPECS.get(key)
    return spec.name if spec else f"ApiKey{key}"


API_KEYS_BY_NAME = {spec.name: key for key, spec in API_SPECS.items()}


class BrokerLacks(Exception):
    """The broker does not advertise (a usable version of) these APIs."""

    def __init__(self, names: list[str]) -> None:
        super().__init__("broker lacks " + ", ".join(names))
        self.names = names


class WireError(Exception):
    """A request the harness made failed (an error code, a refused connection, a timeout)."""


@dataclass(frozen=True)
class FetchedBatch:
    header: BatchHeader
    records: list[Record]


class Connection:
    """One socket to one node."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.address = f"{host}:{port}"
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise WireError(f"cannot connect to {self.address}: {exc}") from exc
        self.correlation_id = 0

    def close(self) -> None:
        self.sock.close()

    def call(self, body: ApiMessage, version: int, response_type: type[M]) -> M:
        assert body.API_KEY is not None
        self.correlation_id += 1
        header = RequestHeader(body.API_KEY, version, self.correlation_id, CLIENT_ID)
        try:
            self.sock.sendall(encode_request(header, body))
            (size,) = _SIZE.unpack(self._recv(4))
            frame = self._recv(size)
        except OSError as exc:
            raise WireError(f"{api_name(body.API_KEY)} to {self.address}: {exc}") from exc
        reply_header, reply = decode_response(frame, body.API_KEY, version)
        if reply_header.correlation_id != self.correlation_id:
            raise WireError(f"{self.address}: correlation id {reply_header.correlation_id}")
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


def _check(code: int, what: str) -> None:
    if code != ErrorCode.NONE:
        raise WireError(f"{what}: {error_code(code).name}")


class Cluster:
    """Connections to the bootstrap broker and, on demand, to any node Metadata names."""

    def __init__(self, bootstrap: str, timeout: float = 15.0) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self._bootstrap = self._connect_any(bootstrap.split(","))
        self._nodes: dict[int, Connection] = {}
        self._addresses: dict[int, tuple[str, int]] = {}
        self.apis = self._api_versions()

    def _connect_any(self, addresses: list[str]) -> Connection:
        """The first of a bootstrap list that accepts a connection."""
        failure: WireError | None = None
        for address in addresses:
            host, port = address.strip().rsplit(":", 1)
            try:
                return Connection(host.strip("[]"), int(port), self.timeout)
            except WireError as exc:
                failure = exc
        assert failure is not None
        raise failure

    def close(self) -> None:
        for conn in [self._bootstrap, *self._nodes.values()]:
            conn.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------- versions

    def _api_versions(self) -> dict[int, tuple[int, int]]:
        # v0: every broker answers it, and a broker that does not know a newer version would
        # answer with an error in v0 layout anyway.
        reply = self._bootstrap.call(ApiVersionsRequest(), 0, ApiVersionsResponse)
        _check(reply.error_code, "ApiVersions")
        return {k.api_key: (k.min_version, k.max_version) for k in reply.api_keys}

    def advertised_names(self) -> dict[str, tuple[int, int]]:
        return {api_name(key): span for key, span in sorted(self.apis.items())}

    def lacking(self, needs: set[str]) -> list[str]:
        """Which of these needs the broker does not meet: "Name" (advertised at all) or
        "Name vN" (advertised with a range that includes version N)."""
        return sorted(need for need in needs if not self._meets(need))

    def _meets(self, need: str) -> bool:
        name, _, version = need.partition(" v")
        span = self.apis.get(API_KEYS_BY_NAME.get(name, -1))
        if span is None:
            return False
        return not version or span[0] <= int(version) <= span[1]

    def version(self, key: ApiKey) -> int:
        """The version to use: the highest non-flexible one both sides have, else the highest
        one both sides have; BrokerLacks if there is none."""
        lo_ours, hi_ours, plain = _OURS[key]
        span = self.apis.get(key)
        if span is None or span[1] < lo_ours or span[0] > hi_ours:
            raise BrokerLacks([api_name(key)])
        return min(span[1], plain if span[0] <= plain else hi_ours)

    # -------------------------------------------------------------------- routing

    def _node(self, node_id: int) -> Connection:
        if node_id not in self._nodes:
            host, port = self._addresses[node_id]
            self._nodes[node_id] = Connection(host, port, self.timeout)
        return self._nodes[node_id]

    def metadata(self, topics: list[str] | None, auto_create: bool = False) -> MetadataResponse:
        request = mq.MetadataRequest(
            topics=None if topics is None else [mq.MetadataRequestTopic(name=t) for t in topics],
            allow_auto_topic_creation=auto_create,
        )
        reply = self._bootstrap.call(request, self.version(ApiKey.METADATA), MetadataResponse)
        for broker in reply.brokers:
            self._addresses[broker.node_id] = (broker.host, broker.port)
        return reply

    def partitions(self, topic: str, auto_create: bool = False) -> dict[int, int]:
        """partition -> leader node id; raises WireError if the topic is not there."""
        for t in self.metadata([topic], auto_create).topics:
            if t.name == topic:
                _check(t.error_code, f"Metadata for {topic}")
                return {p.partition_index: p.leader_id for p in t.partitions}
        raise WireError(f"Metadata did not mention {topic}")

    def topic_exists(self, topic: str) -> bool:
        for t in self.metadata([topic]).topics:
            if t.name == topic:
                return t.error_code != ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        return False

    def _leader(self, topic: str, partition: int) -> Connection:
        leader = self.partitions(topic).get(partition)
        if leader is None or leader < 0:
            raise WireError(f"{topic}-{partition} has no leader")
        return self._node(leader)

    # -------------------------------------------------------------------- topics

    def create_topic(self, name: str, partitions: int, configs: dict[str, str]) -> None:
        topic = ct.CreatableTopic(
            name=name,
            num_partitions=partitions,
            replication_factor=-1,
            configs=[ct.CreatableTopicConfig(k, v) for k, v in configs.items()],
        )
        request = ct.CreateTopicsRequest(topics=[topic], timeout_ms=int(self.timeout * 1000))
        version = self.version(ApiKey.CREATE_TOPICS)
        if version < 4:  # -1 (the broker's default) arrived in v4
            topic.replication_factor = 1
        controller = self.metadata([]).controller_id
        conn = self._node(controller) if controller in self._addresses else self._bootstrap
        reply = conn.call(request, version, CreateTopicsResponse)
        for result in reply.topics:
            _check(result.error_code, f"CreateTopics {name} ({result.error_message})")
        self.wait_for_leaders(name, partitions)

    def wait_for_leaders(self, topic: str, partitions: int) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                leaders = self.partitions(topic)
            except WireError:
                leaders = {}
            if len(leaders) >= partitions and all(n >= 0 for n in leaders.values()):
                return
            if time.monotonic() > deadline:
                raise WireError(f"{topic}: {len(leaders)} of {partitions} partitions have leaders")
            time.sleep(0.05)

    # -------------------------------------------------------------------- reading back

    def fetch(
        self, topic: str, partition: int, offset: int = 0, read_committed: bool = False
    ) -> tuple[int, list[FetchedBatch]]:
        """(high watermark, every batch from `offset` on) of one partition, control batches
        included: what the log holds, not what a client chooses to show."""
        conn = self._leader(topic, partition)
        version = self.version(ApiKey.FETCH)
        batches: list[FetchedBatch] = []
        while True:
            part = fq.FetchPartition(partition=partition, fetch_offset=offset)
            part.partition_max_bytes = 8 << 20
            request = fq.FetchRequest(
                max_wait_ms=0,
                min_bytes=0,
                isolation_level=1 if read_committed else 0,
                topics=[fq.FetchTopic(topic=topic, partitions=[part])],
            )
            data = conn.call(request, version, FetchResponse).responses[0].partitions[0]
            _check(data.error_code, f"Fetch {topic}-{partition}@{offset}")
            raw = data.records
            buf = bytes(raw) if isinstance(raw, bytes | bytearray | memoryview) else b""
            try:
                got = [FetchedBatch(*decode_batch(buf, pos)) for pos, _ in iter_batch_headers(buf)]
            except ProtocolError as exc:
                raise WireError(f"Fetch {topic}-{partition}@{offset}: a bad batch: {exc}") from exc
            batches += got
            if not got or got[-1].header.next_offset >= data.high_watermark:
                return data.high_watermark, batches
            offset = got[-1].header.next_offset

    def list_offset(self, topic: str, partition: int, timestamp: int) -> int:
        """ListOffsets: -2 earliest, -1 latest, else the first offset at or after `timestamp`."""
        request = lo.ListOffsetsRequest(
            replica_id=-1,
            topics=[
                lo.ListOffsetsTopic(
                    name=topic,
                    partitions=[
                        lo.ListOffsetsPartition(partition_index=partition, timestamp=timestamp)
                    ],
                )
            ],
        )
        conn = self._leader(topic, partition)
        reply = conn.call(request, self.version(ApiKey.LIST_OFFSETS), ListOffsetsResponse)
        answer = reply.topics[0].partitions[0]
        _check(answer.error_code, f"ListOffsets {topic}-{partition}")
        return answer.offset

    def committed(self, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
        """The offsets `group` committed for `topic` (-1 where none), asked of its coordinator."""
        request = FindCoordinatorRequest(key=group, key_type=0)
        found = self._bootstrap.call(
            request, self.version(ApiKey.FIND_COORDINATOR), FindCoordinatorResponse
        )
        _check(found.error_code, f"FindCoordinator {group}")
        self._addresses.setdefault(found.node_id, (found.host, found.port))
        fetch = of.OffsetFetchRequest(
            group_id=group, topics=[of.OffsetFetchRequestTopic(topic, partitions)]
        )
        reply = self._node(found.node_id).call(
            fetch, self.version(ApiKey.OFFSET_FETCH), OffsetFetchResponse
        )
        _check(reply.error_code, f"OffsetFetch {group}")
        out: dict[int, int] = {}
        for t in reply.topics:
            for p in t.partitions:
                _check(p.error_code, f"OffsetFetch {group} {topic}-{p.partition_index}")
                out[p.partition_index] = p.committed_offset
        return out
