"""The filesystem seam: every write, fsync, truncate and rename the log does goes through here.

Recovery tests replace `FileSystem` with a subclass that writes only part of the bytes and
then "crashes" (raises), or fails an fsync, at a chosen call, so torn writes and lost
flushes are reproduced deterministically. Production code uses `OS_FS`, which is a thin
layer over `os`. Index files are written, resized and renamed through the seam too; only their
lookups read a memory map.

Thread safety: stateless; any thread may call it (the flush worker fsyncs through it).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
from collections.abc import Callable
from typing import TypeAlias

Buffer: TypeAlias = bytes | bytearray | memoryview

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC


class FileSystem:
    """POSIX file operations on descriptors and paths (subclass to inject faults)."""

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags | os.O_CLOEXEC, mode)

    def close(self, fd: int) -> None:
        os.close(fd)

    def pwrite(self, fd: int, data: Buffer, offset: int) -> int:
        return os.pwrite(fd, data, offset)

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        return os.pread(fd, size, offset)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def ftruncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def truncate(self, path: str, size: int) -> None:
        os.truncate(path, size)

    def size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, _DIR_FLAGS)
        try:
            self.fsync(fd)
        finally:
            os.close(fd)

    # --- helpers built on the primitives (so a fault injected below applies to them) ---

    def write_all(self, fd: int, data: Buffer, offset: int) -> None:
        """pwrite until every byte is written (a short write is not an error by itself)."""
        view = memoryview(data)
        while view:
            written = self.pwrite(fd, view, offset)
            if written <= 0:
                raise OSError(f"pwrite wrote {written} bytes")
            view = view[written:]
            offset += written

    def fsync_path(self, path: str) -> None:
        """fsync a file by path through a short-lived descriptor of its own.

        fsync acts on the inode, so this flushes pages written through any other descriptor
        and through shared memory maps of the same file.
        """
        fd = self.open(path, os.O_RDONLY)
        try:
            self.fsync(fd)
        finally:
            self.close(fd)

    def write_atomically(self, path: str, data: bytes, sync: bool = True) -> None:
        """Replace `path` with `data` so that a crash leaves the old or the new file, whole.

        Write `<path>.tmp`, fsync it, rename it over `path`, fsync the directory. If the tmp
        file cannot be written (a full disk) it is removed again, so it holds no space.
        `sync=False` skips both fsyncs: for files that a `syncfs` makes durable right after,
        or that are rebuilt when a crash leaves them unreadable.
        """
        tmp = path + ".tmp"
        fd = self.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            self.write_all(fd, data, 0)
            if sync:
                self.fsync(fd)
        except OSError:
            self.close(fd)
            with contextlib.suppress(OSError):
                self.unlink(tmp)
            raise
        self.close(fd)
        self.replace(tmp, path)
        if sync:
            self.fsync_dir(os.path.dirname(path) or ".")

    def syncfs(self, path: str) -> None:
        """Make everything written to the filesystem holding `path` durable, and wait.

        One call instead of an fsync per file: the clean shutdown of a broker with thousands
        of freshly written partitions otherwise pays several fsyncs (journal commits) for
        each. It also waits for other writers' dirty pages on that filesystem. Writeback
        errors are reported (Linux >= 5.8). Raises OSError(ENOSYS) where there is no syncfs.
        """
        syncfs = _libc_syncfs()
        if syncfs is None:
            raise OSError(errno.ENOSYS, "syncfs is not available here")
        fd = os.open(path, _DIR_FLAGS)
        try:
            if syncfs(fd) != 0:
                code = ctypes.get_errno()
                raise OSError(code, f"syncfs({path}): {os.strerror(code)}")
        finally:
            os.close(fd)


@functools.cache
def _libc_syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    function: Callable[[int], int] | None = getattr(libc, "syncfs", None)
    return function


OS_FS = FileSystem()
