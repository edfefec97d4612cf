"""Fetch (key 1), v4-12: record bytes straight from segment files (sendfile), with long-poll.

Reads start at the batch that contains the fetch offset and stop at the high watermark
(read_uncommitted) or the last stable offset (read_committed, which gets an empty, non-null
aborted-transactions list). The first partition that has data may exceed the byte limits by one
batch (KIP-74); after that `max_bytes` is shared across partitions in request order. If fewer
than `min_bytes` are ready the request waits up to `max_wait_ms` for an append to any of its
partitions (Kafka's DelayedFetch). Fetch sessions (KIP-227) are not kept: every response has
session id 0, which makes clients send full fetches (the Java client's documented fallback).
Not above v12: v13+ address topics by id.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from kbroker.handlers import handles
from protocol._codec import FileRegion
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages.fetch_request import FetchPartition, FetchRequest
from protocol.messages.fetch_response import (
    FetchableTopicResponse,
    FetchResponse,
    PartitionData,
)

if TYPE_CHECKING:
    from kbroker.broker import Broker
    from kbroker.context import RequestContext
    from kbroker.partition import Partition

READ_COMMITTED = 1


class _Read:
    """One pass over the requested partitions."""

    def __init__(self, broker: Broker, request: FetchRequest) -> None:
        self.broker = broker
        self.request = request
        self.committed = request.isolation_level == READ_COMMITTED
        self.budget = request.max_bytes
        self.total = 0
        self.error = False
        self.partitions: list[Partition] = []

    def run(self) -> list[FetchableTopicResponse]:
        return [
            FetchableTopicResponse(
                topic=topic.topic,
                partitions=[self.partition(topic.topic, p) for p in topic.partitions],
            )
            for topic in self.request.topics
        ]

    def partition(self, topic: str, fp: FetchPartition) -> PartitionData:
        try:
            partition = self.broker.partition(topic, fp.partition)
        except KafkaError as exc:
            self.error = True
            return PartitionData(partition_index=fp.partition, error_code=exc.code, records=b"")
        self.partitions.append(partition)
        out = PartitionData(
            partition_index=fp.partition,
            high_watermark=partition.high_watermark,
            last_stable_offset=partition.last_stable_offset,
            log_start_offset=partition.log_start_offset,
            aborted_transactions=[] if self.committed else None,
            records=b"",
        )
        if fp.current_leader_epoch not in (-1, partition.leader_epoch):
            self.error = True
            out.error_code = (
                ErrorCode.FENCED_LEADER_EPOCH
                if fp.current_leader_epoch < partition.leader_epoch
                else ErrorCode.UNKNOWN_LEADER_EPOCH
            )
            return out
        limit = min(fp.partition_max_bytes, max(self.budget, 0))
        try:
            info = partition.read(fp.fetch_offset, limit, self.committed, self.total == 0)
        except KafkaError as exc:
            self.error = True
            out.error_code = exc.code
            return out
        if info.length:
            out.records = FileRegion(-1, info.position, info.length, info.open_fd)
            self.total += info.length
            self.budget -= info.length
        return out


@handles(ApiKey.FETCH, 4, 12)
async def fetch(ctx: RequestContext, request: FetchRequest) -> FetchResponse:
    deadline = time.monotonic() + request.max_wait_ms / 1000
    while True:
        read = _Read(ctx.broker, request)
        topics = read.run()
        remaining = deadline - time.monotonic()
        done = read.total >= request.min_bytes or read.error or not read.partitions
        if done or remaining <= 0:
            return FetchResponse(session_id=0, responses=topics)
        waiters = [(p, p.wait_for_data()) for p in read.partitions]
        try:
            await asyncio.wait(
                [w for _, w in waiters], timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for partition, waiter in waiters:
                partition.forget_waiter(waiter)
