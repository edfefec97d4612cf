"""Flushing: recovery point, flush policies, group commit on one worker thread."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest

from storage.errors import KafkaStorageError
from storage.flush import GroupCommitter
from storage.log import Log
from tests.storage.conftest import NOW, SMALL, FaultyFS, LogFactory, batch, fill


class GatedFS(FaultyFS):
    """fsync blocks on `gate` once armed, so a test can pile up requests behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.armed = False

    def fsync(self, fd: int) -> None:
        if self.armed:
            self.armed = False
            self.entered.set()
            assert self.gate.wait(10)
        super().fsync(fd)


def test_flush_advances_the_recovery_point(make_log: LogFactory) -> None:
    fs = FaultyFS()
    log = make_log(fs=fs)
    fill(log, 100)
    assert log.recovery_point == 0
    assert log.flush(40) == 40
    synced = len(fs.fsyncs)
    assert synced > 0
    assert log.flush(40) == 40
    assert len(fs.fsyncs) == synced  # nothing new to sync
    assert log.flush() == 100


def test_flush_writes_the_epoch_checkpoint(make_log: LogFactory) -> None:
    log = make_log()
    fill(log, 3, epoch=2)
    log.flush()
    with open(f"{log.dir}/leader-epoch-checkpoint") as f:
        assert f.read() == "0\n1\n2 0\n"


def test_flush_messages_policy(make_log: LogFactory) -> None:
    log = make_log(SMALL.with_overrides(flush_interval_messages=10))
    fill(log, 9)
    assert log.recovery_point == 0
    fill(log, 1)
    assert log.recovery_point == 10


def test_flush_ms_policy(make_log: LogFactory) -> None:
    log = make_log(SMALL.with_overrides(flush_interval_ms=1000))
    assert not log.needs_flush(NOW + 5000)  # nothing unflushed
    fill(log, 3)
    assert not log.needs_flush(NOW + 999)
    assert log.needs_flush(NOW + 1000)


def test_group_commit_merges_waiters_into_one_round(make_log: LogFactory) -> None:
    fs = GatedFS()
    committer = GroupCommitter(fs)
    log = make_log(SMALL.with_overrides(segment_bytes=1 << 20), fs=fs)  # no roll midway
    fill(log, 1)
    committer.flush(log).result(10)  # the epoch checkpoint is now durable
    fill(log, 4)
    fs.armed = True
    first = committer.flush(log)  # the worker takes it and blocks in the .log fsync
    assert fs.entered.wait(10)
    fs.fsyncs.clear()
    waiters: list[Future[int]] = []
    for _ in range(50):
        log.append_as_leader(batch(), 0, NOW)
        waiters.append(committer.flush(log))
    fs.gate.set()
    assert first.result(10) == 5
    results = [w.result(10) for w in waiters]
    assert results == [55] * 50
    assert committer.rounds == 3
    # the blocked round (.log, .index, .timeindex), then one merged round for all 50
    # waiters: each file once more
    names = [path.rsplit(".", 1)[1] for path in fs.fsyncs]
    assert names == ["log", "index", "timeindex"] * 2
    assert log.recovery_point == 55
    committer.close()


def test_group_commit_across_logs_and_tasks(make_log: LogFactory) -> None:
    committer = GroupCommitter()
    logs = [make_log(name=f"t-{i}") for i in range(5)]
    futures = []
    for log in logs:
        fill(log, 3)
        futures.append(committer.flush(log))
    order: list[str] = []

    def task_fn() -> int:
        order.append("task")
        return 7

    task = committer.submit(task_fn)
    assert [f.result(10) for f in futures] == [3] * 5
    assert task.result(10) == 7 and order == ["task"]
    assert all(log.recovery_point == 3 for log in logs)
    # nothing left to flush: resolved immediately with the recovery point
    assert committer.flush(logs[0]).result(0) == 3
    committer.close()
    with pytest.raises(RuntimeError):
        committer.submit(lambda: None)


def test_failed_fsync_fails_waiters_and_takes_the_log_offline(make_log: LogFactory) -> None:
    fs = FaultyFS()
    committer = GroupCommitter(fs)
    log = make_log(fs=fs)
    fill(log, 5)
    fs.fail_fsync = True
    future = committer.flush(log)
    with pytest.raises(KafkaStorageError):
        future.result(10)
    assert log.offline and log.recovery_point == 0
    with pytest.raises(KafkaStorageError):
        log.append_as_leader(batch(), 0, NOW)
    with pytest.raises(KafkaStorageError):
        log.read(0, 100)
    committer.close()


def test_sync_flush_failure_raises(make_log: LogFactory) -> None:
    fs = FaultyFS()
    log: Log = make_log(fs=fs)
    fill(log, 2)
    fs.fail_fsync = True
    with pytest.raises(KafkaStorageError):
        log.flush()
    assert log.offline


def test_truncation_during_a_flush_does_not_advance_the_recovery_point(
    make_log: LogFactory,
) -> None:
    fs = GatedFS()
    committer = GroupCommitter(fs)
    log = make_log(fs=fs)
    fill(log, 10)
    fs.armed = True
    future = committer.flush(log)
    assert fs.entered.wait(10)
    log.truncate_to(4)  # the plan in flight covered offsets that no longer exist
    fs.gate.set()
    future.result(10)
    assert log.recovery_point == 0
    committer.close()


def test_delayed_tasks_run_when_due() -> None:
    committer = GroupCommitter()
    done = threading.Event()
    committer.submit_after(0.01, done.set)
    assert done.wait(10)
    committer.close()
