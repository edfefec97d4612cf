"""`LogSegment`: one `.log` file with its `.index`, `.timeindex` and (lazily) `.txnindex`.

File format: `<base_offset:020d>.log` holds record batches (magic 2) exactly as appended:
offsets stamped, otherwise the bytes the producer or leader sent, back to back, never
decoded. The indexes are described in `storage/index.py`, the transaction index (aborted
transactions whose ABORT marker is in this segment; created on the first one) in
`storage/txn_index.py`.

Theory of operation. Appends write whole batches with one `pwrite` at the tracked size (no
fsync) and add an index entry every `index.interval.bytes`. A read finds the batch holding an
offset by an index lookup and a header scan, and returns a byte range for sendfile.

Sealed-segment corruption. Batches were checked when appended, and recovery re-checks what
was written after the recovery point, but a segment *loaded* without recovery (sealed
segments, and all segments after a clean shutdown) may have rotted on disk since. Such a
segment starts untrusted: before a byte range of it is served for the first time, every
complete batch in that range is read and its CRC and framing checked (`check_batch`), plus
offset sanity (base offsets rise and stay within the segment's relative-offset range). Good
ranges are remembered (`_Ranges`), so each byte is checked once per process and later reads
of it are zero-copy. A bad batch is never served: a read that starts at it raises
`CorruptSegmentError` (the broker answers KAFKA_STORAGE_ERROR), a read that reaches it is cut
just before it. This costs one extra read and a CRC (tens of GB/s) per byte of cold data,
instead of a full scan of every segment at start-up or trust in bits that may have flipped.
A partial trailing batch (cut by max_bytes) is left unchecked; clients discard it anyway.

Crash: the file may end in a torn batch and the indexes may lag; `recover()` re-validates
every batch, truncates the invalid tail and rebuilds both indexes (Kafka's LogSegment.recover).

Thread safety: owner thread only. `flush_paths()` lists files a worker may fsync by path.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import random
import struct
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from protocol.errors import ProtocolError
from protocol.records import (
    LOG_OVERHEAD,
    MIN_BATCH_LENGTH,
    RECORD_BATCH_OVERHEAD,
    BatchHeader,
    TimestampType,
    check_batch,
    decode_batch,
)
from storage.config import LogConfig
from storage.epoch import LeaderEpochFileCache
from storage.errors import CorruptIndexError, CorruptSegmentError, KafkaStorageError
from storage.filecache import FileHandleCache, SegmentFile
from storage.fs import FileSystem
from storage.index import OffsetIndex, TimeIndex
from storage.scan import iter_file_batches, iter_file_headers
from storage.txn_index import TXN_INDEX_SUFFIX, TransactionIndex
from storage.types import FetchDataInfo, TimestampAndOffset

_log = logging.getLogger(__name__)

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
DELETED_SUFFIX = ".deleted"
_INT32_MAX = 2**31 - 1
_INT32 = struct.Struct(">i")


def segment_file_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


class BatchMeta(NamedTuple):
    """What indexing needs from one batch of an append (computed once by the Log)."""

    size: int
    last_offset: int
    max_timestamp: int


class BatchLocation(NamedTuple):
    position: int
    header: BatchHeader


class _Ranges:
    """Disjoint, merged [start, end) byte ranges known to hold valid batches."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def covers(self, start: int, end: int) -> bool:
        i = bisect.bisect_right(self.starts, start) - 1
        return i >= 0 and self.ends[i] >= end

    def add(self, start: int, end: int) -> None:
        if end <= start:
            return
        lo = bisect.bisect_left(self.ends, start)
        hi = bisect.bisect_right(self.starts, end)
        if lo < hi:
            start = min(start, self.starts[lo])
            end = max(end, self.ends[hi - 1])
        self.starts[lo:hi] = [start]
        self.ends[lo:hi] = [end]

    def clip(self, size: int) -> None:
        while self.starts and self.starts[-1] >= size:
            self.starts.pop()
            self.ends.pop()
        if self.ends and self.ends[-1] > size:
            self.ends[-1] = size


