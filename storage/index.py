"""`OffsetIndex` and `TimeIndex`: the sparse, memory-mapped indexes of one segment.

File formats (big-endian, byte-compatible with Kafka; offsets are relative to the segment's
base offset, which is in the file name):

- `.index`: 8-byte entries `int32 relative_offset, int32 file_position`. An entry maps the
  last offset of a batch to the position where that batch starts; relative offsets increase
  strictly. One entry is added every `index.interval.bytes` of log.
- `.timeindex`: 12-byte entries `int64 timestamp, int32 relative_offset`: "the largest
  timestamp so far is T, and it is in a batch ending at offset O". Timestamps increase
  strictly; an entry is added at the index interval when the max timestamp grew, and once more
  when the segment is sealed.

The active segment's index files are preallocated (sparse) to `segment.index.bytes` (rounded
down to a whole entry); the entry count lives in memory. Sealing trims each file to its entries.
Lookups are binary searches straight over a read-only shared map of the file, opened on demand
through the shared `FileHandleCache`.

Entries are written with `pwrite` through the `FileSystem` seam, not through the map (Kafka
writes through its map). An entry comes at most once per `index.interval.bytes` of log, so the
syscall costs nothing measurable, and it avoids two traps of writing through a shared map of a
sparse file: on a full disk the first store into a hole raises SIGBUS, which kills the process
(pwrite returns ENOSPC instead: the entry is not written and the index stays as it was), and on
this ext4 VM the first store into a freshly mapped file costs milliseconds (a page_mkwrite
fault), which made sealing 10,000 active segments at shutdown take tens of seconds.

Crash: a preallocated index has zero entries after its real ones, and an index may lag its
log file. Kafka's rule applies: recovery rebuilds the indexes of every segment after the
recovery point; a segment before it was flushed (and trimmed) after sealing. Loading also
sanity-checks every index (`sanity_check`) and rebuilds any that fails.

Thread safety: owner thread only.
"""

from __future__ import annotations

import os
import struct
from typing import NamedTuple

from storage.errors import CorruptIndexError
from storage.filecache import FileHandleCache, IndexMap
from storage.fs import OS_FS, FileSystem

_INT32_MAX = 2**31 - 1


class OffsetPosition(NamedTuple):
    offset: int
    position: int


class TimestampOffset(NamedTuple):
    timestamp: int
    offset: int


