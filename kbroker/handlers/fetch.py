"""Fetch (key 1), v0-12: record bytes straight from segment files (sendfile), with long-poll.

Reads start at the batch that contains the fetch offset and stop at the high watermark
(read_uncommitted, aborted-transactions list null) or the last stable offset (read_committed,
v4+: the list of aborted transactions overlapping the batches returned, never null, so the
client can drop their records; KIP-98). Long-poll counts only what the isolation level may
read, so a read_committed fetch behind an open transaction waits until its marker.
The first partition that has data may exceed the byte limits by one
batch (KIP-74); after that `max_bytes` is shared across partitions in request order. If fewer
than `min_bytes` are ready the request waits up to `max_wait_ms` for an append to any of its
partitions (Kafka's DelayedFetch). v7+ keep incremental fetch sessions (KIP-227,
kbroker/fetch_session.py). Not above v12: v13+ address topics by id.

v0-3 (clients before Kafka 0.11) read magic 0/1 message sets: the partition's bytes are read into
memory and down-converted (v0-1 to magic 0, v2-3 to magic 1), with the records before the fetch
offset dropped from uncompressed batches, control batches skipped, and a zstd batch answered
UNSUPPORTED_COMPRESSION_TYPE, as Kafka 0.11-3.x did; no sendfile then. The byte limits apply to
the stored bytes. Kafka 4.0 removed Fetch v0-3 (KIP-896); they are served for very old clients.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from kbroker.fetch_session import FetchContext, PartitionState, TopicPartition
from kbroker.handlers import handles
from protocol import legacy
from protocol._codec import FileRegion
from protocol.api_keys import ApiKey
from protocol.error_codes import ErrorCode, KafkaError
from protocol.errors import ProtocolError
from protocol.messages.fetch_request import FetchRequest
from protocol.messages.fetch_response import (
    AbortedTransaction,
    FetchableTopicResponse,
    FetchResponse,
    PartitionData,
)

if TYPE_CHECKING:
    from kbroker.broker import Broker
    from kbroker.context import RequestContext
    from kbroker.partition import Partition
    from storage.types import FetchDataInfo

READ_COMMITTED = 1
SESSIONS_FROM_VERSION = 7
MAGIC_2_FROM_VERSION = 4  # v0-1 read magic 0, v2-3 magic 1


def legacy_magic(version: int) -> int | None:
    """The message format a Fetch version reads, if it is not magic 2."""
    if version >= MAGIC_2_FROM_VERSION:
        return None
    return 0 if version <= 1 else 1


def _down_convert(info: FetchDataInfo, magic: int) -> bytes:
    """The range's batches as a magic 0/1 message set (KafkaError with Kafka's codes)."""
    try:
        return legacy.down_convert(info.read_bytes(), magic, first_offset=info.fetch_offset)
    except legacy.UnsupportedCompressionTypeError as exc:
        raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, str(exc)) from None
    except ProtocolError as exc:  # a stored batch that cannot be expressed in the old format
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, str(exc)) from None


class _Read:
    """One pass over the partitions of a fetch."""

    def __init__(
        self, broker: Broker, request: FetchRequest, context: FetchContext, version: int
    ) -> None:
        self.broker = broker
        self.context = context
        self.magic = legacy_magic(version)
        self.committed = request.isolation_level == READ_COMMITTED
        self.budget = request.max_bytes
        self.total = 0
        self.error = False
        self.partitions: list[Partition] = []
        self.told: list[tuple[PartitionState, tuple[int, int, int]]] = []

    def run(self) -> list[FetchableTopicResponse]:
        topics: dict[str, FetchableTopicResponse] = {}
        for (topic, index), state in self.context.partitions:
            data = self.partition(topic, index, state)
            if data is not None:
                entry = topics.setdefault(topic, FetchableTopicResponse(topic=topic))
                entry.partitions.append(data)
        return list(topics.values())

    def partition(self, topic: str, index: int, state: PartitionState) -> PartitionData | None:
        out = PartitionData(partition_index=index, records=b"")
        try:
            partition = self.broker.partition(topic, index)
            self.partitions.append(partition)
            out.high_watermark = partition.high_watermark
            out.last_stable_offset = partition.last_stable_offset
            out.log_start_offset = partition.log_start_offset
            out.aborted_transactions = [] if self.committed else None
            partition.check_leader_epoch(state.current_leader_epoch)
            limit = min(state.max_bytes, max(self.budget, 0))
            info = partition.read(state.fetch_offset, limit, self.committed, self.total == 0)
            if info.length and self.magic is not None:
                out.records = _down_convert(info, self.magic)
            elif info.length and self.committed:
                out.aborted_transactions = [
                    AbortedTransaction(producer_id=t.producer_id, first_offset=t.first_offset)
                    for t in partition.aborted_transactions(info)
                ]
        except KafkaError as exc:
            self.error = True
            out.error_code = exc.code
            return out
        if info.length:
            if self.magic is None:
                out.records = FileRegion(-1, info.position, info.length, info.open_fd)
            self.total += info.length
            self.budget -= info.length
        return out if self._news(state, out, info.length) else None

    def _news(self, state: PartitionState, out: PartitionData, length: int) -> bool:
        """Whether an incremental response must list this partition."""
        seen = (out.high_watermark, out.last_stable_offset, out.log_start_offset)
        self.told.append((state, seen))
        changed = seen != (state.high_watermark, state.last_stable_offset, state.log_start_offset)
        return not self.context.incremental or length > 0 or changed

    def sent(self) -> None:
        """This pass is the response: remember what the session's client has been told."""
        for state, (hw, lso, log_start) in self.told:
            state.high_watermark, state.last_stable_offset, state.log_start_offset = (
                hw,
                lso,
                log_start,
            )


def _context(ctx: RequestContext, request: FetchRequest) -> FetchContext:
    requested: list[tuple[TopicPartition, PartitionState]] = [
        (
            (topic.topic, p.partition),
            PartitionState(p.fetch_offset, p.partition_max_bytes, p.current_leader_epoch),
        )
        for topic in request.topics
        for p in topic.partitions
    ]
    if ctx.api_version < SESSIONS_FROM_VERSION:
        return FetchContext(None, False, requested)
    forgotten = [(t.topic, p) for t in request.forgotten_topics_data for p in t.partitions]
    return ctx.broker.fetch_sessions.new_context(
        request.session_id, request.session_epoch, requested, forgotten, may_create=True
    )


@handles(ApiKey.FETCH, 0, 12)
async def fetch(ctx: RequestContext, request: FetchRequest) -> FetchResponse:
    try:
        context = _context(ctx, request)
    except KafkaError as exc:  # unknown session or wrong epoch: the client starts over
        return FetchResponse(error_code=exc.code, session_id=0)
    deadline = time.monotonic() + request.max_wait_ms / 1000
    while True:
        read = _Read(ctx.broker, request, context, ctx.api_version)
        topics = read.run()
        remaining = deadline - time.monotonic()
        done = read.total >= request.min_bytes or read.error or not read.partitions
        if done or remaining <= 0:
            read.sent()
            return FetchResponse(session_id=context.session_id, responses=topics)
        waiters = [(p, p.wait_for_data()) for p in read.partitions]
        try:
            await asyncio.wait(
                [w for _, w in waiters], timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for partition, waiter in waiters:
                partition.forget_waiter(waiter)
