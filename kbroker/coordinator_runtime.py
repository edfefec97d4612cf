"""What the group and transaction coordinators' I/O shells share: routing a key to a partition
of their internal topic as Kafka does, reading a partition back at load, and one asyncio timer
for every shard (Kafka's coordinator-common plays this part for both).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from protocol import records

if TYPE_CHECKING:
    from kbroker.partition import Partition

LOAD_READ_BYTES = 5 * 1024 * 1024


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def java_string_hash(s: str) -> int:
    """Java's String.hashCode (over UTF-16 code units, 32-bit wrap-around)."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(key: str, partitions: int) -> int:
    """The internal-topic partition of a group or transactional id, exactly as Kafka."""
    h = java_string_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % partitions  # Kafka's Utils.abs


def log_batches(partition: Partition) -> Iterator[tuple[bytes, int, records.BatchHeader]]:
    """Every batch of `partition` below its high watermark, in order: (bytes, position in
    them, header). For replaying a coordinator's partition at load."""
    plog = partition.log
    offset, end = plog.log_start_offset, partition.high_watermark
    while offset < end:
        data = plog.read(offset, LOAD_READ_BYTES, end, min_one_message=True).read_bytes()
        if not data:
            return
        for pos, header in records.iter_batch_headers(data):
            offset = header.next_offset
            yield data, pos, header


class TimedShard(Protocol):
    def next_deadline(self) -> int | None: ...


S = TypeVar("S", bound=TimedShard)


class ShardTimer(Generic[S]):
    """One asyncio timer at the earliest deadline of all shards; `fire(shard, now)` runs a due
    shard's timers. After a step only that shard's deadlines moved (`arm(shard)`): the armed
    timer covers the others (if theirs moved later, it fires early, finds nothing due and
    re-arms over all shards)."""

    def __init__(self, shards: Mapping[int, S], fire: Callable[[S, int], None]) -> None:
        self._shards = shards
        self._fire_shard = fire
        self._timer: asyncio.TimerHandle | None = None
        self._at: int | None = None

    def arm(self, changed: S | None = None) -> None:
        shards = [changed] if changed is not None else self._shards.values()
        deadlines = [d for s in shards if (d := s.next_deadline()) is not None]
        if not deadlines:
            return
        deadline = min(deadlines)
        if self._timer is not None and self._at is not None and self._at <= deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        delay = max(deadline - now_ms(), 0) / 1000
        self._at = deadline
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = self._at = None
        now = now_ms()
        for shard in list(self._shards.values()):
            deadline = shard.next_deadline()
            if deadline is not None and deadline <= now:
                self._fire_shard(shard, now)
        self.arm()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._at = None
