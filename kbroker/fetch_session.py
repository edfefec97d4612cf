"""Incremental fetch sessions (KIP-227, Fetch v7+): Kafka's FetchManager, for one broker.

Theory of operation. A fetch with epoch 0 is a full fetch that opens a session: the response
carries its id, and the broker remembers the partitions and what it last told the client about
each (high watermark, last stable offset, log start offset). The client then sends only
partitions whose fetch state changed (epoch 1, 2, ...; after 2**31-1 comes 1), plus
`forgotten_topics_data` to drop some, and the response lists only partitions with something new:
records, an error, or a changed watermark. Epoch -1 is a sessionless full fetch and closes the
session named, if any. An unknown session id answers FETCH_SESSION_ID_NOT_FOUND and a wrong epoch
INVALID_FETCH_SESSION_EPOCH; the client then falls back to a full fetch. When the cache is full
the least recently used session is evicted (Kafka prefers evicting small, idle ones; a fixed cap
with LRU keeps the bound without that bookkeeping).

Owned by the event loop; no I/O.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass, field

from protocol.error_codes import ErrorCode, KafkaError

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
MAX_SESSIONS = 1000  # Kafka's max.incremental.fetch.session.cache.slots

TopicPartition = tuple[str, int]


def next_epoch(epoch: int) -> int:
    return 1 if epoch >= 2**31 - 1 else epoch + 1


@dataclass
class PartitionState:
    """What the client asks for, and what it was last told."""

    fetch_offset: int
    max_bytes: int
    current_leader_epoch: int
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1


@dataclass
class FetchSession:
    session_id: int
    epoch: int  # the epoch the next request must carry
    partitions: dict[TopicPartition, PartitionState] = field(default_factory=dict)


@dataclass
class FetchContext:
    """What to read for one request and how to shape its response."""

    session: FetchSession | None  # None: sessionless
    incremental: bool
    partitions: list[tuple[TopicPartition, PartitionState]]

    @property
    def session_id(self) -> int:
        return self.session.session_id if self.session else INVALID_SESSION_ID


class FetchSessionCache:
    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self.max_sessions = max_sessions
        self.sessions: OrderedDict[int, FetchSession] = OrderedDict()
        self._rng = random.Random()

    def _new_id(self) -> int:
        while True:
            candidate = self._rng.randint(1, 2**31 - 1)
            if candidate not in self.sessions:
                return candidate

    def new_context(
        self,
        session_id: int,
        epoch: int,
        requested: list[tuple[TopicPartition, PartitionState]],
        forgotten: list[TopicPartition],
        may_create: bool,
    ) -> FetchContext:
        """Raises KafkaError(FETCH_SESSION_ID_NOT_FOUND / INVALID_FETCH_SESSION_EPOCH)."""
        if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
            self.sessions.pop(session_id, None)
            if epoch == FINAL_EPOCH or not may_create:
                return FetchContext(None, False, requested)
            created = FetchSession(self._new_id(), next_epoch(INITIAL_EPOCH), dict(requested))
            self.sessions[created.session_id] = created
            while len(self.sessions) > self.max_sessions:
                self.sessions.popitem(last=False)
            return FetchContext(created, False, list(created.partitions.items()))
        session = self.sessions.get(session_id)
        if session is None:
            raise KafkaError(ErrorCode.FETCH_SESSION_ID_NOT_FOUND)
        if epoch != session.epoch:
            raise KafkaError(ErrorCode.INVALID_FETCH_SESSION_EPOCH)
        self.sessions.move_to_end(session_id)
        for tp in forgotten:
            session.partitions.pop(tp, None)
        for tp, state in requested:
            cached = session.partitions.get(tp)
            if cached is None:
                session.partitions[tp] = state
            else:  # the client's new position; keep what it was last told
                cached.fetch_offset = state.fetch_offset
                cached.max_bytes = state.max_bytes
                cached.current_leader_epoch = state.current_leader_epoch
        session.epoch = next_epoch(epoch)
        return FetchContext(session, True, list(session.partitions.items()))

    def close(self, session_id: int) -> None:
        self.sessions.pop(session_id, None)
