"""`LogManager`: the log directories of one broker (Kafka's LogManager).

File format, per log dir: one `<topic>-<partition>` directory per partition,
`recovery-point-offset-checkpoint`, `replication-offset-checkpoint` (high watermarks),
`log-start-offset-checkpoint` (all Kafka's text format, see `storage/checkpoint.py`) and,
between a clean close and the next start, `.kafka_cleanshutdown`. A deleted partition's
directory is renamed `<topic>-<partition>.<uuid>-delete` and removed later.

Theory of operation. `startup()` loads every partition directory (recovering those that
need it: no clean-shutdown marker means every segment after the recovery point is
re-validated) and then removes the markers, so a crash from here on triggers recovery. All
logs share one `FileHandleCache` (bounded descriptors) and one `GroupCommitter` (the single
I/O worker thread for fsyncs, checkpoint writes and deletions). The broker calls the periodic
duties on its own timers: `checkpoint_offsets()` (Kafka: every 60 s for recovery points and
log starts, 5 s for high watermarks), `flush_dirty_logs()` (`flush.ms`), `cleanup_logs()`
(retention, `log.retention.check.interval.ms`). `close()` flushes every log, writes the
checkpoints and the markers.

Crash: checkpoints are written atomically; a recovery point in them never exceeds what was
fsynced (it is read from the logs, which advance it only after an fsync). Anything newer is
found again by recovery.

Thread safety: owner thread only (the event loop); I/O waits happen on the committer thread.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from functools import partial

from storage.checkpoint import (
    HIGH_WATERMARK_CHECKPOINT,
    LEADER_EPOCH_CHECKPOINT,
    LOG_START_OFFSET_CHECKPOINT,
    PARTITION_METADATA,
    RECOVERY_POINT_CHECKPOINT,
    CheckpointError,
    TopicPartition,
    create_epoch_placeholder,
    has_clean_shutdown_marker,
    read_offsets,
    remove_clean_shutdown_marker,
    write_clean_shutdown_marker,
    write_offsets,
    write_partition_metadata,
)
from storage.config import LogConfig
from storage.errors import KafkaStorageError
from storage.filecache import DEFAULT_MAX_OPEN_FILES, FileHandleCache
from storage.flush import FlushPlan, GroupCommitter
from storage.fs import OS_FS, FileSystem
from storage.loader import LoadOffsets, load_log
from storage.log import Log, partition_dir_name, wall_clock_ms

_log = logging.getLogger(__name__)

DELETE_DIR_SUFFIX = "-delete"
_SKIPPED_DIR_SUFFIXES = (DELETE_DIR_SUFFIX, "-future", "-stray")


def parse_partition_dir(name: str) -> TopicPartition | None:
    """`my-topic-3` -> ("my-topic", 3); None for anything else."""
    topic, sep, partition = name.rpartition("-")
    if not sep or not topic or not partition.isdigit():
        return None
    return topic, int(partition)


class LogManager:
    """Owns the logs of every partition in `log_dirs`.

    Files: per log dir, the partition directories, three offset checkpoints and the
    clean-shutdown marker. Threads: owner only; I/O waits run on the committer thread.
    Crash: no marker at start-up means recovery from each log's checkpointed recovery point.
    """

    def __init__(
        self,
        log_dirs: Sequence[str],
        default_config: LogConfig | None = None,
        *,
        fs: FileSystem = OS_FS,
        max_open_files: int = DEFAULT_MAX_OPEN_FILES,
        committer: GroupCommitter | None = None,
        clock: Callable[[], int] = wall_clock_ms,
        broker_epoch: int = -1,
    ) -> None:
        if not log_dirs:
            raise ValueError("at least one log dir is required")
        self.log_dirs = [os.path.abspath(d) for d in log_dirs]
        self.default_config = default_config or LogConfig()
        self.fs = fs
        self.cache = FileHandleCache(max_open_files)
        self.committer = committer or GroupCommitter(fs)
        self.clock = clock
        self.broker_epoch = broker_epoch
        self._logs: dict[TopicPartition, Log] = {}
        self._dir_of: dict[TopicPartition, str] = {}
        self._dir_counts = dict.fromkeys(self.log_dirs, 0)  # partitions per log dir
        self._closed = False

    # --- start-up -------------------------------------------------------------------------

    def startup(self, topic_configs: Mapping[str, LogConfig] | None = None) -> None:
        """Load (and recover) every partition directory, then clear clean-shutdown markers."""
        topic_configs = topic_configs or {}
        for log_dir in self.log_dirs:
            os.makedirs(log_dir, exist_ok=True)
            clean = has_clean_shutdown_marker(log_dir)
            _log.info("loading %s (%s shutdown)", log_dir, "clean" if clean else "unclean")
            offsets = self._read_checkpoints(log_dir)
            for name in sorted(os.listdir(log_dir)):
                self._load_dir(log_dir, name, clean, offsets, topic_configs)
            remove_clean_shutdown_marker(self.fs, log_dir)

    def _read_checkpoints(self, log_dir: str) -> dict[TopicPartition, LoadOffsets]:
        names = (RECOVERY_POINT_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT, HIGH_WATERMARK_CHECKPOINT)
        tables = []
        for name in names:
            try:
                tables.append(read_offsets(os.path.join(log_dir, name)))
            except CheckpointError as exc:
                _log.warning("ignoring unreadable checkpoint: %s", exc)
                tables.append({})
        recovery, starts, hws = tables
        return {
            tp: LoadOffsets(recovery.get(tp, 0), starts.get(tp, 0), hws.get(tp, 0))
            for tp in set(recovery) | set(starts) | set(hws)
        }

    def _load_dir(
        self,
        log_dir: str,
        name: str,
        clean: bool,
        offsets: Mapping[TopicPartition, LoadOffsets],
        topic_configs: Mapping[str, LogConfig],
    ) -> None:
        path = os.path.join(log_dir, name)
        if not os.path.isdir(path):
            return
        if name.endswith(DELETE_DIR_SUFFIX):
            self.committer.submit(lambda: shutil.rmtree(path, ignore_errors=True))
            return
        tp = parse_partition_dir(name)
        if tp is None or name.endswith(_SKIPPED_DIR_SUFFIXES):
            return
        config = topic_configs.get(tp[0], self.default_config)
        log = load_log(
            path, tp[0], tp[1], config,
            fs=self.fs, cache=self.cache, offsets=offsets.get(tp, LoadOffsets()),
            had_clean_shutdown=clean, committer=self.committer, clock=self.clock,
        )  # fmt: skip
        self._logs[tp] = log
        self._place(tp, log_dir)

    # --- logs -----------------------------------------------------------------------------

    def get_log(self, topic: str, partition: int) -> Log | None:
        return self._logs.get((topic, partition))

    def logs(self) -> list[Log]:
        return list(self._logs.values())

    def get_or_create_log(
        self,
        topic: str,
        partition: int,
        config: LogConfig | None = None,
        topic_id: uuid.UUID | None = None,
    ) -> Log:
        """The partition's log, created empty (in the least loaded log dir) if absent.

        A topic id is stored in `partition.metadata` (written on the I/O thread).
        """
        tp = (topic, partition)
        log = self._logs.get(tp)
        if log is None:
            log_dir = self._least_loaded_dir()
            path = os.path.join(log_dir, partition_dir_name(topic, partition))
            log = load_log(
                path, topic, partition, config or self.default_config,
                fs=self.fs, cache=self.cache, committer=self.committer, clock=self.clock,
            )  # fmt: skip
            log.parent_dir_dirty = True
            self._logs[tp] = log
            self._place(tp, log_dir)
            placeholder = os.path.join(path, LEADER_EPOCH_CHECKPOINT)
            self.committer.submit(partial(create_epoch_placeholder, self.fs, placeholder))
        elif config is not None:
            log.update_config(config)
        if topic_id is not None and log.topic_id != topic_id:
            self._record_topic_id(log, topic_id)
        return log

    def _least_loaded_dir(self) -> str:
        """The log dir holding the fewest partitions."""
        return min(self.log_dirs, key=self._dir_counts.__getitem__)

    def _place(self, tp: TopicPartition, log_dir: str) -> None:
        self._dir_of[tp] = log_dir
        self._dir_counts[log_dir] = self._dir_counts.get(log_dir, 0) + 1

    def _record_topic_id(self, log: Log, topic_id: uuid.UUID) -> None:
        if log.topic_id is not None:
            raise ValueError(f"{log} has topic id {log.topic_id}, not {topic_id}")
        log.topic_id = topic_id
        path = os.path.join(log.dir, PARTITION_METADATA)
        # Not fsynced: the broker's topic store holds the id durably, and a file that a crash
        # left unreadable is ignored at load and written again (see storage/checkpoint.py).
        self.committer.submit(lambda: write_partition_metadata(self.fs, path, topic_id, False))

    def delete_log(self, topic: str, partition: int) -> bool:
        """Remove a partition: its directory is renamed `...-delete` and removed later."""
        tp = (topic, partition)
        log = self._logs.pop(tp, None)
        if log is None:
            return False
        log_dir = self._dir_of.pop(tp)
        self._dir_counts[log_dir] -= 1
        log.close_handlers()
        doomed = os.path.join(
            log_dir, f"{partition_dir_name(topic, partition)}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}"
        )
        self.fs.replace(log.dir, doomed)
        log.moved_to(doomed)  # reads still outstanding reopen their files there
        remove = partial(shutil.rmtree, doomed, ignore_errors=True)
        log.when_unleased(partial(log.delete_later, remove))
        return True

    # --- periodic duties ------------------------------------------------------------------

    def checkpoint_offsets(self) -> Future[None]:
        """Write the three offset checkpoints of every log dir (on the I/O thread)."""
        snapshot = self._checkpoint_snapshot()
        return self.committer.submit(lambda: self._write_checkpoints(snapshot))

    def _checkpoint_snapshot(self) -> dict[str, tuple[dict[TopicPartition, int], ...]]:
        snapshot: dict[str, tuple[dict[TopicPartition, int], ...]] = {
            d: ({}, {}, {}) for d in self.log_dirs
        }
        for tp, log in self._logs.items():
            recovery, starts, hws = snapshot[self._dir_of[tp]]
            recovery[tp] = log.recovery_point
            starts[tp] = log.log_start_offset
            hws[tp] = log.high_watermark
        return snapshot

    def _write_checkpoints(
        self, snapshot: Mapping[str, tuple[dict[TopicPartition, int], ...]]
    ) -> None:
        names = (RECOVERY_POINT_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT, HIGH_WATERMARK_CHECKPOINT)
        for log_dir, tables in snapshot.items():
            for name, table in zip(names, tables, strict=True):
                write_offsets(self.fs, os.path.join(log_dir, name), table)

    def flush_dirty_logs(self, now_ms: int) -> list[Future[int]]:
        """`flush.ms` policy: request a flush of every log whose data is old enough."""
        return [self.committer.flush(log) for log in self._logs.values() if log.needs_flush(now_ms)]

    def cleanup_logs(self, now_ms: int) -> int:
        """Retention for every online log; returns the number of segments deleted."""
        deleted = 0
        for log in self._logs.values():
            if log.offline:
                continue
            try:
                deleted += log.delete_old_segments(now_ms)
            except KafkaStorageError as exc:  # e.g. a roll on a full disk: the others go on
                _log.error("retention of %s failed: %s", log, exc)
        return deleted

    # --- shutdown -------------------------------------------------------------------------

    def close(self) -> None:
        """Clean shutdown: seal and close every log, make it all durable, write checkpoints and
        the clean-shutdown markers (only if everything went right).

        Durability comes from one `syncfs` per filesystem holding a log dir, not from fsyncs
        file by file: a broker whose thousands of partitions were all written since their last
        flush would otherwise pay several journal commits per partition here (Kafka flushes
        each log in turn). Without syncfs, each log is fsynced as `Log.close` does.
        """
        if self._closed:
            return
        self._closed = True
        started = time.monotonic()
        self.committer.close()
        drained = time.monotonic()
        all_clean = True
        sealed: list[tuple[Log, FlushPlan | None]] = []
        for log in self._logs.values():
            try:
                sealed.append((log, log.close_before_syncfs()))
            except Exception:
                all_clean = False
                _log.exception("closing %s failed", log)
        closed = time.monotonic()
        all_clean = self._make_durable(sealed) and all_clean
        _log.info(
            "closed %d logs: I/O queue drained in %.2f s, sealed in %.2f s, synced in %.2f s",
            len(sealed), drained - started, closed - drained, time.monotonic() - closed,
        )  # fmt: skip
        all_clean = all_clean and not any(log.offline for log in self._logs.values())
        try:
            self._write_checkpoints(self._checkpoint_snapshot())
            if all_clean:
                for log_dir in self.log_dirs:
                    write_clean_shutdown_marker(self.fs, log_dir, self.broker_epoch)
        except OSError as exc:  # a full disk: no marker, so the next start recovers
            _log.error("shutdown checkpoints not written, the next start recovers: %s", exc)
        self.cache.close_all()

    def _make_durable(self, sealed: list[tuple[Log, FlushPlan | None]]) -> bool:
        """syncfs each filesystem once, then move the recovery points; False on failure."""
        plans = [(log, plan) for log, plan in sealed if plan is not None]
        if not plans:
            return True
        devices = {os.stat(d).st_dev: d for d in self.log_dirs}
        try:
            for log_dir in devices.values():
                self.fs.syncfs(log_dir)
        except OSError as exc:
            if exc.errno != errno.ENOSYS:
                _log.error("syncing the log dirs at shutdown failed: %s", exc)
                return False
            return self._fsync_each(plans)
        for log, plan in plans:
            log.on_flushed(plan, None)
        return True

    def _fsync_each(self, plans: list[tuple[Log, FlushPlan]]) -> bool:
        clean = True
        for log, plan in plans:
            try:
                plan.execute(self.fs)
            except OSError as exc:
                _log.error("flushing %s at shutdown failed: %s", log, exc)
                clean = False
                continue
            log.on_flushed(plan, None)
        return clean

    def abort(self) -> None:
        """Drop every descriptor without writing anything: a crash, as far as disk goes."""
        self._closed = True
        self.committer.close()
        for log in self._logs.values():
            log.close_handlers()
        self.cache.close_all()