class _Index:
    """Common machinery: file size management, mapping, binary search."""

    ENTRY: struct.Struct

    def __init__(
        self,
        path: str,
        base_offset: int,
        max_index_size: int,
        cache: FileHandleCache,
        fs: FileSystem = OS_FS,
    ) -> None:
        self.path = path
        self.base_offset = base_offset
        self.fs = fs
        self.entry_size = self.ENTRY.size
        self.max_entries = max_index_size // self.entry_size
        self.entries = 0
        self.writable = False  # active segment: takes entries, file preallocated
        self._map = IndexMap(cache, path)
        self._reset_last()

    # --- lifecycle -----------------------------------------------------------------------

    def create(self) -> None:
        """Start an empty, preallocated, writable index (a new active segment)."""
        self._map.close()
        fd = self.fs.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
        try:
            self.fs.ftruncate(fd, self.max_entries * self.entry_size)
        finally:
            self.fs.close(fd)
        self.entries = 0
        self.writable = True
        self._reset_last()

    def load(self, writable: bool) -> None:
        """Adopt an existing file: its length gives the entry count (Kafka's rule)."""
        self._map.close()
        size = os.path.getsize(self.path)
        self.entries = size // self.entry_size
        self._load_ends()
        if writable:
            self.make_writable()

    def make_writable(self) -> None:
        """Grow the file back to the preallocated size so the segment can be active again.

        A file holding more entries than `segment.index.bytes` now allows (the config
        shrank) keeps them all; the index then reads as full and the segment rolls.
        """
        self._map.close()
        self.fs.truncate(self.path, self._writable_size())
        self.writable = True

    def trim(self) -> None:
        """Shrink the file to its entries and map read-only from now on (sealed segment)."""
        self._map.close()
        self.fs.truncate(self.path, self.entries * self.entry_size)
        self.writable = False

    def reset(self) -> None:
        """Forget every entry (recovery rebuilds them); the file stays preallocated."""
        self.entries = 0
        self._reset_last()

    def close(self) -> None:
        self._map.close()

    def rename(self, new_path: str) -> None:
        self.fs.replace(self.path, new_path)
        self.relocate(new_path)

    def relocate(self, new_path: str) -> None:
        """The file is now at `new_path` (renamed, or its directory was)."""
        self.close()
        self.path = new_path
        self._map.path = new_path

    def file_size(self) -> int:
        return os.path.getsize(self.path)

    @property
    def is_full(self) -> bool:
        return self.entries >= self.max_entries

    @property
    def is_mapped(self) -> bool:
        return self._map.is_open

    # --- entry access --------------------------------------------------------------------

    def _read_entry_from_file(self, n: int) -> tuple[int, int]:
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            raw = os.pread(fd, self.entry_size, n * self.entry_size)
        finally:
            os.close(fd)
        if len(raw) != self.entry_size:
            raise CorruptIndexError(f"{self.path}: entry {n} is truncated")
        a, b = self.ENTRY.unpack(raw)
        return int(a), int(b)

    def _writable_size(self) -> int:
        return max(self.max_entries, self.entries) * self.entry_size

    def _write_entry(self, a: int, b: int) -> None:
        """Write entry number `entries` in place (raises OSError, e.g. ENOSPC: no change)."""
        if not self.writable:
            raise RuntimeError(f"{self.path} is sealed")
        fd = self.fs.open(self.path, os.O_WRONLY)
        try:
            self.fs.write_all(fd, self.ENTRY.pack(a, b), self.entries * self.entry_size)
        finally:
            self.fs.close(fd)
        self.entries += 1

    def _search(self, target: int, key_field: int, convert: int) -> tuple[int, tuple[int, int]]:
        """Largest slot whose key <= target, and its raw entry; (-1, (0, 0)) if none.

        `key_field` picks the entry field compared; `convert` is subtracted from `target`
        (the base offset for relative offsets, 0 for timestamps).
        """
        if self.entries == 0:
            return -1, (0, 0)
        target -= convert
        unpack, size = self.ENTRY.unpack_from, self.entry_size
        self._map.pin()
        try:
            buf = self._map.buf
            if unpack(buf, 0)[key_field] > target:
                return -1, (0, 0)
            lo, hi = 0, self.entries - 1
            while lo < hi:
                mid = (lo + hi + 1) >> 1
                if unpack(buf, mid * size)[key_field] <= target:
                    lo = mid
                else:
                    hi = mid - 1
            a, b = unpack(buf, lo * size)
            return lo, (int(a), int(b))
        finally:
            self._map.unpin()

    def _truncate_slot(self, offset: int, offset_field: int) -> None:
        """Keep entries whose offset is < `offset` (Kafka's three cases)."""
        slot, entry = self._search(offset, offset_field, self.base_offset)
        if slot < 0:
            self.entries = 0
        elif entry[offset_field] == offset - self.base_offset:
            self.entries = slot
        else:
            self.entries = slot + 1
        self._load_ends()

    def _reset_last(self) -> None:
        raise NotImplementedError

    def _load_ends(self) -> None:
        raise NotImplementedError

    def relative(self, offset: int) -> int:
        return offset - self.base_offset

    def can_append_offset(self, offset: int) -> bool:
        return 0 <= offset - self.base_offset <= _INT32_MAX


