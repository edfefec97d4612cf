"""A hypothesis state machine: the Log against a sorted dict of offset -> batch bytes."""

from __future__ import annotations

import bisect
import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from protocol.records import iter_batch_headers
from storage.errors import OffsetOutOfRangeError
from storage.filecache import FileHandleCache
from storage.loader import LoadOffsets, load_log
from storage.log import Log
from tests.storage.conftest import NOW, SMALL, NoSyncFS, SimulatedCrash, batch

CONFIG = SMALL.with_overrides(segment_bytes=2048, index_interval_bytes=128)


class TornFS(NoSyncFS):
    """Real writes, no fsync cost; the next pwrite can be torn (then the "process" dies)."""

    torn_write_bytes: int | None = None

    def pwrite(self, fd: int, data: bytes | bytearray | memoryview, offset: int) -> int:
        if self.torn_write_bytes is None:
            return super().pwrite(fd, data, offset)
        keep, self.torn_write_bytes = self.torn_write_bytes, None
        super().pwrite(fd, memoryview(data)[:keep], offset)
        raise SimulatedCrash("torn write")


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp()
        self.fs = TornFS()
        self.cache = FileHandleCache(8)
        self.config = CONFIG
        self.log = self._open(LoadOffsets(), clean=False)
        self.model: dict[int, bytes] = {}  # base offset -> stored batch bytes
        self.log_start = 0
        self.log_end = 0

    def _open(self, offsets: LoadOffsets, clean: bool) -> Log:
        return load_log(
            f"{self.tmp}/t-0", "t", 0, self.config, fs=self.fs, cache=self.cache,
            offsets=offsets, had_clean_shutdown=clean, clock=lambda: NOW,
        )  # fmt: skip

    def teardown(self) -> None:
        self.log.close_handlers()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _bases(self) -> list[int]:
        return sorted(self.model)

    def _last_offset(self, base: int) -> int:
        header = next(iter_batch_headers(self.model[base]))[1]
        return header.base_offset + header.last_offset_delta

    def _drop_below_start(self) -> None:
        for base in self._bases():
            if self._last_offset(base) < self.log_start:
                del self.model[base]

    # --- rules ----------------------------------------------------------------------------

    @rule(
        sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3),
        value=st.integers(0, 80),
        epoch=st.integers(0, 3),
    )
    def append(self, sizes: list[int], value: int, epoch: int) -> None:
        epoch = max(epoch, self.log.latest_epoch or 0)
        buf = bytearray()
        for count in sizes:
            buf += batch(count, value=b"x" * value, timestamp=NOW + self.log_end, step=1)
        info = self.log.append_as_leader(buf, epoch, NOW)
        assert info.first_offset == self.log_end
        for pos, header in iter_batch_headers(buf):
            self.model[header.base_offset] = bytes(buf[pos : pos + header.size])
        self.log_end = info.last_offset + 1

    @rule(data=st.data(), max_bytes=st.integers(0, 3000), min_one=st.booleans())
    def read(self, data: st.DataObject, max_bytes: int, min_one: bool) -> None:
        offset = data.draw(st.integers(self.log_start, self.log_end))
        info = self.log.read(offset, max_bytes, min_one_message=min_one)
        got = info.read_bytes()
        if offset == self.log_end:
            assert got == b""
            return
        bases = self._bases()
        i = bisect.bisect_right(bases, offset) - 1
        expected = b"".join(self.model[b] for b in bases[i:])
        first = len(self.model[bases[i]])
        assert expected.startswith(got)
        limit = max(max_bytes, first) if min_one else max_bytes
        if limit < first:
            assert got == b""
            assert info.first_entry_incomplete == (limit > 0)  # Kafka: 0 bytes is just empty
        else:
            assert len(got) <= limit
            assert len(got) >= first  # at least the batch holding the offset

    @rule(data=st.data())
    def read_out_of_range(self, data: st.DataObject) -> None:
        offset = data.draw(
            st.one_of(st.integers(self.log_end + 1, self.log_end + 5), st.integers(-3, -1))
        )
        if offset >= self.log_start:
            offset = max(offset, self.log_end + 1)
        with pytest.raises(OffsetOutOfRangeError):
            self.log.read(offset, 100)

    @rule()
    def roll(self) -> None:
        self.log.roll()

    @rule(data=st.data())
    def move_high_watermark(self, data: st.DataObject) -> None:
        self.log.update_high_watermark(data.draw(st.integers(self.log_start, self.log_end)))

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        candidates = [b for b in self._bases() if b >= self.log_start] + [self.log_end]
        target = data.draw(st.sampled_from(candidates))
        self.log.truncate_to(target)
        for base in self._bases():
            if base >= target:
                del self.model[base]
        self.log_end = target

    @rule(data=st.data())
    def delete_records(self, data: st.DataObject) -> None:
        target = data.draw(st.integers(0, self.log.high_watermark))
        self.log.delete_records_before(target)
        self.log_start = max(self.log_start, target)
        self._drop_below_start()

    @rule(limit=st.integers(0, 3000), by_time=st.booleans())
    def retention(self, limit: int, by_time: bool) -> None:
        self.config = CONFIG.with_overrides(
            retention_bytes=-1 if by_time else limit, retention_ms=limit if by_time else -1
        )
        self.log.update_config(self.config)
        before = self.log.log_start_offset
        self.log.delete_old_segments(NOW + limit + 10**6)
        after = self.log.log_start_offset
        assert before <= after <= self.log.high_watermark
        self.log_start = after
        self._drop_below_start()

    @rule(clean=st.booleans(), flush=st.booleans())
    def reopen(self, clean: bool, flush: bool) -> None:
        if flush:
            self.log.flush()
        offsets = self._offsets()
        if clean:
            self.log.close()
        else:
            self.log.close_handlers()
        self.log = self._open(offsets, clean)

    @rule(keep=st.integers(0, 10**6))
    def crash_during_append(self, keep: int) -> None:
        offsets = self._offsets()
        raw = batch(3, value=b"y" * 40)
        self.fs.torn_write_bytes = keep % len(raw)  # always short of a whole batch
        with pytest.raises(SimulatedCrash):
            self.log.append_as_leader(raw, self.log.latest_epoch or 0, NOW)
        self.log.close_handlers()
        self.log = self._open(offsets, clean=False)  # the torn batch was never acknowledged

    def _offsets(self) -> LoadOffsets:
        return LoadOffsets(
            self.log.recovery_point, self.log.log_start_offset, self.log.high_watermark
        )

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def offsets_match(self) -> None:
        assert self.log.log_end_offset == self.log_end
        assert self.log.log_start_offset == self.log_start
        assert self.log_start <= self.log.high_watermark <= self.log_end
        assert self.log.recovery_point <= self.log_end

    @invariant()
    def whole_log_reads_back(self) -> None:
        offset, stored = self.log_start, b""
        while offset < self.log_end:
            chunk = self.log.read(offset, 10**6).read_bytes()
            headers = list(iter_batch_headers(chunk))
            stored += chunk
            offset = headers[-1][1].base_offset + headers[-1][1].last_offset_delta + 1
        bases = self._bases()
        first = bisect.bisect_right(bases, self.log_start) - 1
        assert stored == b"".join(self.model[b] for b in bases[max(first, 0) :])


LogMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("STATEFUL_EXAMPLES", "60")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLog = LogMachine.TestCase
