"""A bounded LRU of open file descriptors shared by every log of a `LogManager`.

Theory of operation. A broker with 10,000 partitions under `ulimit -n 1024` cannot keep each
segment's `.log` descriptor and its two index maps open (Kafka does, and needs a huge ulimit).
Every such resource is a `CachedHandle` that opens lazily on `pin()` and joins one LRU; when
more than `capacity` are open, the least recently used *unpinned* handles are closed. A handle
is pinned while in use (an append, an index lookup, a sendfile in flight), so its descriptor
cannot be closed and its number reused under the user; if everything is pinned the cache
overshoots rather than deadlock, and shrinks back at the next release. Each handle costs
exactly one descriptor: a memory map holds a `dup` of its file's descriptor (CPython's mmap
keeps one), and we close the original right after mapping.

Deleted files and readers. A read hands out a byte range of a segment file to be sent later
(`FetchDataInfo`), and the descriptor is pinned only while the bytes are sent, so a response
with thousands of partitions never holds thousands of descriptors. Meanwhile retention,
DeleteRecords or a topic deletion may rename the file and, after `file.delete.delay.ms`, unlink
it. So every such range holds a `FileLease` on its `SegmentFile` for as long as it lives: a file
is renamed at once (its new name is where a later pin reopens it) but not unlinked while leased;
the deletion is scheduled when the last lease is released. A retired file's descriptor closes
as soon as it is unpinned, so its disk space comes back as soon as the unlink happens.

Threads: owner thread only (the event loop), except lease release, which may happen wherever the
last reference to a range is dropped (the garbage collector runs on any thread); it takes a
lock and hands the deferred deletion to a thread-safe callback. Worker threads (fsync,
verification) open short-lived descriptors of their own by path and never touch the cache.

Crash: nothing to recover; the cache holds no durable state.
"""

from __future__ import annotations

import mmap
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from storage.fs import FileSystem

DEFAULT_MAX_OPEN_FILES = 512


class FileHandleCache:
    """LRU bookkeeping of open `CachedHandle`s, bounded by `capacity` when unpinned.

    File: none (descriptors only). Threads: owner only. Crash: no durable state.
    """

    def __init__(self, capacity: int = DEFAULT_MAX_OPEN_FILES) -> None:
        if capacity < 4:
            raise ValueError("the file handle cache needs room for at least 4 descriptors")
        self.capacity = capacity
        self._open: OrderedDict[int, CachedHandle] = OrderedDict()
        self.opens = 0  # lifetime count of descriptors opened (a churn metric)
        self.evictions = 0

    @property
    def open_count(self) -> int:
        return len(self._open)

    def _added(self, handle: CachedHandle) -> None:
        self._open[id(handle)] = handle
        self.opens += 1
        self.shrink()

    def _touched(self, handle: CachedHandle) -> None:
        self._open.move_to_end(id(handle))

    def _removed(self, handle: CachedHandle) -> None:
        self._open.pop(id(handle), None)

    def shrink(self) -> None:
        """Close least recently used unpinned handles until within capacity."""
        excess = len(self._open) - self.capacity
        if excess <= 0:
            return
        victims = []
        for handle in self._open.values():
            if not handle.pinned:
                victims.append(handle)
                if len(victims) == excess:
                    break
        for handle in victims:
            self.evictions += 1
            handle.close()

    def close_all(self) -> None:
        for handle in list(self._open.values()):
            handle.close()


class CachedHandle:
    """One lazily opened OS resource (costing one descriptor) managed by a cache."""

    def __init__(self, cache: FileHandleCache) -> None:
        self._cache = cache
        self._pins = 0
        self._close_on_unpin = False
        self.is_open = False

    @property
    def pinned(self) -> bool:
        return self._pins > 0

    def pin(self) -> None:
        """Open if needed and mark in use; pair every pin with `unpin`."""
        self._pins += 1
        self._close_on_unpin = False
        if self.is_open:
            self._cache._touched(self)
            return
        try:
            self._open_resource()
        except BaseException:
            self._pins -= 1
            raise
        self.is_open = True
        self._cache._added(self)

    def unpin(self) -> None:
        self._pins -= 1
        if self._pins:
            return
        if self._close_on_unpin:
            self.close()
        elif self._cache.open_count > self._cache.capacity:
            self._cache.shrink()

    def close(self) -> None:
        """Release the descriptor (it reopens on the next pin).

        A pinned handle (a sendfile in flight) closes when its last user unpins, so a
        descriptor number is never closed, and reused, under a user.
        """
        if self._pins:
            self._close_on_unpin = True
            return
        self._close_on_unpin = False
        if self.is_open:
            self.is_open = False
            self._cache._removed(self)
            self._close_resource()

    def _open_resource(self) -> None:
        raise NotImplementedError

    def _close_resource(self) -> None:
        raise NotImplementedError


