"""Log append and read: offsets stamped in place, byte ranges for sendfile, bounds."""

from __future__ import annotations

import os

import pytest

from protocol.records import (
    Compression,
    CorruptRecordError,
    TimestampType,
    decode_batch,
    read_batch_header,
)
from storage.errors import (
    OffsetOutOfRangeError,
    RecordBatchTooLargeError,
    RecordTooLargeError,
    UnexpectedAppendOffsetError,
)
from tests.storage.conftest import NOW, SMALL, LogFactory, base_offsets, batch, fill


def test_append_stamps_offsets_and_epoch_in_place(make_log: LogFactory) -> None:
    log = make_log()
    first = batch(3)
    info = log.append_as_leader(first, leader_epoch=7, now_ms=NOW)
    assert (info.first_offset, info.last_offset, info.batch_count) == (0, 2, 1)
    second = batch(2) + batch(1)  # one append, two batches
    info = log.append_as_leader(second, leader_epoch=7, now_ms=NOW)
    assert (info.first_offset, info.last_offset, info.batch_count) == (3, 5, 2)
    header = read_batch_header(second)
    assert (header.base_offset, header.partition_leader_epoch) == (3, 7)
    assert log.log_end_offset == 6
    assert log.epochs.entries() == [(7, 0)]
    data = log.read(0, 10**6).read_bytes()
    assert data == bytes(first) + bytes(second)  # stored exactly as stamped
    _, records = decode_batch(data, len(first))
    assert [r.offset for r in records] == [3, 4]


def test_append_requires_a_writable_buffer(make_log: LogFactory) -> None:
    log = make_log()
    with pytest.raises(TypeError):
        log.append_as_leader(memoryview(bytes(batch())), 0, NOW)


def test_log_append_time_stamps_max_timestamp_and_keeps_crc_valid(make_log: LogFactory) -> None:
    log = make_log()
    info = log.append_as_leader(batch(2, timestamp=5), 0, NOW + 42, log_append_time=True)
    assert info.log_append_time_ms == NOW + 42
    assert info.max_timestamp == NOW + 42
    header, records = decode_batch(log.read(0, 10**6).read_bytes())  # decode checks the CRC
    assert header.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert [r.timestamp for r in records] == [NOW + 42, NOW + 42]


def test_new_epoch_is_recorded_at_its_first_offset(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 3, epoch=1)
    fill(log, 2, epoch=4)
    assert log.epochs.entries() == [(1, 0), (4, 3)]
    assert log.end_offset_for_epoch(1) == (1, 3)
    assert log.end_offset_for_epoch(4) == (4, 5)


def test_read_mid_batch_returns_the_containing_batch(make_log: LogFactory) -> None:
    log = make_log()
    for _ in range(4):
        log.append_as_leader(batch(5), 0, NOW)
    for offset in range(20):
        info = log.read(offset, 10**6)
        assert base_offsets(info.read_bytes())[0] == offset - offset % 5


def test_read_many_batches_across_segments(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 200)
    assert len(log.segments) > 3
    seen: list[int] = []
    offset = 0
    while offset < log.log_end_offset:
        info = log.read(offset, 1000)
        bases = base_offsets(info.read_bytes())
        assert bases and bases[0] == offset
        seen += bases
        offset = bases[-1] + 1
    assert seen == list(range(200))


def test_max_bytes_may_cut_the_last_batch(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 10)
    size = len(batch())
    info = log.read(0, size * 2 + 10)
    assert info.length == size * 2 + 10  # two whole batches and 10 bytes of the third
    assert base_offsets(info.read_bytes()) == [0, 1]


def test_min_one_message(make_log: LogFactory) -> None:
    log = make_log()
    log.append_as_leader(batch(1, value=b"x" * 500), 0, NOW)
    fill(log, 1)
    big = len(batch(1, value=b"x" * 500))
    info = log.read(0, 100, min_one_message=True)
    assert info.length == big
    info = log.read(0, 100, min_one_message=False)
    assert info.length == 0 and info.first_entry_incomplete


def test_max_offset_bounds_the_read(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 50)
    info = log.read(10, 10**6, max_offset=20)
    bases = base_offsets(info.read_bytes())
    assert bases[0] == 10 and bases[-1] == 19
    # between the bound and the log end: empty, not an error
    assert log.read(20, 10**6, max_offset=20).length == 0
    assert log.read(30, 10**6, max_offset=20).length == 0
    assert log.read(50, 10**6).length == 0  # at the log end


def test_offset_out_of_range(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 5)
    with pytest.raises(OffsetOutOfRangeError) as exc:
        log.read(6, 100)
    assert exc.value.code == 1
    log.delete_records_before(3)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(2, 100)
    assert base_offsets(log.read(3, 100).read_bytes())[0] == 3


def test_fetch_info_exposes_an_fd_for_sendfile(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 3)
    info = log.read(1, 10**6)
    assert info.path is not None and info.path.endswith("00000000000000000000.log")
    with info.open_fd() as fd:
        assert os.pread(fd, info.length, info.position) == info.read_bytes()


def test_compressed_batches_are_stored_undecoded(make_log: LogFactory) -> None:
    log = make_log()
    raw = batch(10, compression=Compression.ZSTD)
    log.append_as_leader(raw, 0, NOW)
    assert log.read(0, 10**6).read_bytes() == bytes(raw)
    assert log.log_end_offset == 10


def test_size_limits(make_log: LogFactory) -> None:
    log = make_log(SMALL.with_overrides(max_message_bytes=200))
    with pytest.raises(RecordTooLargeError):
        log.append_as_leader(batch(1, value=b"x" * 300), 0, NOW)
    log = make_log(SMALL.with_overrides(segment_bytes=150), name="u-0")
    with pytest.raises(RecordBatchTooLargeError):
        log.append_as_leader(batch(1) + batch(1), 0, NOW)
    assert log.log_end_offset == 0


def test_garbage_and_partial_batches_are_rejected(make_log: LogFactory) -> None:
    log = make_log()
    with pytest.raises(CorruptRecordError):
        log.append_as_leader(batch(1)[:-3], 0, NOW)
    with pytest.raises(CorruptRecordError):
        log.append_as_leader(bytearray(100), 0, NOW)
    assert log.log_end_offset == 0


def test_follower_append_keeps_offsets_and_epochs(make_log: LogFactory) -> None:
    log = make_log()
    log.append_as_follower(batch(2, base_offset=0, epoch=1) + batch(1, base_offset=2, epoch=3))
    assert log.log_end_offset == 3
    assert log.epochs.entries() == [(1, 0), (3, 2)]
    log.append_as_follower(batch(1, base_offset=10, epoch=3))  # a gap (compaction) is fine
    assert log.log_end_offset == 11
    assert base_offsets(log.read(5, 10**6).read_bytes()) == [10]
    with pytest.raises(UnexpectedAppendOffsetError):
        log.append_as_follower(batch(1, base_offset=4, epoch=3))


def test_follower_append_far_ahead_rolls_to_keep_relative_offsets(make_log: LogFactory) -> None:
    log = make_log()
    log.append_as_follower(batch(1, base_offset=0))
    log.append_as_follower(batch(1, base_offset=2**31 + 5))
    assert [s.base_offset for s in log.segments] == [0, 2**31 + 5]
