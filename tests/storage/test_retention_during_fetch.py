"""Segments deleted while a read of them is outstanding: the read's bytes can still be sent.

A fetch response holds byte ranges (`FetchDataInfo`) whose descriptors are pinned only while
each is sent. Retention, DeleteRecords or a topic deletion can happen between the read and the
send, and the LRU may have closed the descriptor meanwhile; with `file.delete.delay.ms=0` the
file would be unlinked at once. The range's lease keeps the file reachable by its new name
until the range is dropped, then the deletion goes ahead.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from storage.errors import OffsetOutOfRangeError
from storage.filecache import FileHandleCache
from storage.flush import GroupCommitter
from storage.log import Log
from storage.manager import LogManager
from tests.storage.conftest import NOW, SMALL, LogFactory, base_offsets, batch, fill


def drain(committer: GroupCommitter) -> None:
    """Return once every delayed task already due when called has run.

    A round runs queued tasks before due timers; the second no-op lands in a later round.
    """
    for _ in range(2):
        committer.submit(lambda: None).result(10)


def deleted_files(log: Log) -> list[str]:
    return sorted(n for n in os.listdir(log.dir) if n.endswith(".deleted"))


def test_a_read_not_yet_sent_survives_delete_records(make_log: LogFactory) -> None:
    cache = FileHandleCache(8)
    log = make_log(cache=cache)  # no committer, file.delete.delay.ms=0: unlinked at once
    fill(log, 150)
    second = log.segments[1].base_offset
    info = log.read(0, 1000)
    expected = info.read_bytes()
    assert base_offsets(expected)[0] == 0

    assert log.delete_records_before(second) == second
    cache.close_all()  # and the LRU closed every descriptor meanwhile
    assert deleted_files(log), "unlinked under an outstanding read"
    with info.open_fd() as fd:  # the send: reopens the renamed file
        assert os.pread(fd, info.length, info.position) == expected
    assert info.read_bytes() == expected

    del info  # the response was sent and dropped: now the files go
    assert deleted_files(log) == []
    with pytest.raises(OffsetOutOfRangeError):
        log.read(0, 1000)
    assert base_offsets(log.read(second, 1000).read_bytes())[0] == second


def test_a_pinned_send_survives_retention_and_frees_the_file_after(make_log: LogFactory) -> None:
    committer = GroupCommitter()
    log = make_log(SMALL.with_overrides(retention_bytes=SMALL.segment_bytes))
    log.committer = committer
    fill(log, 150)
    info = log.read(0, 1000)
    expected = info.read_bytes()
    with info.open_fd() as fd:  # sendfile in flight
        assert log.delete_old_segments(NOW) > 0  # size retention
        assert log.log_start_offset > 0
        drain(committer)  # file.delete.delay.ms=0 has passed: still leased, still there
        assert deleted_files(log)
        assert os.pread(fd, info.length, info.position) == expected
        segment_file = info.file
        assert segment_file is not None
    assert not segment_file.is_open  # a retired file closes as soon as nobody uses it
    del info
    drain(committer)
    assert deleted_files(log) == []
    committer.close()


def test_every_outstanding_read_holds_its_own_segment(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 150)
    bases = [s.base_offset for s in log.segments]
    first, second = log.read(bases[0], 1000), log.read(bases[1], 1000)
    log.delete_records_before(bases[2])
    assert len(deleted_files(log)) == 6  # two segments, three files each
    del first
    assert len(deleted_files(log)) == 3
    del second
    assert deleted_files(log) == []


def test_a_dropped_read_in_a_reference_cycle_releases_on_collection(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 150)
    holder: list[object] = [log.read(0, 1000)]
    holder.append(holder)  # a cycle: only the garbage collector frees it
    log.delete_records_before(log.segments[1].base_offset)
    del holder
    gc.collect()
    assert deleted_files(log) == []


def test_topic_deletion_keeps_outstanding_reads_sendable(tmp_path: Path) -> None:
    manager = LogManager([str(tmp_path / "d0")], SMALL)  # file.delete.delay.ms=0
    manager.startup()
    log = manager.get_or_create_log("gone", 0)
    for _ in range(20):
        log.append_as_leader(batch(), 0, NOW)
    log.update_high_watermark(log.log_end_offset)
    info = log.read(0, 10**6)
    expected = info.read_bytes()
    assert manager.delete_log("gone", 0)
    manager.cache.close_all()
    (doomed,) = [n for n in os.listdir(tmp_path / "d0") if n.startswith("gone-0.")]
    assert info.read_bytes() == expected  # found in the renamed directory
    drain(manager.committer)
    assert (tmp_path / "d0" / doomed).exists()  # kept while the read is outstanding
    del info
    drain(manager.committer)
    assert not (tmp_path / "d0" / doomed).exists()
    manager.close()