# Guards every SegmentFile's lease count and deferred actions. Reentrant: a lease dropped by
# the garbage collector may be released while this thread is inside the lock already.
_LEASES = threading.RLock()


class SegmentFile(CachedHandle):
    """The descriptor of one `.log` file, opened read-write without O_APPEND.

    Appends use `pwrite` at the tracked size and reads use `pread`/`sendfile` with explicit
    positions, so nothing depends on the descriptor's file position and a reopened
    descriptor behaves exactly like the evicted one. The file must exist: reopening never
    creates it (`LogSegment.create` does), so a vanished file is an error, not an empty file.
    """

    def __init__(self, cache: FileHandleCache, fs: FileSystem, path: str) -> None:
        super().__init__(cache)
        self.fs = fs
        self.path = path
        self._fd = -1
        self.retired = False  # renamed for deletion: close as soon as nobody uses it
        self._leases = 0
        self._when_unleased: list[Callable[[], None]] = []

    # --- leases (see the module docstring) -----------------------------------------------

    def lease(self) -> FileLease:
        return FileLease(self)

    @property
    def leased(self) -> bool:
        with _LEASES:
            return self._leases > 0

    def when_unleased(self, action: Callable[[], None]) -> None:
        """Run `action` now if no range of this file is outstanding, else when the last goes.

        `action` may then run on whichever thread drops the last range: it must be
        thread-safe (scheduling work on the storage committer is).
        """
        with _LEASES:
            if self._leases:
                self._when_unleased.append(action)
                return
        action()

    def _acquire(self) -> None:
        with _LEASES:
            self._leases += 1

    def _release(self) -> None:
        with _LEASES:
            self._leases -= 1
            if self._leases or not self._when_unleased:
                return
            actions, self._when_unleased = self._when_unleased, []
        for action in actions:
            action()

    def retire(self) -> None:
        """The file is being deleted: drop the descriptor now, or after its last user."""
        self.retired = True
        self.close()

    def unpin(self) -> None:
        super().unpin()
        if self.retired and not self.pinned:
            self.close()

    @property
    def fd(self) -> int:
        """The descriptor; valid only while pinned."""
        if not self.is_open:
            raise RuntimeError(f"{self.path} is not open (pin it first)")
        return self._fd

    @contextmanager
    def use(self) -> Iterator[int]:
        """Pin for the duration of the block and yield the descriptor."""
        self.pin()
        try:
            yield self._fd
        finally:
            self.unpin()

    def _open_resource(self) -> None:
        self._fd = self.fs.open(self.path, os.O_RDWR)

    def _close_resource(self) -> None:
        fd, self._fd = self._fd, -1
        self.fs.close(fd)


class FileLease:
    """Keeps a `SegmentFile`'s bytes reachable by name while a range of it may still be sent.

    Released by `release()` or when the lease is dropped (CPython drops it as soon as the
    range that holds it is no longer referenced).
    """

    __slots__ = ("_file",)

    def __init__(self, file: SegmentFile) -> None:
        file._acquire()
        self._file: SegmentFile | None = file

    def release(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file._release()

    def __del__(self) -> None:
        self.release()


class IndexMap(CachedHandle):
    """A read-only shared memory map of one index file, of the file's length when mapped.

    Entries are written with pwrite (see `storage/index.py`); the map sees them, as it shares
    the page cache. A zero-length file is never mapped (`buf` is then empty).
    """

    def __init__(self, cache: FileHandleCache, path: str) -> None:
        super().__init__(cache)
        self.path = path
        self._map: mmap.mmap | None = None

    @property
    def buf(self) -> mmap.mmap | bytes:
        if not self.is_open:
            raise RuntimeError(f"{self.path} is not mapped (pin it first)")
        return self._map if self._map is not None else b""

    def _open_resource(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            if size > 0:
                self._map = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)

    def _close_resource(self) -> None:
        m, self._map = self._map, None
        if m is not None:
            m.close()
