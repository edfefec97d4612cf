"""Retention and DeleteRecords deleting segments while a fetch response is being sent.

A client asks for two partitions' oldest segments in one Fetch and reads nothing yet, so the
broker's sendfile of the first region stalls on a full socket and the second region is not
even opened. Then the segments are deleted (DeleteRecords, or size retention) with
`file.delete.delay.ms=0`. The response must still arrive whole and correct: the first region
from its open descriptor, the second reopened under its `.deleted` name, which the response's
lease keeps on disk until the response is gone. After that the files go, a fetch below the new
log start gets OFFSET_OUT_OF_RANGE, and a consumer with auto.offset.reset=earliest goes on from
the new start.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from kbroker.broker import Broker as KBroker
from kbroker.testing import Broker
from protocol import records
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode
from protocol.frames import decode_response, encode_request
from protocol.messages.delete_records_request import (
    DeleteRecordsPartition,
    DeleteRecordsRequest,
    DeleteRecordsTopic,
)
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.fetch_response import FetchResponse
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from protocol.messages.request_header import RequestHeader
from storage.filecache import SegmentFile
from tests.kbroker.wire import WireClient

pytestmark = pytest.mark.clients

MIB = 1 << 20
SEGMENT = 8 * MIB  # far more than a stalled socket holds
RECORD = 100 * 1024
PER_BATCH = 5
TIMEOUT = 10.0
FETCH_VERSION = 12
_topics = iter(range(1_000_000))


@pytest.fixture(scope="module")
def kb() -> Iterator[Broker]:
    with Broker() as b:  # its own broker: retention runs here on demand only
        yield b


def on_broker(kb: Broker, fn: Callable[[KBroker], Any]) -> Any:
    return kb.run(fn).result(TIMEOUT)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def value(partition: int, offset: int) -> bytes:
    return struct.pack(">ii", partition, offset) * (RECORD // 8)


def fill_two_segments(kb: Broker, topic: str) -> None:
    """Each partition: a full first segment, then a little of the second."""
    client = WireClient(kb.bootstrap_servers)
    now = int(time.time() * 1000)  # recent: time retention (7 days) must not take them
    for partition in (0, 1):
        offset = 0
        while offset * RECORD < SEGMENT + MIB:
            rows: list[records.RecordTuple] = [
                (None, value(partition, offset + i), [], now) for i in range(PER_BATCH)
            ]
            request = ProduceRequest(
                acks=1,
                timeout_ms=5000,
                topic_data=[
                    TopicProduceData(
                        name=topic,
                        partition_data=[PartitionProduceData(partition, records.build_batch(rows))],
                    )
                ],
            )
            answer = client.call(request, 9).responses[0].partition_responses[0]
            assert answer.error_code == ErrorCode.NONE and answer.base_offset == offset
            offset += PER_BATCH
    client.close()


class SlowReader:
    """A Fetch sent on a socket with a small receive buffer that is not read until asked."""

    def __init__(self, bootstrap: str) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # before connect
        self.sock.settimeout(TIMEOUT)
        self.sock.connect((host if host != "localhost" else "127.0.0.1", int(port)))

    def send_fetch(self, topic: str, offsets: dict[int, int]) -> None:
        partitions = [
            FetchPartition(p, fetch_offset=o, partition_max_bytes=SEGMENT)
            for p, o in offsets.items()
        ]
        request = FetchRequest(
            max_wait_ms=0,
            min_bytes=1,
            max_bytes=4 * SEGMENT,
            topics=[FetchTopic(topic=topic, partitions=partitions)],
        )
        header = RequestHeader(ApiKey.FETCH, FETCH_VERSION, 1, "slow-reader")
        self.sock.sendall(encode_request(header, request))

    def read_response(self) -> FetchResponse:
        (size,) = struct.unpack(">i", self._exactly(4))
        _, body = decode_response(self._exactly(size), ApiKey.FETCH, FETCH_VERSION)
        assert isinstance(body, FetchResponse)
        return body

    def _exactly(self, n: int) -> bytes:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            chunk = self.sock.recv_into(view[got:])
            if not chunk:
                raise ConnectionError(f"closed by the broker after {got} of {n} bytes")
            got += chunk
        return bytes(buf)

    def close(self) -> None:
        self.sock.close()


def first_segment(kb: Broker, topic: str, partition: int) -> tuple[SegmentFile, int]:
    """The first segment's file and the second segment's base offset."""

    def find(b: KBroker) -> tuple[SegmentFile, int]:
        log = b.logs.get_log(topic, partition)
        assert log is not None and len(log.segments) == 2
        return log.segments[0].log, log.segments[1].base_offset

    result: tuple[SegmentFile, int] = on_broker(kb, find)
    return result


def check_records(partition: int, data: bytes, first: int, last: int) -> None:
    """The bytes hold whole, CRC-valid batches with the values produced at offsets first..last."""
    offsets = []
    for position, header in records.iter_batch_headers(data):
        records.check_batch(data, position)
        _, decoded = records.decode_batch(data[position : position + header.size])
        for record in decoded:
            assert record.value == value(partition, record.offset)
            offsets.append(record.offset)
    assert offsets == list(range(first, last + 1))


def deleted_files(kb: Broker, topic: str) -> list[str]:
    data = Path(kb.data_dir)
    return sorted(str(p.name) for p in data.glob(f"{topic}-*/*.deleted"))


def delete_records(kb: Broker, topic: str, offset: int) -> None:
    client = WireClient(kb.bootstrap_servers)
    partitions = [DeleteRecordsPartition(p, offset) for p in (0, 1)]
    request = DeleteRecordsRequest(
        topics=[DeleteRecordsTopic(name=topic, partitions=partitions)], timeout_ms=5000
    )
    results = client.call(request, 2).topics[0].partitions
    client.close()
    assert [(r.error_code, r.low_watermark) for r in results] == [(0, offset), (0, offset)]


def run_retention(kb: Broker) -> None:
    assert on_broker(kb, lambda b: b.logs.cleanup_logs(int(time.time() * 1000))) == 2


@pytest.mark.parametrize("deletion", ["delete-records", "size-retention"])
def test_segments_deleted_under_a_fetch_in_flight(kb: Broker, deletion: str) -> None:
    topic = f"in-flight-{next(_topics)}"
    configs = {"internal.segment.bytes": str(SEGMENT), "file.delete.delay.ms": "0"}
    if deletion == "size-retention":
        configs["retention.bytes"] = str(RECORD)
    on_broker(kb, lambda b: b.create_topic(topic, 2, configs))
    fill_two_segments(kb, topic)
    first_p0, second = first_segment(kb, topic, 0)
    first_p1, _ = first_segment(kb, topic, 1)

    reader = SlowReader(kb.bootstrap_servers)
    try:
        reader.send_fetch(topic, {0: 0, 1: 0})
        wait_for(lambda: on_broker(kb, lambda b: first_p0.pinned), "p0's sendfile to stall")
        assert not first_p1.pinned  # not being sent yet: its turn comes after partition 0's
        if deletion == "delete-records":
            delete_records(kb, topic, second)
        else:
            run_retention(kb)
        assert len(deleted_files(kb, topic)) == 6  # renamed, kept for the response in flight
        response = reader.read_response()
    finally:
        reader.close()
    (answer,) = response.responses
    assert [p.partition_index for p in answer.partitions] == [0, 1]
    for p in answer.partitions:
        assert p.error_code == ErrorCode.NONE
        assert isinstance(p.records, bytes | bytearray | memoryview)
        check_records(p.partition_index, bytes(p.records), 0, second - 1)
    wait_for(lambda: not deleted_files(kb, topic), "the deleted files to go once sent")

    client = WireClient(kb.bootstrap_servers)
    below = client.call(
        FetchRequest(
            max_wait_ms=0,
            min_bytes=0,
            max_bytes=MIB,
            topics=[
                FetchTopic(
                    topic=topic,
                    partitions=[FetchPartition(0, fetch_offset=0, partition_max_bytes=MIB)],
                )
            ],
        ),
        FETCH_VERSION,
    )
    client.close()
    (gone,) = below.responses[0].partitions
    assert gone.error_code == ErrorCode.OFFSET_OUT_OF_RANGE and gone.log_start_offset == second

    consumer = Consumer(
        {
            "bootstrap.servers": kb.bootstrap_servers,
            "group.id": "in-flight",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 1, 0)])  # below the start: reset to earliest
    messages = consumer.consume(3, TIMEOUT)
    consumer.close()
    assert [m.error() for m in messages] == [None] * 3
    assert [m.offset() for m in messages] == [second, second + 1, second + 2]
    assert [m.value() for m in messages] == [value(1, second + i) for i in range(3)]
