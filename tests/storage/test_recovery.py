"""Loading after a crash or a clean shutdown: torn tails, lost indexes, rotten bytes."""

from __future__ import annotations

import logging
import os

import pytest

from storage.errors import CorruptSegmentError
from storage.loader import LoadOffsets
from storage.log import Log
from storage.segment import LogSegment
from tests.storage.conftest import (
    NOW,
    SMALL,
    FaultyFS,
    LogFactory,
    SimulatedCrash,
    base_offsets,
    batch,
    fill,
)


def read_all(log: Log, start: int | None = None) -> list[int]:
    offset = log.log_start_offset if start is None else start
    seen: list[int] = []
    while offset < log.log_end_offset:
        bases = base_offsets(log.read(offset, 10**6).read_bytes())
        seen += bases
        offset = bases[-1] + 1
    return seen


def flip_byte(path: str, position: int) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)
        f.seek(position)
        f.write(bytes([byte[0] ^ 0x40]))


def test_torn_write_is_truncated_and_indexes_rebuilt(
    make_log: LogFactory, caplog: pytest.LogCaptureFixture
) -> None:
    fs = FaultyFS()
    log = make_log(fs=fs)
    fill(log, 100)
    acked_end = log.log_end_offset
    active = log.active_segment
    size_before = active.size
    fs.torn_write_bytes = 30  # the next append dies after 30 of its bytes
    with pytest.raises(SimulatedCrash):
        log.append_as_leader(batch(3), 0, NOW)
    log.close_handlers()  # the process is gone: nothing trimmed, nothing flushed
    assert os.path.getsize(active.log.path) == size_before + 30
    with caplog.at_level(logging.WARNING):
        again = make_log(offsets=LoadOffsets(recovery_point=40))
    assert "truncated 30 invalid bytes" in caplog.text
    assert again.log_end_offset == acked_end
    assert os.path.getsize(active.log.path) == size_before
    assert read_all(again) == list(range(acked_end))
    new_active = again.active_segment
    assert new_active.offset_index.entries > 0  # rebuilt, then preallocated again
    again.append_as_leader(batch(1), 0, NOW)
    assert again.log_end_offset == acked_end + 1


def test_zero_filled_tail_is_truncated(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 10)
    path, size = log.active_segment.log.path, log.active_segment.size
    log.close_handlers()
    with open(path, "ab") as f:
        f.write(bytes(4096))  # what a filesystem may show after a crash
    again = make_log()
    assert again.log_end_offset == 10
    assert os.path.getsize(path) == size


def test_corruption_after_the_recovery_point_drops_later_segments(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 100)
    assert len(log.segments) >= 3
    second = log.segments[1]
    flip_byte(second.log.path, 200)  # inside the second batch or so of segment 2
    log.close_handlers()
    again = make_log(offsets=LoadOffsets(recovery_point=second.base_offset))
    assert len(again.segments) == 2
    assert again.log_end_offset < log.log_end_offset
    assert read_all(again) == list(range(again.log_end_offset))
    leftovers = [n for n in os.listdir(again.dir) if n.endswith(".deleted")]
    assert not leftovers


def test_recovery_reassigns_epochs_from_batches(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 5, epoch=1)
    log.flush()
    fill(log, 5, epoch=3)  # never flushed: the checkpoint on disk knows only epoch 1
    log.close_handlers()
    again = make_log(offsets=LoadOffsets(recovery_point=5))
    assert again.epochs.entries() == [(1, 0), (3, 5)]


def test_lost_epoch_checkpoint_is_rebuilt_from_headers(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 40, epoch=1)
    fill(log, 40, epoch=2)
    log.close()
    os.unlink(os.path.join(log.dir, "leader-epoch-checkpoint"))
    again = make_log(clean=True)
    assert again.epochs.entries() == [(1, 0), (2, 40)]


