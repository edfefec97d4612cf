"""Group commit: fsyncs, checkpoint writes and file deletions on one worker thread.

Theory of operation. fsync must never run on the event loop, and a topic that flushes
before acknowledging must not pay one fsync per produce request. The owner thread asks
`GroupCommitter.flush(log, up_to)` and gets a `concurrent.futures.Future` (wrap it with
`asyncio.wrap_future`); the request carries a `FlushPlan` computed on the owner thread (the
files to fsync, a snapshot of the leader-epoch entries if they changed, whether the
directory gained files), so the worker never reads the log's mutable state. Requests for
the same log that arrive while the worker is busy are merged into one plan: the next round
fsyncs each file once and completes every waiter, so N concurrent "flush up to X" callers
cost one fsync per file per round. When the plan has run, the log's recovery point moves to
the plan's offset (unless the log was truncated meanwhile: `generation`), and each future
resolves to that offset. A failed fsync fails every waiter of that log with
KafkaStorageError and takes the log offline: after a failed fsync the kernel may have
dropped the dirty pages, so nothing it reported as written can be trusted (fsyncgate). A
leader-epoch checkpoint that does not fit on a full disk fails the waiters too, but leaves the
log online: no written byte is in doubt, and the next flush writes the checkpoint again.

The same thread runs one-off tasks (`submit`: checkpoint files) in order, and delayed tasks
(`submit_after`: unlinking `.deleted` segment files after `file.delete.delay.ms`).

Crash: nothing is durable here; a plan that did not complete did not move the recovery
point, so recovery re-validates what it covered. Delayed deletions that never ran leave
`.deleted` files, which the loader removes at start-up.

Thread safety: `flush`, `submit`, `submit_after`, `close` may be called from any thread;
`flush` computes its plan on the caller's thread, which must own the log.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from storage.checkpoint import write_epochs
from storage.errors import KafkaStorageError
from storage.fs import OS_FS, FileSystem

_log = logging.getLogger(__name__)

T = TypeVar("T")


class Flushable(Protocol):
    """What the committer needs from a Log."""

    def flush_plan(self, up_to: int | None = None) -> FlushPlan | None: ...

    @property
    def recovery_point(self) -> int: ...

    def on_flushed(self, plan: FlushPlan, error: BaseException | None) -> None: ...


class NoSpaceForCheckpoint(OSError):
    """The leader-epoch checkpoint did not fit on the disk (ENOSPC, EDQUOT).

    Unlike a failed fsync this puts no written data in doubt: the old checkpoint is intact
    (checkpoints are replaced atomically), the flush just did not happen and is retried.
    """


@dataclass(frozen=True)
class FlushPlan:
    """Everything a worker needs to make a log durable up to `up_to`."""

    up_to: int
    generation: int
    paths: tuple[str, ...]
    dir_paths: tuple[str, ...]
    epochs: tuple[tuple[int, int], ...] | None
    epoch_path: str

    def execute(self, fs: FileSystem, fsync: bool = True) -> None:
        """Epoch checkpoint first, then every file, then the directory (raises OSError).

        A checkpoint that does not fit on a full disk raises `NoSpaceForCheckpoint`. With
        `fsync=False` only the checkpoint is written, unsynced: the caller syncs the whole
        filesystem next (a clean shutdown).
        """
        if self.epochs is not None:
            try:
                write_epochs(fs, self.epoch_path, self.epochs, fsync)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise NoSpaceForCheckpoint(exc.errno, str(exc)) from exc
                raise
        if not fsync:
            return
        for path in self.paths:
            # A file renamed for deletion meanwhile has nothing left to make durable.
            with contextlib.suppress(FileNotFoundError):
                fs.fsync_path(path)
        for directory in self.dir_paths:
            fs.fsync_dir(directory)

    def merge(self, newer: FlushPlan) -> FlushPlan:
        """One plan covering both; after a truncation only the newer offset holds."""
        same = newer.generation == self.generation
        up_to = max(self.up_to, newer.up_to) if same else newer.up_to
        paths = tuple(dict.fromkeys(self.paths + newer.paths))
        return FlushPlan(
            up_to=up_to,
            generation=max(self.generation, newer.generation),
            paths=paths,
            dir_paths=tuple(dict.fromkeys(self.dir_paths + newer.dir_paths)),
            epochs=newer.epochs if newer.epochs is not None else self.epochs,
            epoch_path=newer.epoch_path,
        )


_Task = tuple[Callable[[], Any], Future[Any]]


@dataclass
class _Group:
    log: Flushable
    plan: FlushPlan
    futures: list[Future[int]] = field(default_factory=list)


_Work = tuple[list[_Task], list[_Group], list[Callable[[], Any]]]


class GroupCommitter:
    """One background thread for fsyncs (group committed), checkpoints and deletions.

    File: none of its own; it fsyncs segment files, indexes and directories and writes
    checkpoint files handed to it. Threads: requests from any thread (a flush request's plan
    is built on the log owner's); work on its own thread. Crash: an unfinished plan never
    moved a recovery point; undone deletions leave `.deleted` files the loader removes.
    """

    def __init__(self, fs: FileSystem = OS_FS, name: str = "kbroker-log-io") -> None:
        self.fs = fs
        self._name = name
        self._cond = threading.Condition()
        self._groups: dict[int, _Group] = {}
        self._tasks: deque[_Task] = deque()
        self._timers: list[tuple[float, int, Callable[[], Any]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closing = False
        self.rounds = 0  # flush plans executed (a merged plan counts once)

    # --- requests (any thread) -------------------------------------------------------------

    def flush(self, log: Flushable, up_to: int | None = None) -> Future[int]:
        """Future of the offset the log is durable up to once it covers `up_to`."""
        future: Future[int] = Future()
        plan = log.flush_plan(up_to)
        if plan is None:
            future.set_result(log.recovery_point)
            return future
        with self._cond:
            self._check_open()
            group = self._groups.get(id(log))
            if group is None:
                self._groups[id(log)] = _Group(log, plan, [future])
            else:
                group.plan = group.plan.merge(plan)
                group.futures.append(future)
            self._wake()
        return future

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run `fn` on the worker, after everything submitted before it."""
        future: Future[T] = Future()
        with self._cond:
            self._check_open()
            self._tasks.append((fn, future))
            self._wake()
        return future

    def submit_after(self, delay_s: float, fn: Callable[[], Any]) -> None:
        """Run `fn` on the worker no sooner than `delay_s` from now (errors are logged)."""
        with self._cond:
            self._check_open()
            heapq.heappush(self._timers, (time.monotonic() + delay_s, next(self._seq), fn))
            self._wake()

    def close(self) -> None:
        """Finish queued flushes and tasks and stop; delayed tasks not yet due are dropped."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        self._drain_now()

    def _check_open(self) -> None:
        if self._closing:
            raise RuntimeError("GroupCommitter is closed")

    def _wake(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        self._cond.notify()

    # --- worker --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                work = self._wait_for_work()
                if work is None:
                    return
            tasks, groups, timers = work
            self._execute(tasks, groups, timers)

    def _wait_for_work(self) -> _Work | None:
        while True:
            now = time.monotonic()
            due = []
            while self._timers and self._timers[0][0] <= now:
                due.append(heapq.heappop(self._timers)[2])
            if self._tasks or self._groups or due:
                tasks, self._tasks = list(self._tasks), deque()
                groups, self._groups = list(self._groups.values()), {}
                return tasks, groups, due
            if self._closing:
                return None
            timeout = self._timers[0][0] - now if self._timers else None
            self._cond.wait(timeout)

    def _drain_now(self) -> None:
        with self._cond:
            tasks, self._tasks = list(self._tasks), deque()
            groups, self._groups = list(self._groups.values()), {}
        self._execute(tasks, groups, [])

    def _execute(
        self,
        tasks: list[_Task],
        groups: list[_Group],
        timers: list[Callable[[], Any]],
    ) -> None:
        for fn, future in tasks:
            _run_task(fn, future)
        for group in groups:
            self._flush_group(group)
        for timer_fn in timers:
            try:
                timer_fn()
            except Exception:
                _log.exception("delayed storage task failed")

    def _flush_group(self, group: _Group) -> None:
        self.rounds += 1
        error: BaseException | None = None
        failure: OSError | None = None
        try:
            group.plan.execute(self.fs)
        except OSError as exc:
            failure, error = exc, KafkaStorageError(f"flush failed: {exc}")
            _log.error("flush of %s failed: %s", group.plan.paths, exc)
        group.log.on_flushed(group.plan, failure)
        for future in group.futures:
            if error is None:
                future.set_result(group.plan.up_to)
            else:
                future.set_exception(error)


def _run_task(fn: Callable[[], Any], future: Future[Any]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn()
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(result)
