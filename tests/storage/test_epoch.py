"""LeaderEpochFileCache: Kafka's assign/truncate rules and OffsetForLeaderEpoch answers."""

from __future__ import annotations

import pytest

from storage.epoch import EpochEntry, LeaderEpochFileCache


def cache(*entries: tuple[int, int]) -> LeaderEpochFileCache:
    return LeaderEpochFileCache(entries)


def test_assign_ignores_same_epoch_and_keeps_monotonic() -> None:
    c = cache()
    assert c.assign(1, 0)
    assert not c.assign(1, 5)  # same epoch, later offset: no change
    assert c.assign(2, 10)
    assert c.entries() == [EpochEntry(1, 0), EpochEntry(2, 10)]
    assert c.dirty


def test_assign_truncates_conflicting_entries() -> None:
    c = cache((1, 0), (2, 10), (4, 20))
    c.assign(3, 15)  # epoch 4 at 20 conflicts (higher epoch, higher offset)
    assert c.entries() == [EpochEntry(1, 0), EpochEntry(2, 10), EpochEntry(3, 15)]
    c.assign(5, 10)  # starts where epoch 2 started: epochs 2 and 3 go
    assert c.entries() == [EpochEntry(1, 0), EpochEntry(5, 10)]


def test_assign_rejects_negative() -> None:
    with pytest.raises(ValueError):
        cache().assign(-1, 0)


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (-1, (-1, -1)),  # undefined epoch
        (0, (0, 5)),  # below the first epoch: first epoch's start offset
        (1, (1, 10)),  # exact: start of the next epoch
        (2, (1, 10)),  # gap: largest epoch below, start of the next one
        (3, (3, 20)),
        (4, (4, 100)),  # latest epoch: the log end offset
        (5, (-1, -1)),  # above every epoch
    ],
)
def test_end_offset_for(requested: int, expected: tuple[int, int]) -> None:
    c = cache((1, 5), (3, 10), (4, 20))
    assert c.end_offset_for(requested, log_end_offset=100) == expected


def test_end_offset_for_empty_cache() -> None:
    assert cache().end_offset_for(3, 100) == (-1, -1)


def test_truncate_from_end() -> None:
    c = cache((1, 0), (2, 10), (3, 20))
    assert not c.truncate_from_end(21)
    assert c.truncate_from_end(10)
    assert c.entries() == [EpochEntry(1, 0)]


def test_truncate_from_start_rewrites_the_first_entry() -> None:
    c = cache((1, 0), (2, 10), (3, 20))
    assert c.truncate_from_start(15)
    assert c.entries() == [EpochEntry(2, 15), EpochEntry(3, 20)]
    assert not c.truncate_from_start(15)
    assert c.truncate_from_start(20)
    assert c.entries() == [EpochEntry(3, 20)]
    assert not c.truncate_from_start(3)


def test_epoch_for_offset() -> None:
    c = cache((1, 5), (3, 10))
    assert c.epoch_for_offset(4) is None
    assert c.epoch_for_offset(5) == 1
    assert c.epoch_for_offset(9) == 1
    assert c.epoch_for_offset(10) == 3
    assert c.epoch_for_offset(99) == 3


def test_snapshot_clears_dirty() -> None:
    c = cache()
    c.assign(1, 0)
    assert c.snapshot() == (EpochEntry(1, 0),)
    assert not c.dirty
