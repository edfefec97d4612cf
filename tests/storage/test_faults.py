"""Disk faults on append: ENOSPC leaves the log consistent and readable."""

from __future__ import annotations

import os

import pytest

from storage.errors import KafkaStorageError
from tests.storage.conftest import NOW, FaultyFS, LogFactory, base_offsets, batch, fill


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
