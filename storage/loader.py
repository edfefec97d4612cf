"""Loading a partition directory into a `Log`, with crash recovery (Kafka's LogLoader).

Theory of operation.

1. Clean the directory: stray `.deleted` and `.tmp` files (interrupted deletions and
   checkpoint writes) are removed, and index files (`.index`, `.timeindex`, `.txnindex`)
   without a `.log` are orphans.
2. Open every segment. A segment whose index files are missing, or (when recovery will not
   cover it) fail the sanity check, is recovered: re-validated and its indexes rebuilt.
3. Without the clean-shutdown marker, every segment from the one holding the recovery point
   on is recovered (`LogSegment.recover`: CRC of every batch, torn or corrupt tail cut off,
   indexes rebuilt). Once a segment had to be cut, all later segments are deleted: data after
   a hole cannot be trusted. With the marker the files are trusted, except that the last
   segment must end exactly at a batch boundary (otherwise it is recovered too).
4. The log end offset comes from the last segment; the log start offset is
   max(checkpoint, first segment base); the recovery point is the log end after a clean
   shutdown, else min(checkpoint, log end). If the log end is below the checkpointed log
   start (segments deleted behind our back) the log restarts empty at the log start.
5. Leader epochs come from `leader-epoch-checkpoint` (rebuilt from batch headers when it is
   missing or unreadable) plus whatever recovery saw, then are truncated to the log end and
   log start, as Kafka does.

Transaction indexes (`.txnindex`) are not rebuilt here: the entries need the producer state,
which the partition loads after the log; it drops every entry from its replay start on and
rebuilds them from that replay (see `kbroker/partition.py`).

Segments loaded without recovery stay *untrusted* until a read checks them (see
`storage/segment.py`), so a byte that rotted on disk is reported, never served.

Thread safety: runs on the thread that will own the log, before anyone else sees it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable

from protocol.errors import ProtocolError
from storage.checkpoint import (
    LEADER_EPOCH_CHECKPOINT,
    PARTITION_METADATA,
    CheckpointError,
    read_epochs,
    read_partition_metadata,
)
from storage.config import LogConfig
from storage.epoch import LeaderEpochFileCache
from storage.errors import CorruptIndexError
from storage.filecache import FileHandleCache
from storage.flush import GroupCommitter
from storage.fs import FileSystem
from storage.log import Log, wall_clock_ms
from storage.scan import iter_file_headers
from storage.segment import (
    DELETED_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    LogSegment,
)
from storage.txn_index import TXN_INDEX_SUFFIX

_log = logging.getLogger(__name__)


class LoadOffsets:
    """Checkpointed offsets for one partition (0 when a checkpoint does not list it)."""

    def __init__(
        self, recovery_point: int = 0, log_start_offset: int = 0, high_watermark: int = 0
    ) -> None:
        self.recovery_point = recovery_point
        self.log_start_offset = log_start_offset
        self.high_watermark = high_watermark


def load_log(
    directory: str,
    topic: str,
    partition: int,
    config: LogConfig,
    *,
    fs: FileSystem,
    cache: FileHandleCache,
    offsets: LoadOffsets | None = None,
    had_clean_shutdown: bool = False,
    committer: GroupCommitter | None = None,
    clock: Callable[[], int] = wall_clock_ms,
) -> Log:
    """Open (creating if absent) the partition directory and recover it as needed."""
    offsets = offsets or LoadOffsets()
    os.makedirs(directory, exist_ok=True)
    log = Log(
        directory, topic, partition, config, fs=fs, cache=cache, committer=committer, clock=clock
    )
    _clean_directory(fs, directory)
    epochs, epochs_trusted = _read_epoch_checkpoint(directory)
    log.epochs = epochs
    segments = _open_segments(log, offsets, had_clean_shutdown)
    if not had_clean_shutdown:
        segments = _recover_from(log, segments, offsets.recovery_point)
    if not epochs_trusted:
        _rebuild_epochs(log, segments)
    _install(log, segments, offsets, had_clean_shutdown)
    log.topic_id = _read_topic_id(directory)
    return log


def _clean_directory(fs: FileSystem, directory: str) -> None:
    names = set(os.listdir(directory))
    for name in sorted(names):
        path = os.path.join(directory, name)
        if name.endswith((DELETED_SUFFIX, ".tmp", ".cleaned")):
            _log.info("removing stray file %s", path)
            fs.unlink(path)
        elif name.endswith((INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX)):
            stem = name.rsplit(".", 1)[0]
            if stem + LOG_SUFFIX not in names:
                _log.warning("removing orphaned index file %s", path)
                fs.unlink(path)


def _segment_bases(directory: str) -> list[int]:
    bases = []
    for name in os.listdir(directory):
        stem, dot, ext = name.partition(".")
        if dot and ext == "log" and stem.isdigit() and len(stem) == 20:
            bases.append(int(stem))
    return sorted(bases)


def _open_segments(log: Log, offsets: LoadOffsets, clean: bool) -> list[LogSegment]:
    segments = []
    now = log.clock()
    for base in _segment_bases(log.dir):
        segment = LogSegment.open_existing(log.dir, base, log.config, log.cache, log.fs, now)
        segments.append(segment)
    for i, segment in enumerate(segments):
        upper = segments[i + 1].base_offset if i + 1 < len(segments) else None
        will_recover = not clean and (upper is None or upper > offsets.recovery_point)
        if not segment.indexes_exist():
            if clean or not will_recover:
                _log.error("index files of %s are missing; rebuilding", segment.log.path)
            _recover_segment(segment, log.epochs)
        elif not will_recover:
            try:
                segment.sanity_check()
            except CorruptIndexError as exc:
                _log.warning("corrupt index for %s (%s); rebuilding", segment.log.path, exc)
                _recover_segment(segment, log.epochs)
    return segments


def _recover_segment(segment: LogSegment, epochs: LeaderEpochFileCache | None) -> int:
    truncated = segment.recover(epochs)
    if truncated:
        _log.warning(
            "truncated %d invalid bytes at the end of %s (kept %d bytes)",
            truncated,
            segment.log.path,
            segment.size,
        )
    return truncated


def _recover_from(log: Log, segments: list[LogSegment], recovery_point: int) -> list[LogSegment]:
    """Recover every segment from the one holding the recovery point; drop what follows a cut."""
    start = 0
    for i, segment in enumerate(segments):
        if segment.base_offset <= recovery_point:
            start = i
    for i in range(start, len(segments)):
        segment = segments[i]
        _log.info("recovering unflushed segment %s of %s", segment.base_offset, log.dir)
        if _recover_segment(segment, log.epochs) > 0 and i + 1 < len(segments):
            doomed = segments[i + 1 :]
            _log.warning("deleting %d segments after the corrupt one: %s", len(doomed), doomed)
            for later in doomed:
                later.rename_with_suffix(DELETED_SUFFIX)
                for path in later.flush_paths():
                    _unlink_quietly(log.fs, path)
            return segments[: i + 1]
    return segments


def _unlink_quietly(fs: FileSystem, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        fs.unlink(path)


def _install(log: Log, segments: list[LogSegment], offsets: LoadOffsets, clean: bool) -> None:
    if not segments:
        segments = [
            LogSegment.create(
                log.dir, offsets.log_start_offset, log.config, log.cache, log.fs, log.clock()
            )
        ]
    for segment in segments:
        log._add_segment(segment)
    last = segments[-1]
    next_offset, aligned = last.read_next_offset()
    if not aligned:
        _log.warning("%s does not end at a batch boundary; recovering it", last.log.path)
        _recover_segment(last, log.epochs)
        next_offset, _ = last.read_next_offset()
    last.make_active()
    log._next_offset = next_offset
    if next_offset < offsets.log_start_offset:
        _log.warning(
            "log end %d is below log start %d in %s; starting empty",
            next_offset,
            offsets.log_start_offset,
            log.dir,
        )
        log.truncate_fully_and_start_at(offsets.log_start_offset)
    log._log_start_offset = max(offsets.log_start_offset, log._bases[0])
    log.epochs.truncate_from_end(log._next_offset)
    log.epochs.truncate_from_start(log._log_start_offset)
    recovery_point = log._next_offset if clean else min(offsets.recovery_point, log._next_offset)
    log._recovery_point = max(recovery_point, 0)
    log.update_high_watermark(offsets.high_watermark)
    log._dir_dirty = False


def _read_epoch_checkpoint(directory: str) -> tuple[LeaderEpochFileCache, bool]:
    path = os.path.join(directory, LEADER_EPOCH_CHECKPOINT)
    try:
        entries = read_epochs(path)
    except CheckpointError as exc:
        _log.warning("unreadable %s (%s); rebuilding from batch headers", path, exc)
        return LeaderEpochFileCache(), False
    if entries is None:
        return LeaderEpochFileCache(), not _segment_bases(directory)
    try:
        return LeaderEpochFileCache(entries), True
    except ValueError as exc:
        _log.warning("invalid %s (%s); rebuilding from batch headers", path, exc)
        return LeaderEpochFileCache(), False


def _rebuild_epochs(log: Log, segments: list[LogSegment]) -> None:
    """Re-derive every epoch entry from batch headers (the checkpoint was lost)."""
    rebuilt = LeaderEpochFileCache()
    for segment in segments:
        with segment.log.use() as fd:
            try:
                for _, header in iter_file_headers(log.fs, fd, 0, segment.size):
                    epoch = header.partition_leader_epoch
                    latest = rebuilt.latest_epoch
                    if epoch >= 0 and (latest is None or epoch > latest):
                        rebuilt.assign(epoch, header.base_offset)
            except ProtocolError as exc:
                _log.warning("stopped epoch rebuild in %s: %s", segment.log.path, exc)
    rebuilt.dirty = True
    log.epochs = rebuilt


def _read_topic_id(directory: str) -> uuid.UUID | None:
    try:
        return read_partition_metadata(os.path.join(directory, PARTITION_METADATA))
    except CheckpointError as exc:
        _log.warning("ignoring %s", exc)
        return None
