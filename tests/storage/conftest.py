"""Shared helpers for the storage tests: batches, logs, and a fault-injecting filesystem."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from protocol.records import Compression, build_batch, iter_batch_headers
from storage.config import LogConfig
from storage.filecache import FileHandleCache
from storage.fs import Buffer, FileSystem
from storage.loader import LoadOffsets, load_log
from storage.log import Log

NOW = 1_700_000_000_000

# Small everything, so that a few KiB exercise rolling and sparse indexing.
SMALL = LogConfig(
    segment_bytes=4096,
    index_interval_bytes=256,
    segment_index_bytes=8 * 64,
    file_delete_delay_ms=0,
)


def batch(
    count: int = 1,
    *,
    timestamp: int = NOW,
    value: bytes = b"v" * 20,
    step: int = 0,
    epoch: int = -1,
    base_offset: int = 0,
    compression: Compression = Compression.NONE,
) -> bytearray:
    """A batch of `count` records with timestamps `timestamp + i * step`."""
    records = [(b"k%d" % i, value, (), timestamp + i * step) for i in range(count)]
    raw = build_batch(
        records, base_offset=base_offset, compression=compression, partition_leader_epoch=epoch
    )
    return bytearray(raw)


def base_offsets(data: bytes) -> list[int]:
    return [h.base_offset for _, h in iter_batch_headers(data)]


class SimulatedCrash(Exception):
    """Raised by FaultyFS where a real process would have died."""


class FaultyFS(FileSystem):
    """A FileSystem whose next pwrite can be torn or fail, whose fsync can fail, and whose disk
    can be full for some files or all (no new file, no byte written)."""

    def __init__(self) -> None:
        self.torn_write_bytes: int | None = None  # write this many bytes, then crash
        self.enospc_after_bytes: int | None = None  # write this many, then ENOSPC
        self.fail_fsync = False
        self.fail_replace = False
        self.fail_create: str | None = None  # ENOSPC creating a file whose name ends so
        self.fail_write: str | None = None  # ENOSPC writing a file whose name ends so
        self.disk_full = False  # both, for every file
        self.fsyncs: list[str] = []  # paths, in order

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        suffix = "" if self.disk_full else self.fail_create
        creates = flags & os.O_CREAT and not os.path.exists(path)
        if creates and suffix is not None and path.endswith(suffix):
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return super().open(path, flags, mode)

    def pwrite(self, fd: int, data: Buffer, offset: int) -> int:
        view = memoryview(data)
        suffix = "" if self.disk_full else self.fail_write
        if suffix is not None and os.readlink(f"/proc/self/fd/{fd}").endswith(suffix):
            raise OSError(errno.ENOSPC, "No space left on device")
        if self.torn_write_bytes is not None:
            keep, self.torn_write_bytes = self.torn_write_bytes, None
            os.pwrite(fd, view[:keep], offset)
            raise SimulatedCrash(f"crashed after writing {keep} of {len(view)} bytes")
        if self.enospc_after_bytes is not None:
            room = self.enospc_after_bytes
            if room == 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            written = os.pwrite(fd, view[:room], offset)
            self.enospc_after_bytes = room - written
            return written
        return os.pwrite(fd, view, offset)

    def fsync(self, fd: int) -> None:
        if self.fail_fsync:
            raise OSError(errno.EIO, "Input/output error")
        self.fsyncs.append(os.readlink(f"/proc/self/fd/{fd}"))
        os.fsync(fd)

    def replace(self, src: str, dst: str) -> None:
        if self.fail_replace:
            raise SimulatedCrash(f"crashed before renaming {src}")
        os.replace(src, dst)


class NoSyncFS(FileSystem):
    """fsync is a no-op: for tests about something else that would pay thousands of them."""

    def fsync(self, fd: int) -> None:
        pass


LogFactory = Callable[..., Log]


@pytest.fixture
def make_log(tmp_path: Path) -> Iterator[LogFactory]:
    """Open a Log in tmp_path/<topic>-0 (reopening the same directory on repeat calls)."""
    opened: list[Log] = []

    def factory(
        config: LogConfig = SMALL,
        *,
        fs: FileSystem | None = None,
        cache: FileHandleCache | None = None,
        clean: bool = False,
        offsets: LoadOffsets | None = None,
        name: str = "t-0",
    ) -> Log:
        log = load_log(
            str(tmp_path / name),
            name.rsplit("-", 1)[0],
            int(name.rsplit("-", 1)[1]),
            config,
            fs=fs or FaultyFS(),
            cache=cache or FileHandleCache(64),
            offsets=offsets,
            had_clean_shutdown=clean,
            clock=lambda: NOW,
        )
        opened.append(log)
        return log

    yield factory
    for log in opened:
        log.close_handlers()


def fill(log: Log, batches: int, *, records: int = 1, epoch: int = 0, step_ms: int = 1) -> None:
    """Append `batches` batches with increasing timestamps and move the high watermark."""
    for _ in range(batches):
        ts = NOW + log.log_end_offset * step_ms
        log.append_as_leader(batch(records, timestamp=ts), epoch, NOW)
    log.update_high_watermark(log.log_end_offset)
