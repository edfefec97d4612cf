"""OffsetIndex and TimeIndex: file format, lookups, truncation, sealing, sanity checks."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from storage.errors import CorruptIndexError
from storage.filecache import FileHandleCache
from storage.index import OffsetIndex, OffsetPosition, TimeIndex, TimestampOffset
from tests.storage.conftest import FaultyFS

BASE = 1000


def offset_index(tmp_path: Path, max_bytes: int = 8 * 10) -> OffsetIndex:
    index = OffsetIndex(str(tmp_path / "x.index"), BASE, max_bytes, FileHandleCache(8))
    index.create()
    return index


def time_index(tmp_path: Path, max_bytes: int = 12 * 10) -> TimeIndex:
    index = TimeIndex(str(tmp_path / "x.timeindex"), BASE, max_bytes, FileHandleCache(8))
    index.create()
    return index


def test_offset_index_is_preallocated_and_trimmed_to_kafka_layout(tmp_path: Path) -> None:
    index = offset_index(tmp_path, max_bytes=8 * 10 + 5)
    assert index.max_entries == 10
    assert index.file_size() == 80
    index.append(BASE + 3, 0)
    index.append(BASE + 9, 4200)
    index.trim()
    raw = (tmp_path / "x.index").read_bytes()
    assert raw == struct.pack(">iiii", 3, 0, 9, 4200)


def test_offset_index_lookup_is_largest_lower_bound(tmp_path: Path) -> None:
    index = offset_index(tmp_path)
    for rel, pos in [(3, 100), (9, 200), (20, 300)]:
        index.append(BASE + rel, pos)
    assert index.lookup(BASE) == OffsetPosition(BASE, 0)
    assert index.lookup(BASE + 2) == OffsetPosition(BASE, 0)
    assert index.lookup(BASE + 3) == OffsetPosition(BASE + 3, 100)
    assert index.lookup(BASE + 15) == OffsetPosition(BASE + 9, 200)
    assert index.lookup(BASE + 10**6) == OffsetPosition(BASE + 20, 300)


def test_offset_index_rejects_non_increasing_offsets_and_overflow(tmp_path: Path) -> None:
    index = offset_index(tmp_path, max_bytes=16)
    index.append(BASE + 5, 10)
    with pytest.raises(ValueError):
        index.append(BASE + 5, 20)
    index.append(BASE + 6, 20)
    assert index.is_full
    with pytest.raises(ValueError):
        index.append(BASE + 7, 30)
    assert index.can_append_offset(BASE + 2**31 - 1)
    assert not index.can_append_offset(BASE + 2**31)
    assert not index.can_append_offset(BASE - 1)


@pytest.mark.parametrize(
    ("target", "entries"), [(BASE, 0), (BASE + 3, 0), (BASE + 4, 1), (BASE + 9, 1), (BASE + 10, 2)]
)
def test_offset_index_truncate_to(tmp_path: Path, target: int, entries: int) -> None:
    index = offset_index(tmp_path)
    index.append(BASE + 3, 100)
    index.append(BASE + 9, 200)
    index.truncate_to(target)
    assert index.entries == entries
    assert index.last_offset == (BASE + [0, 3, 9][entries])


def test_reload_counts_entries_from_file_length(tmp_path: Path) -> None:
    index = offset_index(tmp_path)
    index.append(BASE + 3, 100)
    index.append(BASE + 9, 200)
    index.trim()
    again = OffsetIndex(index.path, BASE, 80, FileHandleCache(8))
    again.load(writable=True)
    assert again.entries == 2
    assert again.last_offset == BASE + 9
    assert again.file_size() == 80  # preallocated again for appends
    again.append(BASE + 12, 300)
    assert again.lookup(BASE + 100) == OffsetPosition(BASE + 12, 300)


def test_offset_index_sanity_check(tmp_path: Path) -> None:
    index = offset_index(tmp_path)
    index.append(BASE + 3, 100)
    index.trim()
    assert index.sanity_check(log_size=1000) == OffsetPosition(BASE + 3, 100)
    with pytest.raises(CorruptIndexError):
        index.sanity_check(log_size=50)  # points past the end of the log
    with open(index.path, "ab") as f:
        f.write(b"\0\0\0")
    with pytest.raises(CorruptIndexError):
        index.sanity_check(log_size=1000)


def test_time_index_appends_only_growing_timestamps(tmp_path: Path) -> None:
    index = time_index(tmp_path)
    index.maybe_append(500, BASE + 1)
    index.maybe_append(500, BASE + 2)  # same timestamp: ignored
    index.maybe_append(400, BASE + 3)  # smaller: ignored
    index.maybe_append(700, BASE + 4)
    assert index.entries == 2
    assert index.lookup(499) == TimestampOffset(-1, BASE)
    assert index.lookup(500) == TimestampOffset(500, BASE + 1)
    assert index.lookup(699) == TimestampOffset(500, BASE + 1)
    assert index.lookup(10**12) == TimestampOffset(700, BASE + 4)
    index.trim()
    raw = (tmp_path / "x.timeindex").read_bytes()
    assert raw == struct.pack(">qiqi", 500, 1, 700, 4)


def test_time_index_keeps_a_slot_for_the_sealing_entry(tmp_path: Path) -> None:
    index = time_index(tmp_path, max_bytes=36)
    index.maybe_append(1, BASE)
    index.maybe_append(2, BASE + 1)
    assert index.is_full
    with pytest.raises(ValueError):
        index.maybe_append(3, BASE + 2)
    index.maybe_append(3, BASE + 2, skip_full_check=True)
    assert index.entries == 3


def test_time_index_truncate_and_sanity(tmp_path: Path) -> None:
    index = time_index(tmp_path)
    index.maybe_append(500, BASE + 1)
    index.maybe_append(700, BASE + 4)
    index.truncate_to(BASE + 4)
    assert index.entries == 1
    assert index.last_entry == TimestampOffset(500, BASE + 1)
    index.trim()
    index.sanity_check()
    with open(index.path, "r+b") as f:  # last timestamp below the first: corrupt
        f.write(struct.pack(">qi", 900, 1))
        f.write(struct.pack(">qi", 10, 2))
    index.load(writable=False)
    with pytest.raises(CorruptIndexError):
        index.sanity_check()


def test_sealed_index_maps_lazily_through_the_lru(tmp_path: Path) -> None:
    cache = FileHandleCache(4)
    indexes = []
    for i in range(10):
        index = OffsetIndex(str(tmp_path / f"{i}.index"), 0, 80, cache)
        index.create()
        index.append(5, 50)
        index.trim()
        indexes.append(index)
    assert cache.open_count == 0
    for index in indexes:
        assert index.lookup(7) == OffsetPosition(5, 50)
        assert cache.open_count <= 4


def test_entries_are_written_through_the_filesystem_seam(tmp_path: Path) -> None:
    """Not through the map: a store into a hole of a full disk would be SIGBUS; a pwrite gets
    ENOSPC, and the index stays as it was."""
    fs = FaultyFS()
    index = OffsetIndex(str(tmp_path / "x.index"), BASE, 8 * 2000, FileHandleCache(8), fs)
    index.create()
    index.append(BASE, 0)
    fs.disk_full = True
    with pytest.raises(OSError, match="No space"):
        index.append(BASE + 1, 100)
    assert index.entries == 1 and index.lookup(BASE + 5) == OffsetPosition(BASE, 0)
    fs.disk_full = False
    for n in range(1, 1000):  # across pages, the map seeing every entry written
        index.append(BASE + n, n * 100)
        assert index.lookup(BASE + n) == OffsetPosition(BASE + n, n * 100)
    assert os.path.getsize(index.path) == 8 * 2000  # still preallocated: nothing grew it
