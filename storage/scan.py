"""Walking the batches of a segment file: headers only, or whole batches for CRC checks.

Both walkers read through `FileSystem.pread` in chunks, parse only the 61-byte headers, and
stop quietly at a partial batch at `end` (a torn tail); bytes that cannot be a batch header
(length below 49, magic other than 2) raise the protocol's CorruptRecordError.
"""

from __future__ import annotations

from collections.abc import Iterator

from protocol.records import (
    LOG_OVERHEAD,
    RECORD_BATCH_OVERHEAD,
    BatchHeader,
    CorruptRecordError,
    iter_batch_headers,
    read_batch_header,
)
from storage.fs import FileSystem

HEADER_CHUNK = 8 * 1024
BATCH_CHUNK = 1024 * 1024


def iter_file_headers(
    fs: FileSystem, fd: int, start: int, end: int, *, strict: bool = False
) -> Iterator[tuple[int, BatchHeader]]:
    """`(position, header)` of each complete batch in `[start, end)` of the file.

    With `strict`, `end` is the end of the data: bytes left over that do not form a whole
    batch (a length field pointing past the end) raise CorruptRecordError instead.
    """
    pos, buf, buf_pos = start, b"", start
    while end - pos >= LOG_OVERHEAD:
        rel = pos - buf_pos
        if rel + RECORD_BATCH_OVERHEAD > len(buf):
            buf = fs.pread(fd, min(HEADER_CHUNK, end - pos), pos)
            buf_pos, rel = pos, 0
            if len(buf) < RECORD_BATCH_OVERHEAD:
                break
        header = read_batch_header(buf, rel)
        size = header.batch_length + LOG_OVERHEAD
        if pos + size > end:
            break
        yield pos, header
        pos += size
    if strict and pos < end:
        raise CorruptRecordError(f"{end - pos} bytes at position {pos} are not a whole batch")


def iter_file_batches(
    fs: FileSystem, fd: int, start: int, end: int, chunk_size: int = BATCH_CHUNK
) -> Iterator[tuple[int, memoryview, BatchHeader]]:
    """`(position, batch bytes, header)` of each complete batch in `[start, end)`.

    Reads `chunk_size` bytes at a time; a batch larger than a chunk is read on its own.
    The yielded view is valid until the next iteration.
    """
    pos = start
    while end - pos >= LOG_OVERHEAD:
        view = memoryview(fs.pread(fd, min(chunk_size, end - pos), pos))
        consumed = 0
        for rel, header in iter_batch_headers(view):
            consumed = rel + header.batch_length + LOG_OVERHEAD
            yield pos + rel, view[rel:consumed], header
        if consumed == 0:
            if len(view) < RECORD_BATCH_OVERHEAD:
                return
            header = read_batch_header(view)
            size = header.batch_length + LOG_OVERHEAD
            if pos + size > end:
                return
            whole = memoryview(fs.pread(fd, size, pos))
            if len(whole) < size:
                return
            yield pos, whole, header
            consumed = size
        pos += consumed
