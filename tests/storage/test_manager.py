"""LogManager: start-up and recovery, checkpoints, markers, deletion, bounded descriptors."""

from __future__ import annotations

import errno
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import checkpoint as cp
from storage.manager import LogManager, parse_partition_dir
from tests.storage.conftest import NOW, SMALL, FaultyFS, NoSyncFS, base_offsets, batch


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def manager(tmp_path: Path, dirs: int = 1, **kwargs: object) -> LogManager:
    log_dirs = [str(tmp_path / f"d{i}") for i in range(dirs)]
    m = LogManager(log_dirs, SMALL, clock=lambda: NOW, **kwargs)  # type: ignore[arg-type]
    m.startup()
    return m


def test_parse_partition_dir() -> None:
    assert parse_partition_dir("my-topic-12") == ("my-topic", 12)
    assert parse_partition_dir("a.b_c-0") == ("a.b_c", 0)
    assert parse_partition_dir("nopartition") is None
    assert parse_partition_dir("t-x") is None


def test_clean_restart_round_trip(tmp_path: Path) -> None:
    m = manager(tmp_path, dirs=2)
    topic_id = uuid.uuid4()
    for p in range(4):
        log = m.get_or_create_log("orders", p, topic_id=topic_id)
        for _ in range(30):
            log.append_as_leader(batch(), 3, NOW)
        log.update_high_watermark(25)
    m.get_log("orders", 0).delete_records_before(5)  # type: ignore[union-attr]
    m.close()
    for d in m.log_dirs:
        assert cp.has_clean_shutdown_marker(d)
        assert sorted(cp.read_offsets(os.path.join(d, cp.HIGH_WATERMARK_CHECKPOINT)).values())
    counts = [len([n for n in os.listdir(d) if n.startswith("orders-")]) for d in m.log_dirs]
    assert counts == [2, 2]  # spread over the log dirs

    again = manager(tmp_path, dirs=2)
    for d in again.log_dirs:
        assert not cp.has_clean_shutdown_marker(d)  # removed at start-up
    for p in range(4):
        loaded = again.get_log("orders", p)
        assert loaded is not None
        log = loaded
        assert log.log_end_offset == 30 and log.high_watermark == 25
        assert log.recovery_point == 30
        assert log.topic_id == topic_id
        assert log.epochs.entries() == [(3, 5 if p == 0 else 0)]
    assert again.get_log("orders", 0).log_start_offset == 5  # type: ignore[union-attr]
    again.close()


def test_crash_restart_recovers_from_checkpoints(tmp_path: Path) -> None:
    m = manager(tmp_path)
    log = m.get_or_create_log("t", 0)
    for _ in range(100):
        log.append_as_leader(batch(), 0, NOW)
    log.flush(60)
    m.checkpoint_offsets().result(10)
    for _ in range(10):
        log.append_as_leader(batch(), 0, NOW)
    m.abort()
    path = os.path.join(m.log_dirs[0], cp.RECOVERY_POINT_CHECKPOINT)
    assert cp.read_offsets(path) == {("t", 0): 60}
    again = manager(tmp_path)
    loaded = again.get_log("t", 0)
    assert loaded is not None
    log = loaded
    assert log.log_end_offset == 110  # nothing was lost: the page cache survived
    assert log.recovery_point == 60
    assert base_offsets(log.read(100, 10**6).read_bytes())[0] == 100
    again.close()


def test_delete_log_renames_then_removes(tmp_path: Path) -> None:
    m = manager(tmp_path)
    log = m.get_or_create_log("gone", 0, SMALL.with_overrides(file_delete_delay_ms=0))
    log.append_as_leader(batch(), 0, NOW)
    assert m.delete_log("gone", 0)
    assert not m.delete_log("gone", 0)
    assert m.get_log("gone", 0) is None
    m.committer.submit(lambda: None).result(10)
    m.close()
    assert os.listdir(m.log_dirs[0]) == sorted(os.listdir(m.log_dirs[0]))
    assert not [n for n in os.listdir(m.log_dirs[0]) if n.startswith("gone")]


def test_stray_delete_dirs_are_removed_at_startup(tmp_path: Path) -> None:
    stray = tmp_path / "d0" / "old-0.0123abcd-delete"
    stray.mkdir(parents=True)
    (stray / "00000000000000000000.log").write_bytes(b"")
    m = manager(tmp_path)
    m.committer.submit(lambda: None).result(10)
    assert not stray.exists()
    assert m.logs() == []
    m.close()


def test_periodic_duties(tmp_path: Path) -> None:
    m = manager(tmp_path)
    config = SMALL.with_overrides(retention_ms=1000, flush_interval_ms=500)
    log = m.get_or_create_log("t", 0, config)
    for i in range(100):
        log.append_as_leader(batch(timestamp=NOW + i), 0, NOW)
    log.update_high_watermark(100)
    futures = m.flush_dirty_logs(NOW + 10**6)
    assert [f.result(10) for f in futures] == [100]
    assert m.cleanup_logs(NOW + 1000 + 99) > 0
    assert log.log_start_offset > 0
    m.close()