def test_missing_index_is_rebuilt(make_log: LogFactory) -> None:
    log = make_log(SMALL.with_overrides(index_interval_bytes=64))
    fill(log, 100)
    first = log.segments[0]
    entries = first.offset_index.entries
    log.close()
    os.unlink(first.offset_index.path)
    os.unlink(first.time_index.path)
    again = make_log(SMALL.with_overrides(index_interval_bytes=64), clean=True)
    rebuilt = again.segments[0]
    assert rebuilt.offset_index.entries == entries
    assert os.path.getsize(rebuilt.offset_index.path) == 8 * entries
    assert read_all(again) == list(range(100))


def test_corrupt_index_is_rebuilt_on_clean_start(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 100)
    first = log.segments[0]
    log.close()
    with open(first.offset_index.path, "r+b") as f:
        f.write(b"\x7f" * 8)  # first entry points far beyond the log
        f.seek(0, os.SEEK_END)
        f.write(b"\x00\x00\x00\x01\x00\x00\x00\x05")  # last entry: wrong batch
    again = make_log(clean=True)
    assert again.segments[0].trusted  # rebuilt by recovery
    assert read_all(again) == list(range(100))


def test_clean_shutdown_skips_recovery(
    make_log: LogFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = make_log()
    fill(log, 100)
    log.close()

    def no_recovery(self: LogSegment, epochs: object) -> int:
        raise AssertionError("recovery must not run after a clean shutdown")

    monkeypatch.setattr(LogSegment, "recover", no_recovery)
    again = make_log(clean=True)
    assert again.log_end_offset == 100
    assert again.recovery_point == 100
    assert read_all(again) == list(range(100))


def test_unclean_start_recovers_only_from_the_recovery_point(
    make_log: LogFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = make_log()
    fill(log, 100)
    log.close_handlers()
    recovered: list[int] = []
    original = LogSegment.recover

    def spy(self: LogSegment, epochs: object) -> int:
        recovered.append(self.base_offset)
        return original(self, epochs)  # type: ignore[arg-type]

    monkeypatch.setattr(LogSegment, "recover", spy)
    bases = [s.base_offset for s in log.segments]
    again = make_log(offsets=LoadOffsets(recovery_point=bases[-2] + 1))
    assert recovered == bases[-2:]
    assert again.recovery_point == bases[-2] + 1


@pytest.mark.parametrize("clean", [True, False])
def test_flipped_byte_in_a_sealed_segment_is_never_served(
    make_log: LogFactory, clean: bool
) -> None:
    log = make_log()
    fill(log, 100)
    first = log.segments[0]
    size = len(batch())
    log.close() if clean else log.close_handlers()
    bad_batch = 5
    flip_byte(first.log.path, bad_batch * size + size - 3)  # inside batch 5's record value
    again = make_log(clean=clean, offsets=LoadOffsets(recovery_point=50, high_watermark=100))
    # a read that reaches the bad batch stops just before it
    info = again.read(0, 10**6)
    assert base_offsets(info.read_bytes()) == list(range(bad_batch))
    assert info.length == bad_batch * size
    # a read that starts at it is an error, every time
    for _ in range(2):
        with pytest.raises(CorruptSegmentError) as exc:
            again.read(bad_batch, 10**6)
        assert exc.value.code == 56  # KAFKA_STORAGE_ERROR
        assert exc.value.position == bad_batch * size
    # the rest of the segment is still served
    assert base_offsets(again.read(bad_batch + 1, 10**6).read_bytes())[0] == bad_batch + 1


def test_flipped_header_length_is_detected(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 30)
    first = log.segments[0]
    size = len(batch())
    log.close()
    flip_byte(first.log.path, 2 * size + 10)  # batch 2's length field
    again = make_log(clean=True, offsets=LoadOffsets(high_watermark=30))
    assert base_offsets(again.read(0, 10**6).read_bytes()) == [0, 1]
    with pytest.raises(CorruptSegmentError):
        again.read(2, 10**6)


def test_verified_ranges_are_not_rechecked(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 30)
    log.close()
    again = make_log(clean=True)
    first = again.segments[0]
    assert not first.trusted
    data = again.read(0, 10**6).read_bytes()
    flip_byte(first.log.path, 100)  # rot after verification is not re-detected (by design)
    assert again.read(0, 10**6).length == len(data)
