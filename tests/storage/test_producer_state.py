"""ProducerStateManager: Kafka's duplicate, fencing and sequence rules, replay and snapshots."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from protocol.error_codes import ErrorCode, KafkaError
from protocol.records import BatchHeader, TimestampType, build_batch, read_batch_header
from storage.producer_state import (
    NUM_BATCHES_TO_RETAIN,
    BatchMetadata,
    CorruptSnapshotError,
    DuplicateBatch,
    EndTxnMarker,
    InvalidProducerEpochError,
    OutOfOrderSequenceError,
    ProducerStateEntry,
    ProducerStateManager,
    offset_from_snapshot_file_name,
    snapshot_file_name,
)
from tests.storage.conftest import FaultyFS, SimulatedCrash

NOW = 1_700_000_000_000
MAX_SEQ = 2**31 - 1
HOUR = 3_600_000
COMMIT = EndTxnMarker(commit=True, coordinator_epoch=5)  # what `marker` headers carry


def header(
    pid: int,
    epoch: int,
    seq: int,
    count: int = 1,
    *,
    base_offset: int = 0,
    ts: int = NOW,
    transactional: bool = False,
    log_append_time: bool = False,
) -> BatchHeader:
    """The header of a real encoded batch of `count` records."""
    records = [(b"k", b"v", (), ts) for _ in range(count)]
    raw = build_batch(
        records,
        base_offset=base_offset,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        is_transactional=transactional,
        timestamp_type=(
            TimestampType.LOG_APPEND_TIME if log_append_time else TimestampType.CREATE_TIME
        ),
    )
    return read_batch_header(raw)


def marker(pid: int, epoch: int, *, base_offset: int, ts: int = NOW) -> BatchHeader:
    """A transaction marker's header (one control record)."""
    raw = build_batch(
        [(b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x05", (), ts)],
        base_offset=base_offset,
        producer_id=pid,
        producer_epoch=epoch,
        is_transactional=True,
        is_control=True,
    )
    return read_batch_header(raw)


class Leader:
    """A ProducerStateManager and a log end offset, appending as the produce path does."""

    def __init__(self, manager: ProducerStateManager | None = None) -> None:
        self.psm = ProducerStateManager() if manager is None else manager
        self.leo = 0
        self.log: list[BatchHeader] = []

    def produce(self, h: BatchHeader, now: int = NOW, append_time: int = -1) -> tuple[int, int]:
        """check, then append at the log end and on_append; returns (first, last) offset."""
        self.psm.check(h, now)
        first, last = self.leo, self.leo + h.last_offset_delta
        stored = h._replace(base_offset=first)
        if append_time >= 0:  # the log stamps LogAppendTime batches (set_log_append_time)
            stored = stored._replace(max_timestamp=append_time)
        self.log.append(stored)
        self.psm.on_append(h, first, last, append_time, now)
        self.leo = last + 1
        return first, last


def rebuilt(log: list[BatchHeader]) -> ProducerStateManager:
    psm = ProducerStateManager()
    for h in log:
        psm.load_batch(h)
    return psm


# --- the produce path ---------------------------------------------------------------------------


def test_batches_without_producer_id_are_not_tracked() -> None:
    leader = Leader()
    leader.produce(header(-1, -1, -1, 3))
    leader.produce(header(-1, -1, -1, 3))
    assert leader.psm.producers() == {}
    assert leader.psm.map_end_offset == 6


def test_new_producer_at_sequence_zero_is_accepted() -> None:
    leader = Leader()
    assert leader.produce(header(7, 0, 0, 3)) == (0, 2)
    entry = leader.psm.producers()[7]
    assert (entry.producer_epoch, entry.last_sequence, entry.last_timestamp) == (0, 2, NOW)
    assert (entry.coordinator_epoch, entry.current_txn_start_offset) == (-1, -1)
    assert list(entry.batches) == [BatchMetadata(0, 2, 0, 2)]


@pytest.mark.parametrize("seq", [1, 57, MAX_SEQ])
def test_unknown_producer_is_accepted_at_any_sequence(seq: int) -> None:
    """Kafka >= 2.5 (KIP-360, KAFKA-8710) no longer answers UNKNOWN_PRODUCER_ID here."""
    leader = Leader()
    leader.produce(header(7, 3, seq, 2))
    assert leader.psm.producers()[7].last_sequence == (seq + 1) % (MAX_SEQ + 1)
    leader.produce(header(7, 3, (seq + 2) % (MAX_SEQ + 1)))


def seven_batches(leader: Leader) -> list[tuple[int, int, int]]:
    """Seven batches of 1..7 records from producer 1; returns (base_seq, first, last)."""
    sent, seq = [], 0
    for count in range(1, 8):
        first, last = leader.produce(header(1, 0, seq, count))
        sent.append((seq, first, last))
        seq += count
    return sent


@pytest.mark.parametrize("back", range(1, NUM_BATCHES_TO_RETAIN + 1))
def test_retry_of_each_of_the_last_five_batches_is_a_duplicate(back: int) -> None:
    leader = Leader()
    sent = seven_batches(leader)
    seq, first, last = sent[-back]
    before = leader.psm.producers()
    with pytest.raises(DuplicateBatch) as info:
        leader.psm.check(header(1, 0, seq, last - first + 1), NOW)
    assert (info.value.first_offset, info.value.last_offset) == (first, last)
    assert info.value.log_append_time_ms == -1
    assert leader.psm.producers() == before


def test_retry_of_the_sixth_newest_batch_is_out_of_order() -> None:
    leader = Leader()
    sent = seven_batches(leader)
    seq, first, last = sent[-NUM_BATCHES_TO_RETAIN - 1]
    with pytest.raises(OutOfOrderSequenceError) as info:
        leader.psm.check(header(1, 0, seq, last - first + 1), NOW)
    assert info.value.code is ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert isinstance(info.value, KafkaError)


def test_duplicate_needs_the_exact_sequence_range() -> None:
    leader = Leader()
    leader.produce(header(1, 0, 0, 3))
    leader.produce(header(1, 0, 3, 3))
    with pytest.raises(OutOfOrderSequenceError):
        leader.psm.check(header(1, 0, 3, 2), NOW)
    with pytest.raises(OutOfOrderSequenceError):
        leader.psm.check(header(1, 0, 4, 2), NOW)


def test_duplicate_answers_with_the_original_log_append_time() -> None:
    leader = Leader()
    leader.produce(header(1, 0, 0, 2, log_append_time=True), append_time=NOW + 5)
    with pytest.raises(DuplicateBatch) as info:
        leader.psm.check(header(1, 0, 0, 2), NOW + 99)
    assert info.value.log_append_time_ms == NOW + 5


@pytest.mark.parametrize("gap", [1, 2, 1000])
def test_sequence_gap_is_out_of_order(gap: int) -> None:
    leader = Leader()
    leader.produce(header(1, 0, 0, 3))
    with pytest.raises(OutOfOrderSequenceError):
        leader.psm.check(header(1, 0, 3 + gap), NOW)
    leader.produce(header(1, 0, 3))


def test_sequence_wraps_from_int32_max_to_zero() -> None:
    leader = Leader()
    leader.produce(header(1, 0, MAX_SEQ - 1, 2))  # MAX-1 .. MAX
    leader.produce(header(1, 0, 0, 1))
    leader.produce(header(1, 0, 1, 1))
    assert leader.psm.producers()[1].last_sequence == 1
    with pytest.raises(DuplicateBatch):
        leader.psm.check(header(1, 0, MAX_SEQ - 1, 2), NOW)
    with pytest.raises(OutOfOrderSequenceError):
        leader.psm.check(header(1, 0, 0, 2), NOW)


def test_batch_spanning_the_wrap() -> None:
    leader = Leader()
    leader.produce(header(1, 0, MAX_SEQ - 3, 2))  # MAX-3 .. MAX-2
    first, last = leader.produce(header(1, 0, MAX_SEQ - 1, 4))  # MAX-1, MAX, 0, 1
    assert leader.psm.producers()[1].last_sequence == 1
    with pytest.raises(DuplicateBatch) as info:
        leader.psm.check(header(1, 0, MAX_SEQ - 1, 4), NOW)
    assert (info.value.first_offset, info.value.last_offset) == (first, last)
    with pytest.raises(OutOfOrderSequenceError):
        leader.psm.check(header(1, 0, 3), NOW)
    leader.produce(header(1, 0, 2))


def test_epoch_bump_restarts_at_sequence_zero() -> None:
    leader = Leader()
    leader.produce(header(1, 0, 0, 3))
    leader.produce(header(1, 0, 3, 3))
    with pytest.raises(OutOfOrderSequenceError):
        leader.psm.check(header(1, 1, 6), NOW)  # a new epoch must start at 0
    leader.produce(header(1, 1, 0, 2))
    entry = leader.psm.producers()[1]
    assert entry.producer_epoch == 1
    assert [(b.first_seq, b.last_seq) for b in entry.batches] == [(0, 1)]
    leader.produce(header(1, 1, 2))


def test_stale_epoch_is_rejected_even_for_a_retry() -> None:
    leader = Leader()
    leader.produce(header(1, 0, 0, 3))
    leader.produce(header(1, 2, 0, 1))
    for h in (header(1, 0, 0, 3), header(1, 1, 0), header(1, 0, 3)):
        with pytest.raises(InvalidProducerEpochError) as info:
            leader.psm.check(h, NOW)
        assert info.value.code is ErrorCode.INVALID_PRODUCER_EPOCH


def test_rejected_batch_changes_nothing() -> None:
    leader = Leader()
    leader.produce(header(1, 0, 0, 3))
    before = leader.psm.producers()
    for h in (header(1, 0, 9), header(1, 1, 5)):
        with pytest.raises(KafkaError):
            leader.psm.check(h, NOW)
    assert leader.psm.producers() == before


def test_producers_are_independent() -> None:
    leader = Leader()
    leader.produce(header(1, 0, 0, 2))
    leader.produce(header(2, 5, 0, 2))
    leader.produce(header(1, 0, 2))
    with pytest.raises(OutOfOrderSequenceError):
        leader.psm.check(header(2, 5, 3), NOW)
    leader.produce(header(2, 5, 2))
    assert {p: e.last_sequence for p, e in leader.psm.producers().items()} == {1: 2, 2: 2}


def test_producers_returns_copies() -> None:
    leader = Leader()
    leader.produce(header(1, 0, 0))
    copy = leader.psm.producers()
    copy[1].batches.clear()
    copy[1].producer_epoch = 9
    assert leader.psm.producers()[1].producer_epoch == 0
    assert len(leader.psm.producers()[1].batches) == 1


def test_transactional_batches_are_tracked_like_others_and_open_a_txn() -> None:
    leader = Leader()
    leader.produce(header(1, 0, 0, 2, transactional=True))
    leader.produce(header(1, 0, 2, 1, transactional=True))
    entry = leader.psm.producers()[1]
    assert entry.current_txn_start_offset == 0
    with pytest.raises(DuplicateBatch):
        leader.psm.check(header(1, 0, 0, 2, transactional=True), NOW)
    leader.psm.load_batch(marker(1, 0, base_offset=3, ts=NOW + 1), COMMIT)
    entry = leader.psm.producers()[1]
    assert (entry.current_txn_start_offset, entry.last_timestamp) == (-1, NOW + 1)
    assert entry.last_sequence == 2  # a marker in the same epoch keeps the batches


def test_marker_with_a_new_epoch_clears_batches_and_fences() -> None:
    psm = ProducerStateManager()
    psm.load_batch(header(1, 0, 0, 2, transactional=True))
    psm.load_batch(marker(1, 1, base_offset=2), COMMIT)
    entry = psm.producers()[1]
    assert (entry.producer_epoch, len(entry.batches), entry.last_update_offset) == (1, 0, 2)
    with pytest.raises(InvalidProducerEpochError):
        psm.check(header(1, 0, 2), NOW)
    with pytest.raises(OutOfOrderSequenceError):
        psm.check(header(1, 1, 5), NOW)
    psm.check(header(1, 1, 0), NOW)


def test_empty_control_batch_changes_no_producer() -> None:
    psm = ProducerStateManager()
    raw = build_batch([], base_offset=4, producer_id=1, producer_epoch=3, is_control=True)
    psm.load_batch(read_batch_header(raw))
    assert psm.producers() == {}
    assert psm.map_end_offset == 5


# --- replay ---------------------------------------------------------------------------------


def mixed_traffic(leader: Leader) -> None:
    t = NOW
    for i in range(12):
        t += 10
        leader.produce(header(1, 0, i * 2, 2, ts=t))
        leader.produce(header(-1, -1, -1, 1, ts=t))
        leader.produce(header(2, 4, i, 1, ts=t, log_append_time=True), append_time=t + 1)
    leader.produce(header(1, 1, 0, 3, ts=t))
    leader.produce(header(3, 0, 0, 2, transactional=True))


def test_load_batch_rebuilds_what_on_append_recorded() -> None:
    leader = Leader()
    mixed_traffic(leader)
    replayed = rebuilt(leader.log)
    assert replayed.producers() == leader.psm.producers()
    assert replayed.map_end_offset == leader.psm.map_end_offset == leader.leo
    assert replayed.producers()[2].batches[-1].log_append_time_ms == NOW + 121


def test_truncate_above_every_producer_keeps_state() -> None:
    leader = Leader()
    leader.produce(header(1, 0, 0, 3))
    leader.produce(header(-1, -1, -1, 5))
    before = leader.psm.producers()
    assert leader.psm.truncate_to(4) is False
    assert leader.psm.producers() == before
    assert leader.psm.map_end_offset == 4


def test_truncate_into_a_producer_asks_for_a_reload() -> None:
    leader = Leader()
    mixed_traffic(leader)
    cut = 20
    assert leader.psm.truncate_to(cut) is True
    assert leader.psm.producers() == {}
    kept = [h for h in leader.log if h.last_offset < cut]
    leader.psm.truncate_fully_and_start_at(0)
    for h in kept:
        leader.psm.load_batch(h)
    leader.psm.update_map_end_offset(cut)
    assert leader.psm.producers() == rebuilt(kept).producers()
    assert leader.psm.map_end_offset == cut


# --- expiration -----------------------------------------------------------------------------


def test_expire_drops_idle_producers() -> None:
    leader = Leader(ProducerStateManager(producer_id_expiration_ms=HOUR))
    leader.produce(header(1, 0, 0, ts=NOW))
    leader.produce(header(2, 0, 0, ts=NOW + 10))
    assert leader.psm.expire(NOW + HOUR - 1) == 0
    assert leader.psm.expire(NOW + HOUR) == 1
    assert set(leader.psm.producers()) == {2}
    assert leader.psm.producer_id_count == 1
    leader.produce(header(1, 0, 5))  # expired means unknown: any sequence is accepted


def test_expire_keeps_producers_with_an_open_transaction() -> None:
    leader = Leader(ProducerStateManager(producer_id_expiration_ms=HOUR))
    leader.produce(header(1, 0, 0, transactional=True))
    assert leader.psm.expire(NOW + 10 * HOUR) == 0
    leader.psm.load_batch(marker(1, 0, base_offset=leader.leo), COMMIT)
    assert leader.psm.expire(NOW + 10 * HOUR) == 1


# --- snapshots ------------------------------------------------------------------------------


def test_snapshot_round_trip(tmp_path: Path) -> None:
    leader = Leader()
    mixed_traffic(leader)
    path = str(tmp_path / snapshot_file_name(leader.leo))
    leader.psm.write_snapshot(path, leader.leo)
    loaded, offset = ProducerStateManager.read_snapshot(path)
    assert offset == leader.leo == offset_from_snapshot_file_name(path)
    assert loaded.producers() == leader.psm.producers()
    assert loaded.map_end_offset == leader.leo
    assert not os.path.exists(path + ".tmp")


def test_snapshot_keeps_all_five_batches_for_deduplication(tmp_path: Path) -> None:
    leader = Leader()
    sent = seven_batches(leader)
    path = str(tmp_path / "s.snapshot")
    ProducerStateManager.write_snapshot_file(path, leader.psm.snapshot_bytes(leader.leo))
    loaded, _ = ProducerStateManager.read_snapshot(path)
    for seq, first, last in sent[-NUM_BATCHES_TO_RETAIN:]:
        with pytest.raises(DuplicateBatch) as info:
            loaded.check(header(1, 0, seq, last - first + 1), NOW)
        assert (info.value.first_offset, info.value.last_offset) == (first, last)


def test_empty_snapshot_round_trip() -> None:
    psm = ProducerStateManager()
    assert psm.load_snapshot_bytes(ProducerStateManager().snapshot_bytes(0), "x") == 0
    assert psm.producers() == {}


def test_snapshot_must_cover_the_state() -> None:
    leader = Leader()
    leader.produce(header(1, 0, 0, 3))
    with pytest.raises(ValueError):
        leader.psm.snapshot_bytes(2)
    leader.psm.snapshot_bytes(3)


def snapshot_of_traffic() -> bytes:
    leader = Leader()
    mixed_traffic(leader)
    return leader.psm.snapshot_bytes(leader.leo)


SNAPSHOT = snapshot_of_traffic()


@given(st.integers(0, len(SNAPSHOT) - 1), st.integers(1, 255))
def test_any_flipped_byte_is_detected(position: int, xor: int) -> None:
    data = bytearray(SNAPSHOT)
    data[position] ^= xor
    psm = ProducerStateManager()
    with pytest.raises(CorruptSnapshotError):
        psm.load_snapshot_bytes(bytes(data), "00000000000000000000.snapshot")


@given(st.integers(0, len(SNAPSHOT) - 1))
def test_any_truncation_is_detected(length: int) -> None:
    with pytest.raises(CorruptSnapshotError):
        ProducerStateManager().load_snapshot_bytes(SNAPSHOT[:length], "s.snapshot")


def reseal(body: bytes, version: int) -> bytes:
    return b"KBPS" + struct.pack(">hI", version, crc32c.crc32c(body)) + body


def test_unknown_version_and_inconsistent_body_are_detected() -> None:
    body = SNAPSHOT[10:]
    ProducerStateManager().load_snapshot_bytes(reseal(body, 1), "s")
    for bad in (reseal(body, 2), reseal(body + b"\x00", 1), reseal(body[:-1], 1)):
        with pytest.raises(CorruptSnapshotError):
            ProducerStateManager().load_snapshot_bytes(bad, "s")


def test_failed_load_keeps_the_state() -> None:
    leader = Leader()
    leader.produce(header(1, 0, 0))
    with pytest.raises(CorruptSnapshotError):
        leader.psm.load_snapshot_bytes(b"garbage!" * 4, "s")
    assert set(leader.psm.producers()) == {1}


def test_torn_snapshot_write_leaves_the_old_file(tmp_path: Path) -> None:
    leader = Leader()
    leader.produce(header(1, 0, 0))
    path = str(tmp_path / "s.snapshot")
    leader.psm.write_snapshot(path, leader.leo)
    leader.produce(header(2, 0, 0))
    fs = FaultyFS()
    fs.torn_write_bytes = 7
    with pytest.raises(SimulatedCrash):
        leader.psm.write_snapshot(path, leader.leo, fs)
    loaded, offset = ProducerStateManager.read_snapshot(path)
    assert (offset, set(loaded.producers())) == (1, {1})


def kafka_snapshot(entries: list[tuple[int, int, int, int, int, int, int, int]]) -> bytes:
    """Apache Kafka's version-1 layout, from its published field list."""
    body = struct.pack(">i", len(entries)) + b"".join(struct.pack(">qhiqiqiq", *e) for e in entries)
    return struct.pack(">hI", 1, crc32c.crc32c(body)) + body


def test_reads_kafka_version_1_snapshots(tmp_path: Path) -> None:
    # producer_id, epoch, last_seq, last_offset, offset_delta, timestamp, coord_epoch, txn start
    data = kafka_snapshot(
        [
            (1, 0, 9, 40, 2, NOW, -1, -1),
            (2, 3, 1, 41, 3, NOW, -1, -1),  # the batch spans the wrap: MAX-1 .. 1
            (3, 2, -1, -1, 0, NOW, 5, 42),  # only a marker: no batch, an open transaction
        ]
    )
    path = tmp_path / snapshot_file_name(45)
    path.write_bytes(data)
    psm, offset = ProducerStateManager.read_snapshot(str(path))
    assert offset == 45
    entries = psm.producers()
    assert list(entries[1].batches) == [BatchMetadata(7, 9, 38, 40)]
    assert list(entries[2].batches) == [BatchMetadata(MAX_SEQ - 1, 1, 38, 41)]
    assert entries[3] == ProducerStateEntry(3, 2, NOW, 5, 42, -1)
    with pytest.raises(DuplicateBatch):
        psm.check(header(1, 0, 7, 3), NOW)
    psm.check(header(2, 3, 2), NOW)
    broken = bytearray(data)
    broken[-1] ^= 1
    path.write_bytes(bytes(broken))
    with pytest.raises(CorruptSnapshotError):
        ProducerStateManager.read_snapshot(str(path))
    with pytest.raises(CorruptSnapshotError):
        ProducerStateManager().load_snapshot_bytes(data, "no-offset.snapshot")


# --- a state machine against a model ----------------------------------------------------------


@dataclass(frozen=True)
class Appended:
    """One batch in the model's log."""

    pid: int
    epoch: int
    base_seq: int
    last_seq: int
    first_offset: int
    last_offset: int


PIDS = range(4)


class ProducerStateMachine(RuleBasedStateMachine):
    """The manager against a model that derives each producer's state from the log.

    Per producer: its epoch is that of its newest batch, its history the batches of that
    epoch. A retry of one of the last five is a duplicate, of an older one out of order;
    gaps, bad new-epoch sequences and stale epochs are rejected; truncation, snapshot
    reloads and log replays must not change any answer.
    """

    def __init__(self) -> None:
        super().__init__()
        self.leader = Leader()
        self.model: list[Appended] = []

    # -- model views --

    def history(self, pid: int) -> list[Appended]:
        mine = [a for a in self.model if a.pid == pid]
        return [a for a in mine if a.epoch == mine[-1].epoch] if mine else []

    def known(self) -> list[int]:
        return sorted({a.pid for a in self.model if a.pid >= 0})

    def accept(self, pid: int, epoch: int, seq: int, count: int) -> None:
        first, last = self.leader.produce(header(pid, epoch, seq, count))
        self.model.append(Appended(pid, epoch, seq, (seq + count - 1) % 2**31, first, last))

    # -- rules --

    @initialize()
    def start(self) -> None:
        self.accept(0, 0, 0, 1)

    @precondition(lambda self: len(self.known()) < len(PIDS))
    @rule(
        data=st.data(),
        epoch=st.integers(0, 5),
        seq=st.one_of(st.just(0), st.integers(MAX_SEQ - 6, MAX_SEQ), st.integers(0, MAX_SEQ)),
        count=st.integers(1, 4),
    )
    def new_producer(self, data: st.DataObject, epoch: int, seq: int, count: int) -> None:
        pid = data.draw(st.sampled_from([p for p in PIDS if p not in self.known()]))
        self.accept(pid, epoch, seq, count)

    @precondition(lambda self: self.known())
    @rule(data=st.data(), count=st.integers(1, 4))
    def send_next(self, data: st.DataObject, count: int) -> None:
        pid = data.draw(st.sampled_from(self.known()))
        last = self.history(pid)[-1]
        self.accept(pid, last.epoch, (last.last_seq + 1) % 2**31, count)

    @rule(count=st.integers(1, 3))
    def send_without_producer_id(self, count: int) -> None:
        self.leader.produce(header(-1, -1, -1, count))
        self.model.append(Appended(-1, -1, -1, -1, self.leader.leo - count, self.leader.leo - 1))

    @precondition(lambda self: self.known())
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(self.known()))
        history = self.history(pid)
        back = data.draw(st.integers(1, len(history)))
        a = history[-back]
        count = a.last_offset - a.first_offset + 1
        h = header(pid, a.epoch, a.base_seq, count)
        if back <= NUM_BATCHES_TO_RETAIN:
            with pytest.raises(DuplicateBatch) as info:
                self.leader.psm.check(h, NOW)
            assert (info.value.first_offset, info.value.last_offset) == (
                a.first_offset,
                a.last_offset,
            )
        else:
            with pytest.raises(OutOfOrderSequenceError):
                self.leader.psm.check(h, NOW)

    @precondition(lambda self: self.known())
    @rule(data=st.data(), gap=st.integers(1, 100))
    def gap(self, data: st.DataObject, gap: int) -> None:
        pid = data.draw(st.sampled_from(self.known()))
        last = self.history(pid)[-1]
        with pytest.raises(OutOfOrderSequenceError):
            self.leader.psm.check(header(pid, last.epoch, (last.last_seq + 1 + gap) % 2**31), NOW)

    @precondition(lambda self: self.known())
    @rule(data=st.data(), bump=st.integers(1, 3), seq=st.integers(0, 3), count=st.integers(1, 3))
    def new_epoch(self, data: st.DataObject, bump: int, seq: int, count: int) -> None:
        pid = data.draw(st.sampled_from(self.known()))
        epoch = self.history(pid)[-1].epoch + bump
        if seq == 0:
            self.accept(pid, epoch, 0, count)
        else:
            with pytest.raises(OutOfOrderSequenceError):
                self.leader.psm.check(header(pid, epoch, seq, count), NOW)

    @precondition(lambda self: any(self.history(p)[-1].epoch > 0 for p in self.known()))
    @rule(data=st.data(), seq=st.integers(0, 50))
    def stale_epoch(self, data: st.DataObject, seq: int) -> None:
        pid = data.draw(st.sampled_from([p for p in self.known() if self.history(p)[-1].epoch]))
        epoch = data.draw(st.integers(0, self.history(pid)[-1].epoch - 1))
        with pytest.raises(InvalidProducerEpochError):
            self.leader.psm.check(header(pid, epoch, seq), NOW)

    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        cut = data.draw(st.sampled_from([a.first_offset for a in self.model] + [self.leader.leo]))
        self.model = [a for a in self.model if a.last_offset < cut]
        self.leader.log = [h for h in self.leader.log if h.last_offset < cut]
        self.leader.leo = cut
        if self.leader.psm.truncate_to(cut):
            self.leader.psm = rebuilt(self.leader.log)
            self.leader.psm.update_map_end_offset(cut)

    @rule()
    def reload_snapshot(self) -> None:
        data = self.leader.psm.snapshot_bytes(self.leader.leo)
        fresh = ProducerStateManager()
        assert fresh.load_snapshot_bytes(data, "s") == self.leader.leo
        assert fresh.producers() == self.leader.psm.producers()
        self.leader.psm = fresh

    @rule()
    def replay_log(self) -> None:
        replayed = rebuilt(self.leader.log)
        assert replayed.producers() == self.leader.psm.producers()
        self.leader.psm = replayed

    # -- invariants --

    @invariant()
    def state_matches_model(self) -> None:
        producers = self.leader.psm.producers()
        assert sorted(producers) == self.known()
        for pid, entry in producers.items():
            history = self.history(pid)
            assert entry.producer_epoch == history[-1].epoch
            expected = [
                BatchMetadata(a.base_seq, a.last_seq, a.first_offset, a.last_offset)
                for a in history[-NUM_BATCHES_TO_RETAIN:]
            ]
            assert list(entry.batches) == expected


TestProducerStateMachine = ProducerStateMachine.TestCase
TestProducerStateMachine.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
