"""`LeaderEpochFileCache`: which leader epoch began at which offset (KIP-101, KIP-279).

Theory of operation. Every batch a leader appends is stamped with its leader epoch; the cache
keeps one `(epoch, start_offset)` entry per epoch, the offset of the first batch of that
epoch, with both columns strictly increasing. OffsetForLeaderEpoch answers from it
(`end_offset_for`): the end offset of epoch E is the start offset of the first epoch after E,
or the log end offset when E is the latest epoch. A follower that diverged truncates to that
offset. Appending an entry removes any entry that would break monotonicity (a new leader's
epoch starting at or below an offset an older entry claims), truncation from the end drops
epochs that started at or after the new log end, and advancing the log start offset rewrites
the first surviving entry to start there.

File format: `leader-epoch-checkpoint` in the partition directory, Kafka's text format (see
`storage/checkpoint.py`). The in-memory cache is authoritative while the broker runs; the
file is rewritten (atomically, with fsync) by the owning `Log` as part of a flush, before the
recovery point may move past a new entry, and at close.

Crash: the file may lag the log. Recovery re-derives entries from the `partition_leader_epoch`
of every batch it re-validates (everything after the recovery point) and then truncates the
cache to the recovered log end and log start offset, as Kafka's LogLoader does.

Thread safety: owner thread only (the event loop); `snapshot()` hands an immutable copy to a
writer thread.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable
from typing import NamedTuple

_log = logging.getLogger(__name__)

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


class EpochEntry(NamedTuple):
    epoch: int
    start_offset: int


class LeaderEpochFileCache:
    """Sorted `(epoch, start_offset)` entries with Kafka's assign/truncate/lookup rules.

    File: `leader-epoch-checkpoint` (text: version, count, `epoch offset` lines), written by
    the owning Log's flush. Threads: owner only. Crash: the file may lag; the loader
    re-derives entries from recovered batches and truncates to the log's bounds.
    """

    def __init__(self, entries: Iterable[tuple[int, int]] = ()) -> None:
        self._entries: list[EpochEntry] = []
        self.dirty = False  # changed since the last snapshot() that was persisted
        for epoch, offset in entries:
            self.assign(epoch, offset)
        self.dirty = False

    # --- queries -------------------------------------------------------------------------

    def entries(self) -> list[EpochEntry]:
        return list(self._entries)

    def snapshot(self) -> tuple[EpochEntry, ...]:
        """An immutable copy for a writer thread; clears `dirty`."""
        self.dirty = False
        return tuple(self._entries)

    @property
    def latest_entry(self) -> EpochEntry | None:
        return self._entries[-1] if self._entries else None

    @property
    def latest_epoch(self) -> int | None:
        return self._entries[-1].epoch if self._entries else None

    @property
    def earliest_entry(self) -> EpochEntry | None:
        return self._entries[0] if self._entries else None

    def epoch_for_offset(self, offset: int) -> int | None:
        """The epoch that was current when `offset` was written (None if before any epoch)."""
        starts = [e.start_offset for e in self._entries]
        i = bisect.bisect_right(starts, offset) - 1
        return self._entries[i].epoch if i >= 0 else None

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """`(epoch, end_offset)` for OffsetForLeaderEpoch, as Kafka answers it.

        - undefined epoch (-1), or above every known epoch: (-1, -1);
        - the latest epoch: (epoch, log_end_offset);
        - below the first known epoch: (requested, start offset of the first epoch);
        - otherwise: (largest known epoch <= requested, start of the next known epoch).
        """
        if requested_epoch == UNDEFINED_EPOCH or not self._entries:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if requested_epoch == self._entries[-1].epoch:
            return requested_epoch, log_end_offset
        epochs = [e.epoch for e in self._entries]
        higher = bisect.bisect_right(epochs, requested_epoch)
        if higher == len(epochs):
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if higher == 0:
            return requested_epoch, self._entries[0].start_offset
        return self._entries[higher - 1].epoch, self._entries[higher].start_offset

    # --- updates -------------------------------------------------------------------------

    def assign(self, epoch: int, start_offset: int) -> bool:
        """Record that `epoch` starts at `start_offset`; True if the cache changed."""
        if epoch < 0 or start_offset < 0:
            raise ValueError(f"invalid leader epoch entry ({epoch}, {start_offset})")
        latest = self.latest_entry
        if latest is not None and latest.epoch == epoch and start_offset >= latest.start_offset:
            return False
        removed = 0
        while self._entries and (
            self._entries[-1].epoch >= epoch or self._entries[-1].start_offset >= start_offset
        ):
            self._entries.pop()
            removed += 1
        if removed > 1:
            _log.warning("epoch %d at offset %d replaced %d entries", epoch, start_offset, removed)
        self._entries.append(EpochEntry(epoch, start_offset))
        self.dirty = True
        return True

    def truncate_from_end(self, end_offset: int) -> bool:
        """Drop entries whose start offset is >= `end_offset` (log truncated there)."""
        if end_offset < 0:
            return False
        keep = len(self._entries)
        while keep and self._entries[keep - 1].start_offset >= end_offset:
            keep -= 1
        if keep == len(self._entries):
            return False
        del self._entries[keep:]
        self.dirty = True
        return True

    def truncate_from_start(self, start_offset: int) -> bool:
        """The log now starts at `start_offset`: the epoch current there starts there."""
        drop = 0
        while drop < len(self._entries) and self._entries[drop].start_offset <= start_offset:
            drop += 1
        if drop == 0:
            return False
        kept_epoch = self._entries[drop - 1].epoch
        if drop == 1 and self._entries[0].start_offset == start_offset:
            return False
        self._entries[:drop] = [EpochEntry(kept_epoch, start_offset)]
        self.dirty = True
        return True

    def clear(self) -> None:
        if self._entries:
            self._entries.clear()
            self.dirty = True
