"""`TransactionIndex`: the aborted transactions whose ABORT marker is in one segment (KIP-98).

Theory of operation. A read_committed consumer receives the batches below the last stable
offset, aborted ones included, plus the list of aborted transactions overlapping them
(producer id, first offset); it drops a producer's batches from that first offset up to the
producer's ABORT marker. The broker finds that list in a `.txnindex` file beside each segment:
when an ABORT marker is appended, the transaction's entry goes into the index of the segment
that holds the marker. Entries are in increasing order of `last_offset` (the marker's offset).
`collect(fetch_offset, upper_bound_offset)` returns the entries with `last_offset >=
fetch_offset` and `first_offset < upper_bound_offset`, and says whether the search is complete:
an entry whose `last_stable_offset` is at or above the upper bound proves that no transaction
still open at that point can end in a later segment with a first offset below the bound, so
later segments need not be searched (Kafka's `TransactionIndex.collectAbortedTxns`).

File format (Kafka's, byte for byte): entries of 34 bytes, big-endian, back to back, no
header:

    version int16 (0) | producer_id int64 | first_offset int64 | last_offset int64 |
    last_stable_offset int64

`last_stable_offset` is the partition's LSO just after the abort: the first offset of the next
transaction still open then (of another producer), else the marker's offset + 1.

The file is created lazily, on the first entry: most segments never see an abort. Entries are
also held in memory once read (aborts are rare and an entry is 34 bytes), so a fetch never
reads the file. Every append is one `pwrite` at the end, no fsync: the log's flush fsyncs the
file with its segment (`LogSegment.flush_paths`).

Threads: owner thread only (the partition's event loop), like the segment.

Crash: a torn last entry (a file length not a multiple of 34) is cut off when the file is
loaded, and an entry with an unknown version or offsets that do not fit the segment ends the
file there. Recovery does not trust the tail at all: the partition replays the batch headers
after its newest producer-state snapshot, and drops and rebuilds every entry from that offset
on (`truncate_to`), so a kill -9 between a marker's append and its index entry (or the
reverse, for the bytes in the page cache) leaves a correct index.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import struct
from dataclasses import dataclass

from storage.fs import FileSystem

_log = logging.getLogger(__name__)

TXN_INDEX_SUFFIX = ".txnindex"
ENTRY = struct.Struct(">hqqqq")
ENTRY_SIZE = ENTRY.size  # 34
CURRENT_VERSION = 0


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    """One aborted transaction of one partition (Kafka's AbortedTxn)."""

    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int

    def encode(self) -> bytes:
        return ENTRY.pack(
            CURRENT_VERSION,
            self.producer_id,
            self.first_offset,
            self.last_offset,
            self.last_stable_offset,
        )


@dataclass(frozen=True, slots=True)
class TxnIndexSearchResult:
    aborted: list[AbortedTxn]
    complete: bool


class TransactionIndex:
    """The `.txnindex` of the segment starting at `base_offset`.

    File: 34-byte entries (module docstring), created on the first `append`. Threads: owner
    only. Crash: a torn or invalid tail is cut when loaded; the partition rebuilds entries
    after its producer snapshot.
    """

    def __init__(self, path: str, base_offset: int, fs: FileSystem) -> None:
        self.path = path
        self.base_offset = base_offset
        self.fs = fs
        self._entries: list[AbortedTxn] | None = None  # None: not read yet
        self._last_offsets: list[int] = []

    def __repr__(self) -> str:
        return f"TransactionIndex({self.path})"

    # --- reading -----------------------------------------------------------------------

    @property
    def entries(self) -> list[AbortedTxn]:
        """Every entry, oldest first (read from the file on first use)."""
        if self._entries is None:
            self._entries = self._load()
            self._last_offsets = [e.last_offset for e in self._entries]
        return self._entries

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def _load(self) -> list[AbortedTxn]:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        entries: list[AbortedTxn] = []
        valid = 0
        previous = -1
        while valid + ENTRY_SIZE <= len(data):
            version, pid, first, last, lso = ENTRY.unpack_from(data, valid)
            if version != CURRENT_VERSION or not self.base_offset <= last or last <= previous:
                _log.warning("%s: invalid entry at byte %d; cutting the index there", self, valid)
                break
            if first > last or lso < first:
                _log.warning("%s: inconsistent entry at byte %d; cutting there", self, valid)
                break
            entries.append(AbortedTxn(pid, first, last, lso))
            previous = last
            valid += ENTRY_SIZE
        if valid < len(data):
            if len(data) - valid < ENTRY_SIZE:
                _log.warning("%s: torn entry of %d bytes at the end", self, len(data) - valid)
            self.fs.truncate(self.path, valid)
        return entries

    def collect(self, fetch_offset: int, upper_bound_offset: int) -> TxnIndexSearchResult:
        """Entries overlapping `[fetch_offset, upper_bound_offset)`; complete if the search
        need not go on to later segments."""
        entries = self.entries
        found: list[AbortedTxn] = []
        for i in range(bisect.bisect_left(self._last_offsets, fetch_offset), len(entries)):
            entry = entries[i]
            if entry.first_offset < upper_bound_offset:
                found.append(entry)
            if entry.last_stable_offset >= upper_bound_offset:
                return TxnIndexSearchResult(found, True)
        return TxnIndexSearchResult(found, False)

    @property
    def last_offset(self) -> int | None:
        entries = self.entries
        return entries[-1].last_offset if entries else None

    # --- writing -----------------------------------------------------------------------

    def append(self, entry: AbortedTxn) -> None:
        """Add an entry at the end (creating the file). Raises ValueError if its last offset
        does not increase, OSError if the write fails (then nothing was added)."""
        entries = self.entries
        if entries and entries[-1].last_offset >= entry.last_offset:
            raise ValueError(
                f"{self}: last offset {entry.last_offset} is not above {entries[-1].last_offset}"
            )
        fd = self.fs.open(self.path, os.O_RDWR | os.O_CREAT)
        try:
            position = len(entries) * ENTRY_SIZE
            try:
                self.fs.write_all(fd, entry.encode(), position)
            except OSError:
                with contextlib.suppress(OSError):
                    self.fs.ftruncate(fd, position)
                raise
        finally:
            self.fs.close(fd)
        entries.append(entry)
        self._last_offsets.append(entry.last_offset)

    def truncate_to(self, offset: int) -> None:
        """Drop every entry whose marker is at or above `offset` (log truncation, recovery)."""
        entries = self.entries
        keep = bisect.bisect_left(self._last_offsets, offset)
        if keep == len(entries):
            return
        del entries[keep:]
        del self._last_offsets[keep:]
        if self.exists():
            self.fs.truncate(self.path, keep * ENTRY_SIZE)

    def reset(self) -> None:
        """Forget every entry (the segment was emptied); the file is removed."""
        self._entries, self._last_offsets = [], []
        with contextlib.suppress(FileNotFoundError):
            self.fs.unlink(self.path)

    # --- files -------------------------------------------------------------------------

    def rename(self, new_path: str) -> str | None:
        """Rename the file if it exists (segment deletion); returns the new path or None."""
        self.entries  # noqa: B018 - keep the entries readable after the rename
        old, self.path = self.path, new_path
        if not os.path.exists(old):
            return None
        self.fs.replace(old, new_path)
        return new_path

    def relocate(self, new_path: str) -> None:
        """The directory was renamed under us (topic deletion): follow it."""
        self.path = new_path