class LogSegment:
    """One segment: append, locate, read, search by time, recover, truncate, seal.

    Files: `<base:020d>.log` (batches back to back, as appended), `.index`, `.timeindex`.
    Threads: owner only. Crash: the `.log` may end in a torn batch and the indexes may lag;
    `recover()` cuts the tail and rebuilds them. Loaded without recovery it is untrusted and
    checks each byte range before first serving it.
    """

    def __init__(
        self,
        directory: str,
        base_offset: int,
        config: LogConfig,
        cache: FileHandleCache,
        fs: FileSystem,
        now_ms: int,
    ) -> None:
        self.dir = directory
        self.base_offset = base_offset
        self.fs = fs
        self.log = SegmentFile(cache, fs, self._path(LOG_SUFFIX))
        size = config.segment_index_bytes
        self.offset_index = OffsetIndex(self._path(INDEX_SUFFIX), base_offset, size, cache, fs)
        self.time_index = TimeIndex(self._path(TIME_INDEX_SUFFIX), base_offset, size, cache, fs)
        self.txn_index = TransactionIndex(self._path(TXN_INDEX_SUFFIX), base_offset, fs)
        self.index_interval_bytes = config.index_interval_bytes
        jitter = config.segment_jitter_ms
        self.roll_jitter_ms = random.randrange(min(jitter, config.segment_ms)) if jitter else 0
        self.size = 0
        self.created_ms = now_ms
        self.bytes_since_last_index_entry = 0
        self.max_timestamp_so_far = -1
        self.offset_of_max_timestamp_so_far = base_offset
        self._rolling_timestamp: int | None = None
        self.damaged = False  # a failed write could not be undone
        self.trusted = True  # every byte was checked by this process (else see _verified)
        self._verified = _Ranges()

    def _path(self, suffix: str) -> str:
        return os.path.join(self.dir, segment_file_name(self.base_offset, suffix))

    def __repr__(self) -> str:
        return f"LogSegment(base_offset={self.base_offset}, size={self.size})"

    # --- creation and loading --------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: str,
        base_offset: int,
        config: LogConfig,
        cache: FileHandleCache,
        fs: FileSystem,
        now_ms: int,
    ) -> LogSegment:
        """A new, empty, active segment (an existing file of that name is emptied).

        If a file cannot be created (a full disk, no inodes) the ones already created are
        removed again and the OSError is raised: a failed roll leaves no trace.
        """
        seg = cls(directory, base_offset, config, cache, fs, now_ms)
        try:
            fd = fs.open(seg.log.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
            fs.close(fd)
            seg.offset_index.create()
            seg.time_index.create()
            seg.txn_index.reset()  # a stale index of an earlier segment of that name
        except OSError:
            seg.close_handlers()
            for path in seg.flush_paths():
                with contextlib.suppress(FileNotFoundError):
                    fs.unlink(path)
            raise
        return seg

    @classmethod
    def open_existing(
        cls,
        directory: str,
        base_offset: int,
        config: LogConfig,
        cache: FileHandleCache,
        fs: FileSystem,
        now_ms: int,
    ) -> LogSegment:
        """Adopt files from disk, untrusted. Missing index files are left for the loader."""
        seg = cls(directory, base_offset, config, cache, fs, now_ms)
        seg.size = os.path.getsize(seg.log.path)
        seg.trusted = False
        for index in (seg.offset_index, seg.time_index):
            if os.path.exists(index.path):
                index.load(writable=False)
        seg.max_timestamp_so_far, seg.offset_of_max_timestamp_so_far = seg.time_index.last_entry
        return seg

    def indexes_exist(self) -> bool:
        return os.path.exists(self.offset_index.path) and os.path.exists(self.time_index.path)

    def sanity_check(self) -> None:
        """Cheap checks of both indexes against the log (raises CorruptIndexError).

        Beyond Kafka's checks, the last offset index entry must point at a batch that ends
        at the indexed offset.
        """
        self.time_index.sanity_check()
        last = self.offset_index.sanity_check(self.size)
        if last is None:
            return
        try:
            loc = self.translate_offset(last.offset, last.position)
        except CorruptSegmentError as exc:
            raise CorruptIndexError(str(exc)) from None
        if loc is None or loc.position != last.position or loc.header.last_offset != last.offset:
            raise CorruptIndexError(f"{self.offset_index.path}: last entry does not match log")

    # --- append ------------------------------------------------------------------------

    def append(self, data: memoryview, batches: Sequence[BatchMeta]) -> None:
        """Write whole batches at the end; on an I/O error cut the file back and raise."""
        if not batches:
            return
        start = self.size
        if not self.offset_index.can_append_offset(batches[-1].last_offset):
            raise ValueError(f"offset {batches[-1].last_offset} overflows segment {self}")
        try:
            with self.log.use() as fd:
                self._write_or_undo(fd, data, start)
        except OSError as exc:
            raise KafkaStorageError(f"append to {self.log.path} failed: {exc}") from exc
        self.size = start + len(data)
        if not self.trusted:
            self._verified.add(start, self.size)
        if start == 0 and self._rolling_timestamp is None:
            self._rolling_timestamp = batches[0].max_timestamp
        self._index_batches(batches, start)

    def _write_or_undo(self, fd: int, data: memoryview, start: int) -> None:
        """Write at `start`; after a failure cut the file back so the log stays whole.

        If even the cut fails the tail holds a partial batch: `damaged` is set and the
        owning log goes offline (recovery at the next start repairs it).
        """
        try:
            self.fs.write_all(fd, data, start)
        except OSError:
            try:
                self.fs.ftruncate(fd, start)
            except OSError:
                self.damaged = True
            raise

    def _index_batches(self, batches: Sequence[BatchMeta], position: int) -> None:
        for batch in batches:
            if batch.max_timestamp > self.max_timestamp_so_far:
                self.max_timestamp_so_far = batch.max_timestamp
                self.offset_of_max_timestamp_so_far = batch.last_offset
            if self.bytes_since_last_index_entry > self.index_interval_bytes:
                self._add_index_entries(batch.last_offset, position)
            position += batch.size
            self.bytes_since_last_index_entry += batch.size

    def _add_index_entries(self, last_offset: int, position: int) -> None:
        """One entry in each index; on a disk error skip them (the batch is already written).

        The indexes are hints: a missing entry costs a longer header scan, never a wrong
        answer, and recovery rebuilds them anyway.
        """
        try:
            self.offset_index.append(last_offset, position)
            self.time_index.maybe_append(
                self.max_timestamp_so_far, self.offset_of_max_timestamp_so_far
            )
        except OSError as exc:
            _log.warning("no index entry for %s at byte %d: %s", self.log.path, position, exc)
        self.bytes_since_last_index_entry = 0

    def should_roll(
        self,
        messages_size: int,
        max_timestamp: int,
        last_offset: int,
        config: LogConfig,
        now_ms: int,
    ) -> bool:
        """Kafka's roll rule: size, age, a full index, or relative-offset overflow."""
        if self.size > config.segment_bytes - messages_size:
            return True
        if self.size > 0 and self.time_waited_for_roll(now_ms, max_timestamp) > (
            config.segment_ms - self.roll_jitter_ms
        ):
            return True
        return (
            self.offset_index.is_full
            or self.time_index.is_full
            or not self.offset_index.can_append_offset(last_offset)
        )

    def time_waited_for_roll(self, now_ms: int, message_timestamp: int) -> int:
        """Age by record time when the first batch has a timestamp, else by wall clock."""
        first = self.first_batch_timestamp()
        if first is not None and first >= 0:
            return message_timestamp - first
        return now_ms - self.created_ms

    def first_batch_timestamp(self) -> int | None:
        if self._rolling_timestamp is None and self.size > 0:
            with self.log.use() as fd:
                for _, header in iter_file_headers(self.fs, fd, 0, self.size):
                    self._rolling_timestamp = header.max_timestamp
                    break
        return self._rolling_timestamp

    # --- locate and read -----------------------------------------------------------------

    def translate_offset(self, offset: int, start_position: int = 0) -> BatchLocation | None:
        """The batch holding `offset` (its last offset >= `offset`), or None past the end."""
        mapping = self.offset_index.lookup(offset)
        position = max(mapping.position, start_position)
        with self.log.use() as fd:
            try:
                headers = iter_file_headers(self.fs, fd, position, self.size, strict=True)
                for pos, header in headers:
                    if header.base_offset + header.last_offset_delta >= offset:
                        return BatchLocation(pos, header)
            except ProtocolError as exc:
                raise CorruptSegmentError(self.log.path, position, str(exc)) from None
        return None

    def read(
        self, start_offset: int, max_size: int, max_position: int, min_one_message: bool
    ) -> FetchDataInfo | None:
        """Bytes from the batch holding `start_offset`; None if no batch here holds it."""
        loc = self.translate_offset(start_offset)
        if loc is None:
            return None
        position, first_size = loc.position, loc.header.batch_length + LOG_OVERHEAD
        limit = max(max_size, first_size) if min_one_message else max_size
        length = min(max_position - position, limit)
        if length <= 0:
            return FetchDataInfo.empty(start_offset)
        if length < first_size and length == limit:
            return FetchDataInfo.empty(start_offset, incomplete=True)
        if not self.trusted and not self._verified.covers(position, position + length):
            length = self._verify(position, length)
        return FetchDataInfo(start_offset, self.base_offset, position, length, self.log)

    def _verify(self, position: int, length: int) -> int:
        """Check the complete batches of a range; returns the length that may be served."""
        end = position + length
        checked = position
        prev_last = self.base_offset - 1
        with self.log.use() as fd:
            try:
                for pos, view, header in iter_file_batches(self.fs, fd, position, end):
                    checked = pos
                    check_batch(view)
                    self._check_offsets(header, prev_last)
                    prev_last = header.base_offset + header.last_offset_delta
                    checked = pos + len(view)
                if checked < end:
                    self._check_partial_tail(fd, checked)
            except (ProtocolError, ValueError) as exc:
                _log.error("corrupt batch in %s at byte %d: %s", self.log.path, checked, exc)
                self._verified.add(position, checked)
                if checked == position:
                    raise CorruptSegmentError(self.log.path, checked, str(exc)) from None
                return checked - position
        self._verified.add(position, checked)
        return length

    def _check_partial_tail(self, fd: int, position: int) -> None:
        """A batch cut by max_bytes is served unchecked, but must at least fit the file."""
        raw = self.fs.pread(fd, RECORD_BATCH_OVERHEAD, position)
        if len(raw) < LOG_OVERHEAD:
            raise ValueError(f"{len(raw)} stray bytes at the end of the segment")
        (length,) = _INT32.unpack_from(raw, 8)
        if length < MIN_BATCH_LENGTH or position + length + LOG_OVERHEAD > self.size:
            raise ValueError(f"batch length {length} at {position} overruns the segment")

    def _check_offsets(self, header: BatchHeader, prev_last: int) -> None:
        last = header.base_offset + header.last_offset_delta
        if header.base_offset <= prev_last or header.last_offset_delta < 0:
            raise ValueError(f"batch offset {header.base_offset} does not follow {prev_last}")
        if not 0 <= last - self.base_offset <= _INT32_MAX:
            raise ValueError(f"batch offset {last} outside segment {self.base_offset}")

    # --- timestamps ----------------------------------------------------------------------

    def find_offset_by_timestamp(
        self, timestamp: int, starting_offset: int
    ) -> TimestampAndOffset | None:
        """First record with timestamp >= `timestamp` and offset >= `starting_offset`."""
        entry = self.time_index.lookup(timestamp)
        position = self.offset_index.lookup(max(entry.offset, starting_offset)).position
        for pos, header in self._headers_from(position):
            if header.max_timestamp < timestamp:
                continue
            if header.base_offset + header.last_offset_delta < starting_offset:
                continue
            found = self._search_batch(pos, header, timestamp, starting_offset)
            if found is not None:
                return found
        return None

    def offset_of_max_timestamp(self) -> TimestampAndOffset | None:
        """The first record carrying this segment's largest timestamp (ListOffsets -3)."""
        ts = self.max_timestamp_so_far
        if ts < 0:
            return None
        position = self.offset_index.lookup(self.offset_of_max_timestamp_so_far).position
        for pos, header in self._headers_from(position):
            if header.max_timestamp == ts:
                return self._search_batch(pos, header, ts, header.base_offset)
        return None

    def batch_headers(self) -> Iterator[BatchHeader]:
        """Every batch header of the segment in file order (the file pinned while iterating)."""
        for _, header in self._headers_from(0):
            yield header

    def locations_from(self, position: int = 0) -> Iterator[BatchLocation]:
        """Every batch from `position` on, with its position (the file pinned meanwhile)."""
        for pos, header in self._headers_from(position):
            yield BatchLocation(pos, header)

    def read_batch(self, position: int, header: BatchHeader) -> bytes:
        """The bytes of the batch at `position` (a marker's control record, at recovery)."""
        with self.log.use() as fd:
            return self.fs.pread(fd, header.size, position)

    def next_offset_in_range(self, position: int, length: int) -> int | None:
        """The offset after the last whole batch in `[position, position + length)`, None if
        no batch fits (the upper bound of a fetch's aborted-transaction search)."""
        next_offset = None
        with self.log.use() as fd:
            for _, header in iter_file_headers(self.fs, fd, position, position + length):
                next_offset = header.next_offset
        return next_offset

    def _headers_from(self, position: int) -> Iterator[tuple[int, BatchHeader]]:
        """Headers from `position` to the end, the file pinned while iterating."""
        with self.log.use() as fd:
            try:
                yield from iter_file_headers(self.fs, fd, position, self.size, strict=True)
            except ProtocolError as exc:
                raise CorruptSegmentError(self.log.path, position, str(exc)) from None

    def _search_batch(
        self, pos: int, header: BatchHeader, timestamp: int, starting_offset: int
    ) -> TimestampAndOffset | None:
        epoch = header.partition_leader_epoch if header.partition_leader_epoch >= 0 else None
        if header.timestamp_type == TimestampType.LOG_APPEND_TIME or header.records_count == 0:
            offset = max(header.base_offset, starting_offset)
            return TimestampAndOffset(header.max_timestamp, offset, epoch)
        with self.log.use() as fd:
            data = self.fs.pread(fd, header.batch_length + LOG_OVERHEAD, pos)
        try:
            _, records = decode_batch(data)
        except ProtocolError as exc:
            raise CorruptSegmentError(self.log.path, pos, str(exc)) from None
        for record in records:
            if record.timestamp >= timestamp and record.offset >= starting_offset:
                return TimestampAndOffset(record.timestamp, record.offset, epoch)
        return None

    def largest_timestamp(self) -> int:
        """Max record timestamp, or the file's mtime when no batch has one (retention)."""
        if self.max_timestamp_so_far >= 0:
            return self.max_timestamp_so_far
        return int(os.path.getmtime(self.log.path) * 1000)

    # --- recovery and truncation ---------------------------------------------------------

    def recover(self, epochs: LeaderEpochFileCache | None) -> int:
        """Re-validate every batch, rebuild both indexes, cut an invalid tail.

        Returns the number of bytes truncated. Leader epochs seen are assigned to `epochs`.
        Indexes end up trimmed (sealed); the loader makes the last segment's writable.
        """
        self.offset_index.create()
        self.time_index.create()
        self.max_timestamp_so_far, self.offset_of_max_timestamp_so_far = -1, self.base_offset
        valid = last_entry = 0
        file_size = os.path.getsize(self.log.path)
        with self.log.use() as fd:
            try:
                for pos, view, header in iter_file_batches(self.fs, fd, 0, file_size):
                    check_batch(view)
                    self._recover_batch(header, pos, pos - last_entry)
                    if pos - last_entry > self.index_interval_bytes:
                        last_entry = pos
                    valid = pos + len(view)
                    _assign_epoch(epochs, header)
            except (ProtocolError, ValueError) as exc:
                _log.warning("invalid batch in %s at byte %d: %s", self.log.path, valid, exc)
            if file_size > valid:
                self.fs.ftruncate(fd, valid)
        self.size = valid
        self.trusted, self._verified = True, _Ranges()
        self._rolling_timestamp = None
        self.bytes_since_last_index_entry = valid - last_entry
        try:
            self.write_final_time_entry()
        except OSError as exc:  # a full disk must not stop the broker from starting
            _log.warning("no final time index entry for %s: %s", self.log.path, exc)
        self.trim_indexes()
        return file_size - valid

    def _recover_batch(self, header: BatchHeader, position: int, since_entry: int) -> None:
        last = header.base_offset + header.last_offset_delta
        if not self.offset_index.can_append_offset(last):
            raise ValueError(f"batch offset {last} overflows segment {self.base_offset}")
        if header.max_timestamp > self.max_timestamp_so_far:
            self.max_timestamp_so_far = header.max_timestamp
            self.offset_of_max_timestamp_so_far = last
        if since_entry > self.index_interval_bytes:
            self._add_index_entries(last, position)

    def read_next_offset(self) -> tuple[int, bool]:
        """(offset after the last batch, whether the file ends exactly at a batch end)."""
        position = self.offset_index.lookup(self.offset_index.last_offset).position
        next_offset, end = self.base_offset, position
        with self.log.use() as fd:
            try:
                for pos, header in iter_file_headers(self.fs, fd, position, self.size):
                    next_offset = header.base_offset + header.last_offset_delta + 1
                    end = pos + header.batch_length + LOG_OVERHEAD
            except ProtocolError:
                return next_offset, False
        if position == 0 and end == 0:
            return self.base_offset, self.size == 0
        return next_offset, end == self.size

    def truncate_to(self, offset: int, now_ms: int) -> int:
        """Drop batches from the one holding `offset` on; the segment becomes active."""
        loc = self.translate_offset(offset)
        self.offset_index.truncate_to(offset)
        self.time_index.truncate_to(offset)
        self.txn_index.truncate_to(offset)
        self.offset_index.make_writable()
        self.time_index.make_writable()
        truncated = 0
        if loc is not None:
            with self.log.use() as fd:
                self.fs.ftruncate(fd, loc.position)
            truncated = self.size - loc.position
            self.size = loc.position
        if self.size == 0:
            self.created_ms = now_ms
            self._rolling_timestamp = None
        self._verified.clip(self.size)
        self.bytes_since_last_index_entry = 0
        self._reload_max_timestamp()
        return truncated

    def _reload_max_timestamp(self) -> None:
        last = self.time_index.last_entry
        self.max_timestamp_so_far, self.offset_of_max_timestamp_so_far = last
        position = self.offset_index.lookup(last.offset).position
        for _, header in self._headers_from(position):
            if header.max_timestamp > self.max_timestamp_so_far:
                self.max_timestamp_so_far = header.max_timestamp
                self.offset_of_max_timestamp_so_far = header.base_offset + header.last_offset_delta

    # --- sealing, closing, files -----------------------------------------------------------

    def on_become_inactive(self) -> None:
        """Sealed by a roll: final time index entry, indexes trimmed to their entries."""
        self.write_final_time_entry()
        self.trim_indexes()

    def write_final_time_entry(self) -> None:
        """The time index entry of the largest timestamp, which a reload reads back as
        `max_timestamp_so_far` (retention and ListOffsets rely on it). Raises OSError if the
        disk has no room for it; nothing changes then."""
        self.time_index.maybe_append(
            self.max_timestamp_so_far, self.offset_of_max_timestamp_so_far, skip_full_check=True
        )

    def trim_indexes(self) -> None:
        self.offset_index.trim()
        self.time_index.trim()

    def make_active(self) -> None:
        """Reopen the indexes for appends (the loader's last segment)."""
        self.offset_index.make_writable()
        self.time_index.make_writable()

    def close(self) -> None:
        """Clean close: seal the indexes (trimmed, final time entry) and drop descriptors.

        Raises OSError if sealing failed; the descriptors are dropped anyway.
        """
        try:
            if self.offset_index.writable:
                self.on_become_inactive()
        finally:
            self.close_handlers()

    def close_handlers(self) -> None:
        """Drop descriptors and maps without writing anything (crash-like close)."""
        self.offset_index.close()
        self.time_index.close()
        self.log.close()

    def moved_to(self, directory: str) -> None:
        """The partition directory was renamed (topic deletion): follow it, retired."""
        self.log.retire()
        self.close_handlers()
        self.dir = directory
        self.log.path = self._path(LOG_SUFFIX)
        self.offset_index.relocate(self._path(INDEX_SUFFIX))
        self.time_index.relocate(self._path(TIME_INDEX_SUFFIX))
        self.txn_index.relocate(self._path(TXN_INDEX_SUFFIX))

    def flush_paths(self) -> tuple[str, ...]:
        paths = self.log.path, self.offset_index.path, self.time_index.path
        return (*paths, self.txn_index.path) if self.txn_index.exists() else paths

    def rename_with_suffix(self, suffix: str) -> list[str]:
        """Rename all three files to `<name><suffix>` (e.g. `.deleted`); returns new paths.

        The segment is on its way out: its descriptor closes as soon as no send uses it, and
        outstanding reads reopen it under the new name (see `storage/filecache.py`).
        """
        self.log.retire()
        self.close_handlers()
        new_log = self.log.path + suffix
        self.fs.replace(self.log.path, new_log)
        self.log.path = new_log
        for index in (self.offset_index, self.time_index):
            if os.path.exists(index.path):
                index.rename(index.path + suffix)
        renamed = [new_log, self.offset_index.path, self.time_index.path]
        txn_path = self.txn_index.rename(self.txn_index.path + suffix)
        return renamed if txn_path is None else [*renamed, txn_path]


def _assign_epoch(epochs: LeaderEpochFileCache | None, header: BatchHeader) -> None:
    epoch = header.partition_leader_epoch
    if epochs is None or epoch < 0:
        return
    latest = epochs.latest_epoch
    if latest is None or epoch > latest:
        epochs.assign(epoch, header.base_offset)