class OffsetIndex(_Index):
    """`.index`: last offset of a batch -> file position of that batch.

    File: 8-byte big-endian entries `int32 relative_offset, int32 position`, preallocated
    while active, trimmed when sealed. Threads: owner only. Crash: may hold zero entries
    past its real ones or lag the log; rebuilt by recovery or a failed sanity check.
    """

    ENTRY = struct.Struct(">ii")

    def _reset_last(self) -> None:
        self.last_offset = self.base_offset

    def _load_ends(self) -> None:
        if self.entries == 0:
            self._reset_last()
            return
        rel, _ = self._read_entry_from_file(self.entries - 1)
        self.last_offset = self.base_offset + rel

    def append(self, offset: int, position: int) -> None:
        if self.entries and offset <= self.last_offset:
            raise ValueError(f"index offset {offset} not above last {self.last_offset}")
        if self.is_full:
            raise ValueError(f"{self.path} is full ({self.entries} entries)")
        self._write_entry(self.relative(offset), position)
        self.last_offset = offset

    def lookup(self, target_offset: int) -> OffsetPosition:
        """The last entry at or before `target_offset`, else (base_offset, 0)."""
        slot, (rel, pos) = self._search(target_offset, 0, self.base_offset)
        if slot < 0:
            return OffsetPosition(self.base_offset, 0)
        return OffsetPosition(self.base_offset + rel, pos)

    def entry(self, n: int) -> OffsetPosition:
        rel, pos = self._read_entry_from_file(n)
        return OffsetPosition(self.base_offset + rel, pos)

    def truncate_to(self, offset: int) -> None:
        self._truncate_slot(offset, 0)

    def sanity_check(self, log_size: int) -> OffsetPosition | None:
        """Raise CorruptIndexError if the file cannot be right; returns the last entry."""
        size = self.file_size()
        if size % self.entry_size:
            raise CorruptIndexError(f"{self.path}: size {size} is not a multiple of 8")
        if self.entries == 0:
            return None
        first_rel, _ = self._read_entry_from_file(0)
        last = self.entry(self.entries - 1)
        if first_rel < 0 or last.offset < self.base_offset + first_rel:
            raise CorruptIndexError(f"{self.path}: offsets out of order")
        if not 0 <= last.position < log_size:
            raise CorruptIndexError(f"{self.path}: position {last.position} beyond the log")
        return last


class TimeIndex(_Index):
    """`.timeindex`: max timestamp so far -> last offset of the batch holding it.

    File: 12-byte big-endian entries `int64 timestamp, int32 relative_offset`, timestamps
    strictly rising, one slot kept for the sealing entry. Threads: owner only. Crash: as
    `OffsetIndex`: rebuilt by recovery or a failed sanity check.
    """

    ENTRY = struct.Struct(">qi")

    def _reset_last(self) -> None:
        self.last_entry = TimestampOffset(-1, self.base_offset)

    def _load_ends(self) -> None:
        if self.entries == 0:
            self._reset_last()
            return
        ts, rel = self._read_entry_from_file(self.entries - 1)
        self.last_entry = TimestampOffset(ts, self.base_offset + rel)

    @property
    def is_full(self) -> bool:
        # One slot stays free for the entry written when the segment is sealed.
        return self.entries >= self.max_entries - 1

    def maybe_append(self, timestamp: int, offset: int, skip_full_check: bool = False) -> None:
        """Add (timestamp, offset) if the timestamp is above the last entry's."""
        if timestamp <= self.last_entry.timestamp:
            return
        if not skip_full_check and self.is_full:
            raise ValueError(f"{self.path} is full ({self.entries} entries)")
        if self.entries >= self.max_entries:
            return
        if self.entries and offset < self.last_entry.offset:
            raise ValueError(f"time index offset {offset} below {self.last_entry.offset}")
        self._write_entry(timestamp, self.relative(offset))
        self.last_entry = TimestampOffset(timestamp, offset)

    def lookup(self, target_timestamp: int) -> TimestampOffset:
        """The last entry with timestamp <= target, else (-1, base_offset)."""
        slot, (ts, rel) = self._search(target_timestamp, 0, 0)
        if slot < 0:
            return TimestampOffset(-1, self.base_offset)
        return TimestampOffset(ts, self.base_offset + rel)

    def truncate_to(self, offset: int) -> None:
        self._truncate_slot(offset, 1)

    def sanity_check(self) -> None:
        size = self.file_size()
        if size % self.entry_size:
            raise CorruptIndexError(f"{self.path}: size {size} is not a multiple of 12")
        if self.entries == 0:
            return
        first_ts, _ = self._read_entry_from_file(0)
        if self.last_entry.timestamp < first_ts:
            raise CorruptIndexError(f"{self.path}: last timestamp below the first")
        if self.last_entry.offset < self.base_offset:
            raise CorruptIndexError(f"{self.path}: last offset below the base offset")
