"""Retention by time and size, DeleteRecords, follower truncation, delayed file deletion."""

from __future__ import annotations

import os

import pytest

from storage.errors import OffsetOutOfRangeError
from storage.flush import GroupCommitter
from storage.log import Log
from tests.storage.conftest import NOW, SMALL, LogFactory, base_offsets, batch, fill

DAY = 24 * 3600 * 1000


def segment_bases(log: Log) -> list[int]:
    return [s.base_offset for s in log.segments]


def test_time_retention_deletes_old_segments_by_largest_timestamp(make_log: LogFactory) -> None:
    log = make_log(SMALL.with_overrides(retention_ms=DAY))
    fill(log, 150, step_ms=1000)  # record timestamps NOW + 1s * offset
    bases = segment_bases(log)
    assert len(bases) >= 3
    # at NOW + DAY + 1s*(last offset of segment 0) + 1, only segment 0 is older than a day
    seg0_last = bases[1] - 1
    assert log.delete_old_segments(NOW + DAY + 1000 * seg0_last) == 0
    assert log.delete_old_segments(NOW + DAY + 1000 * seg0_last + 1) == 1
    assert segment_bases(log) == bases[1:]
    assert log.log_start_offset == bases[1]
    assert base_offsets(log.read(bases[1], 100).read_bytes())[0] == bases[1]
    with pytest.raises(OffsetOutOfRangeError):
        log.read(0, 100)


def test_time_retention_can_delete_the_active_segment_by_rolling(make_log: LogFactory) -> None:
    log = make_log(SMALL.with_overrides(retention_ms=DAY))
    fill(log, 150)
    end = log.log_end_offset
    count = len(segment_bases(log))
    assert log.delete_old_segments(NOW + 2 * DAY) == count
    assert segment_bases(log) == [end]
    assert log.log_start_offset == end and log.log_end_offset == end
    assert log.read(end, 100).length == 0
    fill(log, 1)
    assert log.log_end_offset == end + 1


def test_retention_never_passes_the_high_watermark(make_log: LogFactory) -> None:
    log = make_log(SMALL.with_overrides(retention_ms=DAY))
    fill(log, 150)
    bases = segment_bases(log)
    log.update_high_watermark(bases[1])
    log.delete_old_segments(NOW + 2 * DAY)
    assert segment_bases(log) == bases[1:]


def test_size_retention(make_log: LogFactory) -> None:
    log = make_log(SMALL.with_overrides(retention_bytes=2 * SMALL.segment_bytes))
    fill(log, 300)
    assert log.size_in_bytes > 2 * SMALL.segment_bytes
    limit = 2 * SMALL.segment_bytes
    assert log.delete_old_segments(NOW) > 0
    # Kafka's rule: delete oldest segments while the log stays at or above the limit
    assert log.size_in_bytes - log.segments[0].size < limit <= log.size_in_bytes
    assert base_offsets(log.read(log.log_start_offset, 100).read_bytes())[0] == log.log_start_offset


def test_compact_policy_keeps_old_segments(make_log: LogFactory) -> None:
    log = make_log(SMALL.with_overrides(retention_ms=1, cleanup_policy="compact"))
    fill(log, 150)
    assert log.delete_old_segments(NOW + DAY) == 0


def test_delete_records_moves_log_start_and_drops_whole_segments(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 150, epoch=3)
    bases = segment_bases(log)
    target = bases[1] + 2
    assert log.delete_records_before(target) == target
    assert segment_bases(log) == bases[1:]
    assert log.log_start_offset == target
    assert log.epochs.entries() == [(3, target)]
    # the batch holding the start offset is still served from its beginning
    assert base_offsets(log.read(target, 100).read_bytes())[0] == target
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records_before(log.high_watermark + 1)
    assert log.delete_records_before(5) == target  # never moves back


def test_deleted_files_are_renamed_then_unlinked_later(make_log: LogFactory) -> None:
    committer = GroupCommitter()
    log = make_log(SMALL.with_overrides(file_delete_delay_ms=60_000))
    log.committer = committer
    fill(log, 150)
    first = log.segments[0]
    log.delete_records_before(segment_bases(log)[1])
    assert not os.path.exists(os.path.join(log.dir, "00000000000000000000.log"))
    assert os.path.exists(first.log.path) and first.log.path.endswith(".log.deleted")
    committer.close()  # not yet due: dropped, the loader removes strays at start-up
    assert os.path.exists(first.log.path)
    log.close()
    again = make_log(clean=True)
    assert not [n for n in os.listdir(again.dir) if n.endswith(".deleted")]


def test_in_flight_read_survives_deletion(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 150)
    info = log.read(0, 1000)
    expected = info.read_bytes()
    with info.open_fd() as fd:
        log.delete_records_before(segment_bases(log)[1])  # renamed while being sent
        assert os.pread(fd, info.length, info.position) == expected


def test_truncate_to(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 50, epoch=1)
    fill(log, 100, epoch=2)
    bases = segment_bases(log)
    log.flush()
    assert log.truncate_to(60)
    assert log.log_end_offset == 60
    assert log.high_watermark == 60
    assert log.recovery_point == 60
    assert log.epochs.entries() == [(1, 0), (2, 50)]
    assert segment_bases(log) == [b for b in bases if b <= 60]
    fill(log, 5, epoch=3)
    assert base_offsets(log.read(55, 10**6).read_bytes()) == list(range(55, 65))
    assert not log.truncate_to(1000)


def test_truncate_to_a_segment_base_and_below_the_first_segment(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 150)
    bases = segment_bases(log)
    log.truncate_to(bases[1])
    assert segment_bases(log) == bases[:2]
    assert log.active_segment.size == 0
    log.delete_records_before(bases[1])
    assert segment_bases(log) == [bases[1]]
    log.truncate_to(3)  # below every segment: start over there
    assert segment_bases(log) == [3]
    assert (log.log_start_offset, log.log_end_offset) == (3, 3)
    log.append_as_leader(batch(), 0, NOW)
    assert log.log_end_offset == 4


def test_truncate_mid_batch_drops_the_whole_batch(make_log: LogFactory) -> None:
    log = make_log()
    log.append_as_leader(batch(5), 0, NOW)
    log.append_as_leader(batch(5), 0, NOW)
    log.truncate_to(7)
    assert log.log_end_offset == 7  # Kafka's rule: the log end is the target
    assert base_offsets(log.read(0, 10**6).read_bytes()) == [0]
