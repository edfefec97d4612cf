"""Disk faults: ENOSPC (on a write, a roll, an index page, a checkpoint, at close) leaves the
log consistent, readable and online; appends work again once space is freed."""

from __future__ import annotations

import os

import pytest

from storage.checkpoint import LEADER_EPOCH_CHECKPOINT, read_epochs
from storage.errors import KafkaStorageError
from storage.filecache import FileHandleCache
from storage.flush import GroupCommitter
from tests.storage.conftest import NOW, SMALL, FaultyFS, LogFactory, base_offsets, batch, fill


def test_enospc_mid_write_is_cut_back_and_reported(make_log: LogFactory) -> None:
    fs = FaultyFS()
    log = make_log(fs=fs)
    fill(log, 5)
    active = log.active_segment
    size = active.size
    fs.enospc_after_bytes = 40  # a short write of 40 bytes, then ENOSPC
    with pytest.raises(KafkaStorageError) as exc:
        log.append_as_leader(batch(3) + batch(2), 0, NOW)
    assert exc.value.code == 56
    assert os.path.getsize(active.log.path) == size
    assert log.log_end_offset == 5
    assert base_offsets(log.read(0, 10**6).read_bytes()) == [0, 1, 2, 3, 4]
    fs.enospc_after_bytes = None  # space freed: appends continue at the same offset
    info = log.append_as_leader(batch(1), 0, NOW)
    assert info.first_offset == 5
    assert base_offsets(log.read(0, 10**6).read_bytes()) == [0, 1, 2, 3, 4, 5]


def test_enospc_on_an_empty_segment(make_log: LogFactory) -> None:
    fs = FaultyFS()
    log = make_log(fs=fs)
    fs.enospc_after_bytes = 0
    with pytest.raises(KafkaStorageError):
        log.append_as_leader(batch(), 0, NOW)
    assert log.log_end_offset == 0 and log.active_segment.size == 0
    assert log.read(0, 100).length == 0


@pytest.mark.parametrize("suffix", [".log", ".index", ".timeindex"])
def test_a_roll_that_cannot_create_its_files_leaves_no_trace(
    make_log: LogFactory, suffix: str
) -> None:
    fs = FaultyFS()
    log = make_log(SMALL.with_overrides(segment_bytes=len(batch()) * 3), fs=fs)
    fill(log, 3)
    files = sorted(os.listdir(log.dir))
    fs.fail_create = suffix
    with pytest.raises(KafkaStorageError) as exc:
        log.append_as_leader(batch(), 0, NOW)  # needs a roll: the segment holds 3
    assert exc.value.code == 56
    assert sorted(os.listdir(log.dir)) == files  # the files it did create are gone
    assert [s.base_offset for s in log.segments] == [0] and not log.offline
    assert log.active_segment.offset_index.writable  # still the active segment
    assert log.log_end_offset == 3
    assert base_offsets(log.read(0, 10**6).read_bytes()) == [0, 1, 2]
    fs.fail_create = None  # space freed
    assert log.append_as_leader(batch(), 0, NOW).first_offset == 3
    assert [s.base_offset for s in log.segments] == [0, 3]
    assert base_offsets(log.read(0, 10**6).read_bytes()) == [0, 1, 2]
    assert base_offsets(log.read(3, 10**6).read_bytes()) == [3]


def test_a_roll_that_cannot_write_the_final_time_entry_fails_whole(make_log: LogFactory) -> None:
    fs = FaultyFS()
    log = make_log(SMALL.with_overrides(segment_bytes=len(batch()) * 3), fs=fs)
    fill(log, 3)  # less than index.interval.bytes: sealing writes the first time entry
    sealed = log.active_segment
    assert sealed.time_index.entries == 0
    fs.fail_write = ".timeindex"
    with pytest.raises(KafkaStorageError):
        log.append_as_leader(batch(), 0, NOW)
    assert log.segments == [sealed] and sealed.time_index.entries == 0
    assert sealed.time_index.writable and not log.offline
    fs.fail_write = None
    log.append_as_leader(batch(), 0, NOW)
    assert [s.base_offset for s in log.segments] == [0, 3]
    assert sealed.time_index.entries == 1 and not sealed.time_index.writable
    assert os.path.getsize(sealed.time_index.path) == 12  # trimmed to its one entry


def test_index_entries_that_find_no_space_are_skipped(make_log: LogFactory) -> None:
    fs = FaultyFS()
    log = make_log(SMALL.with_overrides(index_interval_bytes=0), fs=fs)
    fs.fail_write = "index"  # .index and .timeindex
    fill(log, 6)  # every batch after the first wants an index entry; none fits
    segment = log.active_segment
    assert segment.offset_index.entries == 0 and segment.time_index.entries == 0
    assert base_offsets(log.read(4, 10**6).read_bytes()) == [4, 5]  # found by a header scan
    fs.fail_write = None
    fill(log, 2)
    assert segment.offset_index.entries == 2
    assert base_offsets(log.read(6, 10**6).read_bytes()) == [6, 7]
    assert segment.max_timestamp_so_far == NOW + 7  # kept up through the skipped entries


def test_epoch_checkpoint_that_does_not_fit_leaves_the_log_online(make_log: LogFactory) -> None:
    fs = FaultyFS()
    committer = GroupCommitter(fs)
    log = make_log(fs=fs)
    fill(log, 2)  # the first append of epoch 0: the checkpoint must be written
    fs.fail_create = ""
    with pytest.raises(KafkaStorageError):
        committer.flush(log).result(10)
    assert not log.offline and log.recovery_point == 0
    assert not [n for n in os.listdir(log.dir) if n.endswith(".tmp")]
    fs.fail_create = None
    assert committer.flush(log).result(10) == 2  # the next flush writes it after all
    assert read_epochs(os.path.join(log.dir, LEADER_EPOCH_CHECKPOINT)) == [(0, 0)]
    committer.close()


def test_close_on_a_full_disk_raises_but_keeps_every_batch(make_log: LogFactory) -> None:
    fs = FaultyFS()
    cache = FileHandleCache(64)
    log = make_log(fs=fs, cache=cache)
    fill(log, 2)
    assert log.flush() == 2  # the epoch checkpoint is on disk already
    fill(log, 1)  # still no index entry: sealing at close wants the first time entry
    fs.disk_full = True
    with pytest.raises(KafkaStorageError, match="sealing"):
        log.close()
    assert log.recovery_point == 3  # flushed all the same
    assert cache.open_count == 0  # and the descriptors released
    reopened = make_log(fs=fs)  # recovery on a disk still full: starts, without index entries
    assert base_offsets(reopened.read(0, 10**6).read_bytes()) == [0, 1, 2]
    assert reopened.log_end_offset == 3
