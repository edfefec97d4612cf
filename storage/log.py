"""`Log`: one partition's replica on disk: segments, offsets, leader epochs, flushing.

Theory of operation (Kafka's UnifiedLog + LocalLog, minus producer state and tiering).
Segments are kept by base offset; the last one is active and takes appends. A leader append
stamps offsets into the producer's bytes in place (base offset, partition leader epoch and,
for LogAppendTime topics, the timestamp; only the latter rewrites a CRC), rolls when Kafka's
rule says so, then writes all batches with one pwrite: per batch it reads the 61-byte header
once and never touches a record. Reads return a byte range of one segment for sendfile,
bounded by `max_offset` (the high watermark or last stable offset, exclusive), translated to
a file position. The high watermark is kept here (as Kafka's UnifiedLog does) because
retention and checkpoints need it; the broker moves it.

Durability: appends go to the page cache only. `flush(up_to)` (or a `GroupCommitter`) fsyncs
the segments holding [recovery_point, up_to) and then advances the recovery point, the
offset below which recovery trusts the files. The leader-epoch checkpoint is rewritten by
the same flush when it changed, before the recovery point can pass a new epoch.

Disk errors, a full disk above all. Kafka marks the whole log directory offline on an
IOException; on a single node with one log dir that stops every partition, reads included. We
keep the log consistent instead and fail only what failed. An append that cannot be written
(ENOSPC midway through a batch) is cut back to where it started, so no torn batch is ever served
or left for recovery; a roll whose new segment files cannot be created removes what it created
and the active segment goes on taking appends; an index entry that does not fit is skipped (the
indexes are hints, see `storage/index.py`). The produce gets KAFKA_STORAGE_ERROR for that
partition, no offset moves, reads go on, and appends succeed again once space is freed
(DeleteRecords, retention, a deleted topic, a bigger disk). Only what puts written bytes in doubt
takes a log offline (appends and reads then fail): a failed fsync (the kernel may have dropped
the pages) or a cut-back that itself failed.

File format: a partition directory `<topic>-<partition>` holding segments (see
`storage/segment.py`), `leader-epoch-checkpoint` and `partition.metadata` (see
`storage/checkpoint.py`). Crash handling is the loader's (`storage/loader.py`).

Thread safety: owner thread only (the event loop), except `recovery_point`, `on_flushed`,
`_offline` and `_epochs_unsaved`, which the flush worker reaches under `_lock`.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

from protocol.records import BatchHeader, read_batch_header
from storage.appendbatches import scan_follower_batches, stamp_leader_batches
from storage.checkpoint import LEADER_EPOCH_CHECKPOINT
from storage.config import LogConfig
from storage.epoch import LeaderEpochFileCache
from storage.errors import KafkaStorageError, OffsetOutOfRangeError, RecordBatchTooLargeError
from storage.filecache import FileHandleCache
from storage.flush import FlushPlan, GroupCommitter, NoSpaceForCheckpoint
from storage.fs import FileSystem
from storage.retention import (
    Rule,
    deletable_segments,
    log_start_rule,
    size_rule,
    time_rule,
)
from storage.segment import DELETED_SUFFIX, BatchMeta, LogSegment
from storage.txn_index import AbortedTxn
from storage.types import NO_TIMESTAMP, FetchDataInfo, LogAppendInfo, TimestampAndOffset

_log = logging.getLogger(__name__)

# ListOffsets special timestamps.
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL_TIMESTAMP = -4
LATEST_TIERED_TIMESTAMP = -5


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def partition_dir_name(topic: str, partition: int) -> str:
    return f"{topic}-{partition}"


def _unlink_all(fs: FileSystem, paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            fs.unlink(path)


class Log:
    """A partition's log. Build with `storage.loader.load_log` or `LogManager`.

    Files: the partition directory (segments, `leader-epoch-checkpoint`,
    `partition.metadata`). Threads: owner only, except what the flush worker reaches through
    `on_flushed`/`recovery_point` under a lock. Crash: data past the recovery point is
    re-validated by the loader; a torn tail is cut.
    """

    def __init__(
        self,
        directory: str,
        topic: str,
        partition: int,
        config: LogConfig,
        *,
        fs: FileSystem,
        cache: FileHandleCache,
        committer: GroupCommitter | None = None,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.dir = directory
        self.topic = topic
        self.partition = partition
        self.config = config
        self.fs = fs
        self.cache = cache
        self.committer = committer
        self.clock = clock
        self.topic_id: uuid.UUID | None = None
        self.epochs = LeaderEpochFileCache()
        self._segments: dict[int, LogSegment] = {}
        self._bases: list[int] = []
        self._log_start_offset = 0
        self._next_offset = 0
        self._high_watermark = 0
        self._lock = threading.Lock()
        self._recovery_point = 0
        self._generation = 0  # bumped by truncation: stale flush plans must not apply
        self._offline: str | None = None
        self._epochs_unsaved = False  # a flush could not write the epoch checkpoint
        self._appends_failing = False  # the last append failed on a disk error (logged)
        self._dir_dirty = True  # files created or renamed since the last flush plan
        self.parent_dir_dirty = False  # set by whoever created the directory itself
        self._last_flush_ms = clock()
        # (offset, segment base, position) of the last bound translated; batch positions
        # only change by truncation or segment removal, which clear it.
        self._position_cache: tuple[int, int, int] | None = None

    def __repr__(self) -> str:
        return f"Log({self.topic}-{self.partition}, {self._log_start_offset}..{self._next_offset})"

    # --- segments (used by the loader too) -------------------------------------------------

    def _add_segment(self, segment: LogSegment) -> None:
        if segment.base_offset in self._segments:
            raise ValueError(f"segment {segment.base_offset} already present")
        self._segments[segment.base_offset] = segment
        bisect.insort(self._bases, segment.base_offset)

    def _remove_segment(self, segment: LogSegment) -> None:
        del self._segments[segment.base_offset]
        self._bases.remove(segment.base_offset)
        self._position_cache = None

    @property
    def segments(self) -> list[LogSegment]:
        return [self._segments[b] for b in self._bases]

    def batch_headers(self, from_offset: int = 0) -> Iterator[BatchHeader]:
        """Headers of stored batches ending at or after `from_offset`, in offset order.

        Reads headers only (61 bytes a batch); used to rebuild producer state at start-up.
        Owner thread only.
        """
        bases = self._bases
        for i, base in enumerate(bases):
            if i + 1 < len(bases) and bases[i + 1] <= from_offset:
                continue  # the whole segment ends before from_offset
            for header in self._segments[base].batch_headers():
                if header.last_offset >= from_offset:
                    yield header

    @property
    def active_segment(self) -> LogSegment:
        return self._segments[self._bases[-1]]

    def _floor_index(self, offset: int) -> int:
        return max(bisect.bisect_right(self._bases, offset) - 1, 0)

    def _new_segment(self, base_offset: int) -> LogSegment:
        segment = LogSegment.create(
            self.dir, base_offset, self.config, self.cache, self.fs, self.clock()
        )
        self._dir_dirty = True
        return segment

    # --- offsets ---------------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._next_offset

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @property
    def recovery_point(self) -> int:
        with self._lock:
            return self._recovery_point

    @property
    def size_in_bytes(self) -> int:
        return sum(s.size for s in self._segments.values())

    @property
    def latest_epoch(self) -> int | None:
        return self.epochs.latest_epoch

    @property
    def offline(self) -> bool:
        return self._offline is not None

    def update_high_watermark(self, offset: int) -> int:
        """Set the high watermark, clamped to [log_start_offset, log_end_offset]."""
        self._high_watermark = max(self._log_start_offset, min(offset, self._next_offset))
        return self._high_watermark

    def maybe_increment_high_watermark(self, offset: int) -> bool:
        if offset <= self._high_watermark:
            return False
        self.update_high_watermark(offset)
        return True

    def update_config(self, config: LogConfig) -> None:
        """Apply changed topic configs (segment sizes apply from the next roll)."""
        self.config = config

    def _check_online(self) -> None:
        if self._offline is not None:
            raise KafkaStorageError(f"{self.topic}-{self.partition} is offline: {self._offline}")

    @contextmanager
    def _disk_errors(self, action: str, fatal: bool = False) -> Iterator[None]:
        """OSError -> KafkaStorageError; `fatal` also takes the log offline (state torn)."""
        try:
            yield
        except OSError as exc:
            reason = f"{action} failed: {exc}"
            if fatal:
                self._mark_offline(reason)
            raise KafkaStorageError(f"{self.topic}-{self.partition}: {reason}") from exc

    def _mark_offline(self, reason: str) -> None:
        with self._lock:
            if self._offline is None:
                _log.error("taking %s-%d offline: %s", self.topic, self.partition, reason)
                self._offline = reason

    # --- append ---------------------------------------------------------------------------

    def append_as_leader(
        self,
        records: bytearray | memoryview,
        leader_epoch: int,
        now_ms: int,
        log_append_time: bool | None = None,
    ) -> LogAppendInfo:
        """Assign offsets to already-validated v2 batches and append them.

        `records` must be writable: base offsets, the leader epoch and (LogAppendTime) the
        timestamp are stamped into it in place. `log_append_time` defaults to the topic's
        `message.timestamp.type`. Raises RecordTooLargeError, RecordBatchTooLargeError,
        CorruptRecordError (bytes that do not tile into batches) or KafkaStorageError.
        """
        self._check_online()
        view = memoryview(records)
        if view.readonly:
            raise TypeError("append_as_leader stamps offsets in place: pass a bytearray")
        if log_append_time is None:
            log_append_time = self.config.log_append_time
        first = self._next_offset
        batches = stamp_leader_batches(
            view, first, leader_epoch, now_ms, log_append_time, self.config.max_message_bytes
        )
        info = self._append(view, batches, first, now_ms, log_append_time)
        if leader_epoch >= 0:
            self.epochs.assign(leader_epoch, first)
        self._maybe_flush_by_messages()
        return info

    def append_as_follower(self, records: bytes | bytearray | memoryview) -> LogAppendInfo:
        """Append batches replicated from the leader, keeping their offsets and epochs."""
        self._check_online()
        view = memoryview(records)
        batches, epochs = scan_follower_batches(view, self._next_offset)
        first = read_batch_header(view, 0).base_offset
        info = self._append(view, batches, first, self.clock(), False)
        for epoch, base_offset in epochs:
            latest = self.epochs.latest_epoch
            if latest is None or epoch > latest:
                self.epochs.assign(epoch, base_offset)
        self._maybe_flush_by_messages()
        return info

    def _append(
        self,
        view: memoryview,
        batches: list[BatchMeta],
        first: int,
        now_ms: int,
        log_append_time: bool,
    ) -> LogAppendInfo:
        size = len(view)
        if size > self.config.segment_bytes:
            raise RecordBatchTooLargeError(
                f"append of {size} bytes exceeds segment.bytes {self.config.segment_bytes}"
            )
        max_ts, offset_of_max = max(
            ((b.max_timestamp, b.last_offset) for b in batches), key=lambda t: t[0]
        )
        last = batches[-1].last_offset
        segment = self.active_segment
        rolled = segment.should_roll(size, max_ts, last, self.config, now_ms)
        try:
            if rolled:
                segment = self.roll(expected_next_offset=first)
            segment.append(view, batches)
        except KafkaStorageError as exc:
            if segment.damaged:
                self._mark_offline(f"a failed append could not be undone: {exc}")
            if not self._appends_failing:  # once per episode, not once per produce
                _log.error("%s: appends fail until the disk has room: %s", self, exc)
                self._appends_failing = True
            raise
        if self._appends_failing:
            _log.info("%s: appends work again", self)
            self._appends_failing = False
        self._next_offset = last + 1
        append_time = now_ms if log_append_time else NO_TIMESTAMP
        return LogAppendInfo(
            first, last, max_ts, offset_of_max, append_time, self._log_start_offset,
            size, len(batches), rolled,
        )  # fmt: skip

    def roll(self, expected_next_offset: int | None = None) -> LogSegment:
        """Seal the active segment and start a new one at max(expected, log end offset).

        With a committer, the sealed segments are then flushed in the background (as
        Kafka does), which moves the recovery point to the new segment's base offset.
        """
        new_base = max(expected_next_offset or 0, self._next_offset)
        active = self.active_segment
        if active.base_offset == new_base and active.size == 0:
            return active
        if new_base <= active.base_offset:
            raise ValueError(f"cannot roll to {new_base}: active segment starts at {active}")
        # The steps that need disk space come first and undo themselves on failure: if the
        # disk is full the roll did not happen and the active segment takes appends again.
        with self._disk_errors("segment roll"):
            active.write_final_time_entry()
            segment = self._new_segment(new_base)
        try:
            active.trim_indexes()
        except OSError as exc:  # retried at close; until then the files stay preallocated
            _log.warning("could not trim the indexes of %s: %s", active, exc)
        self._add_segment(segment)
        if self.committer is not None:
            self.committer.flush(self, new_base)  # Kafka flushes the sealed segment async
        return segment

    # --- read -----------------------------------------------------------------------------

    def read(
        self,
        fetch_offset: int,
        max_bytes: int,
        max_offset: int | None = None,
        min_one_message: bool = True,
    ) -> FetchDataInfo:
        """A byte range for sendfile starting at the batch holding `fetch_offset`.

        `max_offset` (exclusive, default log end) is the high watermark for consumers or
        the last stable offset for read_committed. A fetch offset at or past it but not past
        the log end gives an empty result. Raises OffsetOutOfRangeError below the log start
        or above the log end, CorruptSegmentError for a bad stored batch.
        """
        self._check_online()
        if fetch_offset < self._log_start_offset or fetch_offset > self._next_offset:
            raise OffsetOutOfRangeError(fetch_offset, self._log_start_offset, self._next_offset)
        bound = self._next_offset if max_offset is None else min(max_offset, self._next_offset)
        if fetch_offset >= bound:
            return FetchDataInfo.empty(fetch_offset)
        with self._disk_errors("read"):
            bound_base, bound_pos = self._offset_position(bound)
            for i in range(self._floor_index(fetch_offset), len(self._bases)):
                segment = self._segments[self._bases[i]]
                if segment.base_offset > bound_base:
                    break
                max_position = segment.size if segment.base_offset < bound_base else bound_pos
                info = segment.read(fetch_offset, max_bytes, max_position, min_one_message)
                if info is not None:
                    return info
        return FetchDataInfo.empty(fetch_offset)

    def _offset_position(self, offset: int) -> tuple[int, int]:
        """(segment base, file position) of the batch holding `offset`; log end if past."""
        if offset >= self._next_offset:
            active = self.active_segment
            return active.base_offset, active.size
        cached = self._position_cache
        if cached is not None and cached[0] == offset:
            return cached[1], cached[2]
        segment = self._segments[self._bases[self._floor_index(offset)]]
        loc = segment.translate_offset(offset)
        base, position = segment.base_offset, segment.size if loc is None else loc.position
        self._position_cache = (offset, base, position)
        return base, position

    # --- transaction index ----------------------------------------------------------------

    def append_aborted_txn(self, entry: AbortedTxn) -> None:
        """Index an aborted transaction in the segment holding its marker (`last_offset`)."""
        segment = self._segments[self._bases[self._floor_index(entry.last_offset)]]
        with self._disk_errors("transaction index append"):
            segment.txn_index.append(entry)

    def truncate_txn_indexes_from(self, offset: int) -> None:
        """Drop every aborted-transaction entry whose marker is at or above `offset`."""
        with self._disk_errors("transaction index truncation"):
            for base in self._bases[self._floor_index(offset) :]:
                self._segments[base].txn_index.truncate_to(offset)

    def collect_aborted_transactions(
        self, start_offset: int, upper_bound_offset: int
    ) -> list[AbortedTxn]:
        """Aborted transactions with a marker at or after `start_offset` and a first offset
        below `upper_bound_offset`, from the segment holding `start_offset` on, stopping at
        the first segment whose index proves the search complete (Kafka's rule)."""
        found: list[AbortedTxn] = []
        with self._disk_errors("transaction index read"):
            for base in self._bases[self._floor_index(start_offset) :]:
                result = self._segments[base].txn_index.collect(start_offset, upper_bound_offset)
                found += result.aborted
                if result.complete:
                    break
        return found

    def aborted_transactions(self, info: FetchDataInfo) -> list[AbortedTxn]:
        """The aborted transactions a read_committed consumer needs to filter `info`'s batches.

        The upper bound is the offset after the last whole batch in the range (a cut last
        batch is dropped by the client). It costs a header scan of the range, done only when
        the cheap search up to the segment's end found a candidate.
        """
        segment = self._segments.get(info.segment_base_offset)
        if info.length == 0 or segment is None:
            return []
        i = self._bases.index(segment.base_offset)
        loose_bound = self._bases[i + 1] if i + 1 < len(self._bases) else self._next_offset
        found = self.collect_aborted_transactions(info.fetch_offset, loose_bound)
        if not found:
            return found
        with self._disk_errors("read"):
            upper = segment.next_offset_in_range(info.position, info.length)
        return [t for t in found if upper is not None and t.first_offset < upper]

    # --- offsets by time and epoch ---------------------------------------------------------

    def fetch_offset_by_timestamp(self, timestamp: int) -> TimestampAndOffset | None:
        """ListOffsets: -1 latest, -2 earliest, -3 max timestamp, -4 earliest local, else
        the first offset whose record timestamp is >= `timestamp` (None if none is)."""
        if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
            return self.earliest()
        if timestamp == LATEST_TIMESTAMP:
            return self.latest()
        if timestamp == MAX_TIMESTAMP:
            return self.max_timestamp_offset()
        if timestamp == LATEST_TIERED_TIMESTAMP:
            return TimestampAndOffset(NO_TIMESTAMP, -1, -1)
        return self.offset_for_timestamp(timestamp)

    def earliest(self) -> TimestampAndOffset:
        first = self.epochs.earliest_entry
        epoch = first.epoch if first and first.start_offset <= self._log_start_offset else None
        return TimestampAndOffset(NO_TIMESTAMP, self._log_start_offset, epoch)

    def latest(self) -> TimestampAndOffset:
        return TimestampAndOffset(NO_TIMESTAMP, self._next_offset, self.epochs.latest_epoch)

    def offset_for_timestamp(self, timestamp: int) -> TimestampAndOffset | None:
        """First record with timestamp >= `timestamp` at or after the log start offset."""
        self._check_online()
        with self._disk_errors("timestamp lookup"):
            for segment in self.segments:
                if segment.largest_timestamp() >= timestamp:
                    return segment.find_offset_by_timestamp(timestamp, self._log_start_offset)
        return None

    def max_timestamp_offset(self) -> TimestampAndOffset | None:
        """The record with the largest timestamp (first such record), None if no timestamps."""
        self._check_online()
        best: LogSegment | None = None
        for segment in self.segments:
            if best is None or segment.max_timestamp_so_far > best.max_timestamp_so_far:
                best = segment
        if best is None:
            return None
        with self._disk_errors("max timestamp lookup"):
            return best.offset_of_max_timestamp()

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (largest epoch <= requested, its end offset); (-1, -1)."""
        return self.epochs.end_offset_for(epoch, self._next_offset)

    # --- start offset, retention, truncation -----------------------------------------------

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: move the log start offset up to `offset` (<= high watermark) and
        delete whole segments below it. Returns the new log start offset."""
        self._check_online()
        if offset > self._high_watermark:
            raise OffsetOutOfRangeError(offset, self._log_start_offset, self._high_watermark)
        self._increment_log_start_offset(offset)
        self._delete_by(log_start_rule(self._log_start_offset))
        return self._log_start_offset

    def _increment_log_start_offset(self, offset: int) -> None:
        if offset > self._log_start_offset:
            self._log_start_offset = offset
            self._high_watermark = max(self._high_watermark, offset)
            self.epochs.truncate_from_start(offset)

    def delete_old_segments(self, now_ms: int) -> int:
        """Retention (called periodically): log-start, size and time breaches, as Kafka.

        Returns the number of segments deleted. Files are renamed `.deleted` now and
        unlinked after `file.delete.delay.ms` on the committer's thread.
        """
        self._check_online()
        deleted = self._delete_by(log_start_rule(self._log_start_offset))
        if self.config.delete_enabled:
            deleted += self._delete_by(size_rule(self.size_in_bytes, self.config.retention_bytes))
            deleted += self._delete_by(time_rule(now_ms, self.config.retention_ms))
        return deleted

    def _delete_by(self, rule: Rule) -> int:
        doomed = deletable_segments(self.segments, self._high_watermark, self._next_offset, rule)
        with self._disk_errors("segment deletion", fatal=True):
            return self._delete_segments(doomed)

    def _delete_segments(self, deletable: list[LogSegment]) -> int:
        if not deletable:
            return 0
        count = len(deletable)
        if count == len(self._bases):
            new_active = self.roll()
            if deletable[-1] is new_active:
                deletable.pop()
        if deletable:
            after = self._bases[self._bases.index(deletable[-1].base_offset) + 1]
            self._increment_log_start_offset(after)
            for segment in deletable:
                self._remove_segment(segment)
            self._schedule_file_deletion(deletable)
        return count

    def _schedule_file_deletion(self, segments: list[LogSegment]) -> None:
        """Rename now; unlink `file.delete.delay.ms` after the last outstanding read of each
        segment is gone (a fetch response built but not yet sent keeps its bytes)."""
        _log.info("%s-%d: deleting segments %s", self.topic, self.partition, segments)
        for segment in segments:
            paths = segment.rename_with_suffix(DELETED_SUFFIX)
            segment.log.when_unleased(
                partial(self.delete_later, partial(_unlink_all, self.fs, paths))
            )

    def delete_later(self, delete: Callable[[], None]) -> None:
        """Run `delete` after `file.delete.delay.ms` on the committer (any thread may call)."""
        if self.committer is None:
            delete()
            return
        try:
            self.committer.submit_after(self.config.file_delete_delay_ms / 1000, delete)
        except RuntimeError:  # shut down meanwhile: the loader removes the files at start-up
            _log.info("%s: deletion left to the next start", self)

    def when_unleased(self, action: Callable[[], None]) -> None:
        """Run `action` once no read of any current segment is outstanding (thread-safe)."""
        files = [segment.log for segment in self.segments]
        remaining = [len(files)]
        lock = threading.Lock()

        def one_done() -> None:
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                action()

        if not files:
            action()
        for file in files:
            file.when_unleased(one_done)

    def moved_to(self, directory: str) -> None:
        """The partition directory was renamed to `directory` (topic deletion)."""
        self.dir = directory
        for segment in self.segments:
            segment.moved_to(directory)

    def truncate_to(self, offset: int) -> bool:
        """Follower truncation: drop everything from `offset` on. True if anything went."""
        if offset < 0:
            raise ValueError(f"cannot truncate to negative offset {offset}")
        self._check_online()
        with self._disk_errors("truncation", fatal=True):
            return self._truncate_to(offset)

    def _truncate_to(self, offset: int) -> bool:
        if offset >= self._next_offset:
            self.epochs.truncate_from_end(self._next_offset)
            return False
        if self._bases[0] > offset:
            self.truncate_fully_and_start_at(offset)
            return True
        doomed = [s for s in self.segments if s.base_offset > offset]
        for segment in doomed:
            self._remove_segment(segment)
        self._schedule_file_deletion(doomed)
        self.active_segment.truncate_to(offset, self.clock())
        self._after_truncation(offset)
        self.epochs.truncate_from_end(offset)
        self._log_start_offset = min(self._log_start_offset, offset)
        return True

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Delete every segment and restart the log, empty, at `offset`."""
        old = self.segments
        for segment in old:
            self._remove_segment(segment)
        self._schedule_file_deletion(old)  # renames first: the new segment may reuse a name
        self._add_segment(self._new_segment(offset))
        self.epochs.clear()
        self._log_start_offset = offset
        self._after_truncation(offset)

    def _after_truncation(self, offset: int) -> None:
        self._next_offset = offset
        with self._lock:
            self._generation += 1
            self._recovery_point = min(self._recovery_point, offset)
        self._high_watermark = min(self._high_watermark, offset)
        self._position_cache = None

    # --- flush ----------------------------------------------------------------------------

    def flush_plan(self, up_to: int | None = None) -> FlushPlan | None:
        """What must be fsynced to make [recovery_point, up_to) durable; None if nothing."""
        up_to = self._next_offset if up_to is None else min(up_to, self._next_offset)
        start = self.recovery_point
        paths: list[str] = []
        if up_to > start:
            for i in range(self._floor_index(start), len(self._bases)):
                if self._bases[i] >= up_to:
                    break
                paths += self._segments[self._bases[i]].flush_paths()
        with self._lock:
            unsaved, self._epochs_unsaved = self._epochs_unsaved, False
        epochs = tuple(self.epochs.snapshot()) if self.epochs.dirty or unsaved else None
        dirs = [self.dir] if self._dir_dirty else []
        if self.parent_dir_dirty:
            dirs.append(os.path.dirname(self.dir))
        if not paths and epochs is None and not dirs:
            return None
        self._dir_dirty = self.parent_dir_dirty = False
        return FlushPlan(
            up_to=up_to,
            generation=self._generation,
            paths=tuple(paths),
            dir_paths=tuple(dirs),
            epochs=epochs,
            epoch_path=os.path.join(self.dir, LEADER_EPOCH_CHECKPOINT),
        )

    def on_flushed(self, plan: FlushPlan, error: BaseException | None) -> None:
        """Called by whoever ran `plan` (any thread)."""
        if isinstance(error, NoSpaceForCheckpoint):  # a full disk: the next flush retries
            with self._lock:
                self._epochs_unsaved = True
            return
        if error is not None:
            self._mark_offline(f"flush failed: {error}")
            return
        with self._lock:
            if plan.generation == self._generation and plan.up_to > self._recovery_point:
                self._recovery_point = plan.up_to
        self._last_flush_ms = self.clock()

    def flush(self, up_to: int | None = None) -> int:
        """fsync now, on this thread (blocking): use at shutdown, in tests and on workers.

        Returns the recovery point. Raises KafkaStorageError (and takes the log offline)
        if an fsync fails.
        """
        plan = self.flush_plan(up_to)
        if plan is not None:
            try:
                plan.execute(self.fs)
            except OSError as exc:
                self.on_flushed(plan, exc)
                raise KafkaStorageError(f"flush failed: {exc}") from exc
            self.on_flushed(plan, None)
        return self.recovery_point

    def needs_flush(self, now_ms: int) -> bool:
        """`flush.ms` policy: unflushed data older than the interval."""
        unflushed = self._next_offset > self.recovery_point or self.epochs.dirty
        return unflushed and now_ms - self._last_flush_ms >= self.config.flush_interval_ms

    def _maybe_flush_by_messages(self) -> None:
        """`flush.messages` policy, checked after each append."""
        if self._next_offset - self.recovery_point < self.config.flush_interval_messages:
            return
        if self.committer is not None:
            self.committer.flush(self)
        else:
            self.flush()

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Clean close: seal indexes, flush everything, write the epoch checkpoint if needed.

        The checkpoint is rewritten only when it changed or is missing, and the directory is
        fsynced only if files were created or renamed since the last flush: a broker with
        thousands of idle partitions must not pay fsyncs for each at shutdown. Raises
        KafkaStorageError if sealing or flushing failed (descriptors are released anyway).
        """
        try:
            if self._offline is None:
                failure = self._seal_all()
                self.flush()
                self._raise_seal_failure(failure)
        finally:
            self.close_handlers()

    def close_before_syncfs(self) -> FlushPlan | None:
        """First half of a clean close whose caller then syncs the whole filesystem.

        Seals every segment, writes the epoch checkpoint if needed (not fsynced) and releases
        the descriptors. Returns the plan that the filesystem sync makes true: pass it to
        `on_flushed` once `syncfs` succeeded (or `execute` it to fsync file by file). Raises
        KafkaStorageError as `close` does.
        """
        try:
            if self._offline is not None:
                return None
            failure = self._seal_all()
            plan = self.flush_plan()
            if plan is not None:
                with self._disk_errors("epoch checkpoint at close"):
                    plan.execute(self.fs, fsync=False)
            self._raise_seal_failure(failure)
            return plan
        finally:
            self.close_handlers()

    def _seal_all(self) -> OSError | None:
        """Seal every segment (final time entry, trimmed indexes); the first failure."""
        try:  # missing, or the empty placeholder of a new log: write it now
            written = os.stat(os.path.join(self.dir, LEADER_EPOCH_CHECKPOINT)).st_size > 0
        except FileNotFoundError:
            written = False
        if not written:
            self.epochs.dirty = True
        failure: OSError | None = None
        for segment in self.segments:
            try:
                segment.close()
            except OSError as exc:
                failure = failure or exc
        return failure

    def _raise_seal_failure(self, failure: OSError | None) -> None:
        """A sealing failure (a full disk) is raised after the data was made durable, so the
        caller knows the shutdown was not clean but nothing was left unsynced."""
        if failure is not None:
            raise KafkaStorageError(f"{self}: sealing segments failed: {failure}") from failure

    def close_handlers(self) -> None:
        """Release every descriptor without writing (crash simulation, offline dirs)."""
        for segment in self._segments.values():
            segment.close_handlers()