@pytest.fixture
def memory_dir(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs directory when there is one: creating 6,000 files on a busy disk is slow, and
    descriptor accounting does not depend on the filesystem."""
    if not os.path.isdir("/dev/shm"):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir="/dev/shm") as name:
        yield Path(name)


def test_descriptors_stay_bounded_with_many_partitions(memory_dir: Path) -> None:
    tmp_path = memory_dir
    cap = 64
    config = SMALL.with_overrides(segment_bytes=200, segment_index_bytes=64, index_interval_bytes=0)
    m = LogManager(
        [str(tmp_path / "d")], config, fs=NoSyncFS(), max_open_files=cap, clock=lambda: NOW
    )
    m.startup()
    baseline = open_fds()
    peak = 0
    logs = [m.get_or_create_log("many", p) for p in range(2000)]
    for round_ in range(2):
        for log in logs:
            log.append_as_leader(batch(), 0, NOW)
            assert base_offsets(log.read(round_, 1000).read_bytes())[0] == round_
            peak = max(peak, m.cache.open_count)
        assert open_fds() - baseline <= cap + 2
    for log in logs[::20]:  # sealed segments: their indexes map on demand, through the LRU
        log.roll()
        log.append_as_leader(batch(timestamp=NOW + 5), 0, NOW)
    for log in logs[::20]:
        found = log.offset_for_timestamp(NOW + 1)
        assert found is not None and found.offset == 2
        assert base_offsets(log.read(1, 10**6).read_bytes()) == [1]
        peak = max(peak, m.cache.open_count)
    assert peak <= cap
    assert open_fds() - baseline <= cap + 2
    assert m.cache.open_count <= cap
    m.close()
    assert m.cache.open_count == 0


class SyncfsFS(FaultyFS):
    """Records syncfs calls; `syncfs_error` makes them fail with that errno."""

    def __init__(self, syncfs_error: int | None = None) -> None:
        super().__init__()
        self.syncfs_error = syncfs_error
        self.syncfs_calls: list[str] = []

    def syncfs(self, path: str) -> None:
        self.syncfs_calls.append(path)
        if self.syncfs_error is not None:
            raise OSError(self.syncfs_error, os.strerror(self.syncfs_error))
        super().syncfs(path)


def written_partitions(tmp_path: Path, fs: FaultyFS, count: int = 20) -> LogManager:
    m = manager(tmp_path, dirs=2, fs=fs)
    for p in range(count):
        log = m.get_or_create_log("many", p)
        log.append_as_leader(batch(), 0, NOW)
        log.update_high_watermark(1)
    m.committer.submit(lambda: None).result(10)
    fs.fsyncs.clear()
    return m


def test_clean_shutdown_syncs_each_filesystem_once_instead_of_each_file(tmp_path: Path) -> None:
    fs = SyncfsFS()
    m = written_partitions(tmp_path, fs)
    m.close()
    assert len(fs.syncfs_calls) == 1  # both log dirs are on one filesystem
    segment_fsyncs = [p for p in fs.fsyncs if "many-" in p]
    assert segment_fsyncs == []  # no fsync file by file
    for d in m.log_dirs:
        assert cp.has_clean_shutdown_marker(d)
        assert set(cp.read_offsets(os.path.join(d, cp.RECOVERY_POINT_CHECKPOINT)).values()) == {1}
    again = manager(tmp_path, dirs=2)
    for p in range(20):
        log = again.get_log("many", p)
        assert log is not None and log.recovery_point == 1 and log.log_end_offset == 1
        assert log.epochs.entries() == [(0, 0)]  # the checkpoint written at close
    again.close()


def test_without_syncfs_each_log_is_fsynced(tmp_path: Path) -> None:
    fs = SyncfsFS(errno.ENOSYS)
    m = written_partitions(tmp_path, fs, count=3)
    m.close()
    for p in range(3):
        assert any(path.endswith(f"many-{p}/00000000000000000000.log") for path in fs.fsyncs)
    assert all(cp.has_clean_shutdown_marker(d) for d in m.log_dirs)


def test_failed_syncfs_leaves_no_clean_shutdown_marker(tmp_path: Path) -> None:
    fs = SyncfsFS(errno.EIO)
    m = written_partitions(tmp_path, fs, count=3)
    m.close()
    assert not any(cp.has_clean_shutdown_marker(d) for d in m.log_dirs)
    recovery = {}
    for d in m.log_dirs:
        recovery.update(cp.read_offsets(os.path.join(d, cp.RECOVERY_POINT_CHECKPOINT)))
    assert set(recovery.values()) == {0}  # nothing claimed durable
    again = manager(tmp_path, dirs=2)  # recovers, and finds every batch
    assert all(again.get_log("many", p).log_end_offset == 1 for p in range(3))  # type: ignore[union-attr]
    again.close()


def test_new_logs_get_an_epoch_placeholder_written_in_place_at_close(tmp_path: Path) -> None:
    m = manager(tmp_path)
    log = m.get_or_create_log("fresh", 0)
    log.append_as_leader(batch(), 4, NOW)
    m.committer.submit(lambda: None).result(10)
    path = os.path.join(log.dir, cp.LEADER_EPOCH_CHECKPOINT)
    assert os.path.getsize(path) == 0  # the placeholder, created off the owner thread
    inode = os.stat(path).st_ino
    m.close()
    assert os.stat(path).st_ino == inode and cp.read_epochs(path) == [(4, 0)]
    again = manager(tmp_path)
    assert again.get_log("fresh", 0).epochs.entries() == [(4, 0)]  # type: ignore[union-attr]
    again.close()


def test_a_crash_before_the_first_epoch_checkpoint_rebuilds_it(tmp_path: Path) -> None:
    m = manager(tmp_path)
    log = m.get_or_create_log("fresh", 0)
    for epoch in (2, 2, 5):
        log.append_as_leader(batch(), epoch, NOW)
    m.committer.submit(lambda: None).result(10)
    m.abort()  # the placeholder is still empty
    again = manager(tmp_path)
    assert again.get_log("fresh", 0).epochs.entries() == [(2, 0), (5, 2)]  # type: ignore[union-attr]
    again.close()
