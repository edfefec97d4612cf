"""Segment rolling: by size, by age, by a full index, by relative-offset overflow."""

from __future__ import annotations

import os

from storage.config import LogConfig
from storage.segment import segment_file_name
from tests.storage.conftest import NOW, SMALL, LogFactory, batch, fill


def test_roll_by_size(make_log: LogFactory) -> None:
    config = SMALL.with_overrides(segment_bytes=len(batch()) * 3)
    log = make_log(config)
    fill(log, 7)
    assert [s.base_offset for s in log.segments] == [0, 3, 6]
    assert all(s.size <= config.segment_bytes for s in log.segments)
    names = sorted(os.listdir(log.dir))
    assert segment_file_name(3, ".log") in names
    assert "00000000000000000003.log" in names


def test_sealed_segment_indexes_are_trimmed(make_log: LogFactory) -> None:
    log = make_log(SMALL.with_overrides(index_interval_bytes=0))
    fill(log, 60)
    sealed, active = log.segments[0], log.active_segment
    assert sealed.offset_index.entries > 0
    assert os.path.getsize(sealed.offset_index.path) == 8 * sealed.offset_index.entries
    assert os.path.getsize(sealed.time_index.path) == 12 * sealed.time_index.entries
    assert os.path.getsize(active.offset_index.path) == SMALL.segment_index_bytes


def test_roll_by_time_uses_the_first_batch_timestamp(make_log: LogFactory) -> None:
    log = make_log(LogConfig(segment_ms=1000))
    log.append_as_leader(batch(timestamp=NOW), 0, NOW)
    log.append_as_leader(batch(timestamp=NOW + 1000), 0, NOW)
    assert len(log.segments) == 1
    info = log.append_as_leader(batch(timestamp=NOW + 1001), 0, NOW)
    assert info.rolled
    assert [s.base_offset for s in log.segments] == [0, 2]


def test_roll_by_wall_clock_when_batches_have_no_timestamp(make_log: LogFactory) -> None:
    log = make_log(LogConfig(segment_ms=1000))
    log.append_as_leader(batch(timestamp=-1), 0, NOW)
    log.append_as_leader(batch(timestamp=-1), 0, NOW + 1000)
    assert len(log.segments) == 1
    log.append_as_leader(batch(timestamp=-1), 0, NOW + 1001)
    assert len(log.segments) == 2


def test_roll_when_the_offset_index_is_full(make_log: LogFactory) -> None:
    log = make_log(LogConfig(index_interval_bytes=0, segment_index_bytes=8 * 4))
    fill(log, 12)
    assert len(log.segments) > 1
    for segment in log.segments[:-1]:
        assert segment.offset_index.entries <= 4


def test_roll_on_relative_offset_overflow(make_log: LogFactory) -> None:
    log = make_log()
    log.append_as_follower(batch(1, base_offset=0))
    log.append_as_follower(batch(1, base_offset=2**31 - 1))  # still fits segment 0
    assert len(log.segments) == 1
    log.append_as_follower(batch(1, base_offset=2**31))
    assert [s.base_offset for s in log.segments] == [0, 2**31]


def test_explicit_roll_of_an_empty_active_segment_is_a_no_op(make_log: LogFactory) -> None:
    log = make_log()
    assert log.roll() is log.active_segment
    fill(log, 1)
    segment = log.roll()
    assert segment.base_offset == 1 and len(log.segments) == 2
