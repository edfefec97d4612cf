"""ListOffsets: by timestamp (time index then scan), earliest, latest, max timestamp."""

from __future__ import annotations

from protocol.records import Compression
from storage.log import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP
from tests.storage.conftest import NOW, SMALL, LogFactory, batch


def test_offset_for_timestamp_finds_the_first_record_at_or_after(make_log: LogFactory) -> None:
    log = make_log(SMALL.with_overrides(index_interval_bytes=100))
    for i in range(40):
        log.append_as_leader(batch(5, timestamp=NOW + 50 * i, step=10), 2, NOW)
    assert len(log.segments) > 1
    for target in [NOW - 5, NOW, NOW + 1, NOW + 555, NOW + 1000, NOW + 1990]:
        found = log.offset_for_timestamp(target)
        assert found is not None
        expected = max(0, (target - NOW + 9) // 10)
        assert found.offset == expected
        assert found.timestamp == NOW + 10 * expected
        assert found.leader_epoch == 2
    assert log.offset_for_timestamp(NOW + 1991) is None


def test_offset_for_timestamp_in_compressed_batches(make_log: LogFactory) -> None:
    log = make_log()
    for i in range(5):
        raw = batch(4, timestamp=NOW + 40 * i, step=10, compression=Compression.LZ4)
        log.append_as_leader(raw, 0, NOW)
    found = log.offset_for_timestamp(NOW + 95)
    assert found is not None and found.offset == 10


def test_out_of_order_record_timestamps_in_a_batch(make_log: LogFactory) -> None:
    log = make_log()
    log.append_as_leader(batch(4, timestamp=NOW + 100, step=-30), 0, NOW)  # 100, 70, 40, 10
    found = log.offset_for_timestamp(NOW + 50)
    assert found is not None and (found.offset, found.timestamp) == (0, NOW + 100)


def test_special_timestamps(make_log: LogFactory) -> None:
    log = make_log()
    log.append_as_leader(batch(3, timestamp=NOW, step=1), 1, NOW)
    log.append_as_leader(batch(3, timestamp=NOW + 500, step=-1), 4, NOW)  # max at offset 3
    log.append_as_leader(batch(3, timestamp=NOW, step=1), 4, NOW)
    log.update_high_watermark(9)
    assert log.fetch_offset_by_timestamp(LATEST_TIMESTAMP) == (-1, 9, 4)
    assert log.fetch_offset_by_timestamp(EARLIEST_TIMESTAMP) == (-1, 0, 1)
    assert log.fetch_offset_by_timestamp(MAX_TIMESTAMP) == (NOW + 500, 3, 4)
    log.delete_records_before(4)
    assert log.fetch_offset_by_timestamp(EARLIEST_TIMESTAMP) == (-1, 4, 4)
    found = log.offset_for_timestamp(NOW)
    assert found is not None and found.offset == 4  # never below the log start


def test_log_append_time_batches_answer_with_their_first_offset(make_log: LogFactory) -> None:
    log = make_log()
    log.append_as_leader(batch(3), 0, NOW + 100, log_append_time=True)
    log.append_as_leader(batch(3), 0, NOW + 200, log_append_time=True)
    found = log.offset_for_timestamp(NOW + 150)
    assert found is not None and (found.timestamp, found.offset) == (NOW + 200, 3)
    assert log.max_timestamp_offset() == (NOW + 200, 3, 0)


def test_empty_log(make_log: LogFactory) -> None:
    log = make_log()
    assert log.offset_for_timestamp(0) is None
    assert log.max_timestamp_offset() is None
    assert log.fetch_offset_by_timestamp(LATEST_TIMESTAMP) == (-1, 0, None)
