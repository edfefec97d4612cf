"""Protocol hot paths in microseconds per operation: `.venv/bin/python scripts/bench/protocol.py`.

Prints one line per figure. The Produce decode is shown for 16 KiB and 1 MiB batches: its cost
must not grow with batch size (records decode as memoryview slices; no record byte is read).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

import crc32c

# This file is named after what it measures; run as a script, its directory comes first on
# sys.path and would shadow the `protocol` package.
if sys.path and sys.path[0] == str(Path(__file__).resolve().parent):
    del sys.path[0]


from protocol._codec import FileRegion
from protocol.frames import decode_request_header, encode_request, encode_response
from protocol.messages import fetch_response as fr
from protocol.messages import metadata_response as mr
from protocol.messages import produce_request as pr
from protocol.messages.request_header import RequestHeader


def per_op_us(fn: Callable[[], object], min_seconds: float = 0.5) -> float:
    """Best of 5 rounds, each long enough to be measurable."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - start > min_seconds / 5:
            break
        n *= 2
    best = min(_timed(fn, n) for _ in range(5))
    return best / n * 1e6


def _timed(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - start


def produce_frame(batch_size: int, version: int = 9) -> bytes:
    batch = os.urandom(batch_size)  # decode must not look inside: random bytes prove it
    topics = [
        pr.TopicProduceData(
            name="bench-topic",
            partition_data=[pr.PartitionProduceData(index=p, records=batch) for p in range(10)],
        )
    ]
    body = pr.ProduceRequest(transactional_id=None, acks=1, timeout_ms=30000, topic_data=topics)
    return encode_request(RequestHeader(0, version, 1, "bench"), body)[4:]


def decode_produce(frame: bytes) -> None:
    request = decode_request_header(frame)
    body = request.body()
    assert isinstance(body, pr.ProduceRequest)
    for topic in body.topic_data:
        for partition in topic.partition_data:
            assert partition.records is not None


def fetch_response(partitions: int) -> fr.FetchResponse:
    region = FileRegion(fd=0, offset=0, length=1 << 20)
    parts = [
        fr.PartitionData(
            partition_index=p,
            high_watermark=1000,
            last_stable_offset=1000,
            log_start_offset=0,
            records=region,
        )
        for p in range(partitions)
    ]
    return fr.FetchResponse(
        responses=[fr.FetchableTopicResponse(topic="bench-topic", partitions=parts)]
    )


def metadata_response(partitions: int) -> mr.MetadataResponse:
    parts = [
        mr.MetadataResponsePartition(
            partition_index=p,
            leader_id=1,
            leader_epoch=0,
            replica_nodes=[1],
            isr_nodes=[1],
            offline_replicas=[],
        )
        for p in range(partitions)
    ]
    topic = mr.MetadataResponseTopic(name="bench-topic", topic_id=uuid.uuid4(), partitions=parts)
    brokers = [mr.MetadataResponseBroker(node_id=1, host="localhost", port=9092)]
    return mr.MetadataResponse(brokers=brokers, cluster_id="bench", controller_id=1, topics=[topic])


def main() -> None:
    print(f"kbroker protocol benchmark (Python {sys.version.split()[0]})")
    small, large = produce_frame(16 * 1024), produce_frame(1024 * 1024)
    a = per_op_us(lambda: decode_produce(small))
    b = per_op_us(lambda: decode_produce(large))
    print(f"decode Produce v9, 10 partitions x 16 KiB batch : {a:8.1f} us")
    print(
        f"decode Produce v9, 10 partitions x 1 MiB batch  : {b:8.1f} us  (ratio {b / a:.2f}: flat)"
    )
    fetch = fetch_response(100)
    c = per_op_us(lambda: encode_response(1, 12, 1, fetch))
    print(
        f"encode Fetch v12 response header, 100 partitions: {c:8.1f} us"
        "  (records as sendfile regions)"
    )
    meta = metadata_response(1000)
    d = per_op_us(lambda: encode_response(3, 12, 1, meta).getvalue())
    print(f"encode Metadata v12 response, 1,000 partitions  : {d:8.1f} us")
    mib = os.urandom(1 << 20)
    e = per_op_us(lambda: crc32c.crc32c(mib))
    z = per_op_us(lambda: zlib.crc32(mib))
    print(f"CRC-32C (crc32c) of 1 MiB                        : {(1 << 20) / e:8.0f} MB/s")
    print(
        f"baseline: CRC-32 (zlib) of 1 MiB, same run       : {(1 << 20) / z:8.0f} MB/s"
        f"  (crc32c/zlib {z / e:.1f}x)"
    )


if __name__ == "__main__":
    main()
