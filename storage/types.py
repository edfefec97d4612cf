"""Result types the log hands to the broker: `LogAppendInfo`, `FetchDataInfo`, offsets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from storage.filecache import FileLease, SegmentFile

NO_TIMESTAMP = -1


class LogAppendInfo(NamedTuple):
    """What one append did.

    `max_timestamp` is the largest batch max timestamp appended (the broker's clock for
    LogAppendTime), `offset_of_max_timestamp` the last offset of the batch that holds it (as
    the time index records it), `log_append_time_ms` the stamped time or -1 for CreateTime.
    """

    first_offset: int
    last_offset: int
    max_timestamp: int
    offset_of_max_timestamp: int
    log_append_time_ms: int
    log_start_offset: int
    valid_bytes: int
    batch_count: int
    rolled: bool


class TimestampAndOffset(NamedTuple):
    """A ListOffsets answer: -1 timestamp for earliest/latest; epoch None when unknown."""

    timestamp: int
    offset: int
    leader_epoch: int | None


@dataclass(frozen=True, slots=True)
class FetchDataInfo:
    """A byte range of one segment file to send as a partition's records.

    The range starts at the batch that contains `fetch_offset` and holds whole batches,
    except that the last one may be cut by `max_bytes` (Kafka does the same; clients drop a
    partial trailing batch and fetch again from its offset). It never extends past the
    `max_offset` the read was given. `length == 0` means no records: the fetch offset is at
    the bound, or (`first_entry_incomplete`) the first batch is larger than `max_bytes` and
    `min_one_message` was false.

    To send, pin the file for the duration of the send so that the descriptor cannot be
    closed by the LRU (and its number reused) in between:

        with info.open_fd() as fd:
            os.sendfile(sock_fd, fd, info.position, info.length)

    `read_bytes()` copies the range into memory instead (TLS, tests). While this object lives
    it holds a lease on the file: retention, DeleteRecords or a topic deletion may rename the
    file meanwhile (the pin then reopens it under its new name) but not unlink it, whatever
    `file.delete.delay.ms` says, so the bytes can always be sent. Segment files are never
    truncated in place while readable, except by `Log.truncate_to` (follower truncation); a
    send racing a truncation may come up short and must then close the connection, as
    Kafka's does.
    """

    fetch_offset: int
    segment_base_offset: int
    position: int
    length: int
    file: SegmentFile | None
    first_entry_incomplete: bool = False
    lease: FileLease | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.file is not None and self.lease is None:
            object.__setattr__(self, "lease", self.file.lease())

    @property
    def path(self) -> str | None:
        return None if self.file is None else self.file.path

    @contextmanager
    def open_fd(self) -> Iterator[int]:
        if self.file is None:
            raise ValueError("an empty FetchDataInfo has no file")
        with self.file.use() as fd:
            yield fd

    def read_bytes(self) -> bytes:
        if self.file is None or self.length == 0:
            return b""
        with self.file.use() as fd:
            data = self.file.fs.pread(fd, self.length, self.position)
        if len(data) != self.length:
            raise OSError(f"{self.path}: short read {len(data)} of {self.length} bytes")
        return data

    @classmethod
    def empty(cls, fetch_offset: int, incomplete: bool = False) -> FetchDataInfo:
        return cls(fetch_offset, -1, 0, 0, None, incomplete)
