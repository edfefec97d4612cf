"""ProducerStateManager and transactions: ongoing transactions, LSO, markers, fencing, replay."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from protocol.error_codes import ErrorCode, KafkaError
from protocol.records import BatchHeader, ControlType, build_control_batch, read_batch_header
from storage.producer_state import (
    AppendOrigin,
    CompletedTxn,
    EndTxnMarker,
    InvalidProducerEpochError,
    InvalidTxnStateError,
    ProducerStateManager,
    TransactionCoordinatorFencedError,
)
from tests.storage.test_producer_state import NOW, header


def marker_header(pid: int, epoch: int, commit: bool, coordinator_epoch: int = 0) -> BatchHeader:
    control = ControlType.COMMIT if commit else ControlType.ABORT
    raw = build_control_batch(
        control,
        producer_id=pid,
        producer_epoch=epoch,
        coordinator_epoch=coordinator_epoch,
        timestamp_ms=NOW,
    )
    return read_batch_header(raw)


class Partition:
    """The manager driven as kbroker.partition drives it; the HW follows the log end."""

    def __init__(self) -> None:
        self.psm = ProducerStateManager()
        self.leo = 0
        self.aborted: list[tuple[int, int, int, int]] = []  # the txn index, as tuples
        self.log: list[tuple[BatchHeader, EndTxnMarker | None]] = []

    def data(self, pid: int, seq: int, count: int = 1, *, txn: bool = True, epoch: int = 0) -> int:
        h = header(pid, epoch, seq, count, transactional=txn, base_offset=self.leo)
        self.psm.check(h, NOW)
        return self._append(h, None)

    def end(self, pid: int, commit: bool, epoch: int = 0, coordinator_epoch: int = 0) -> int:
        self.psm.check_marker(pid, epoch, coordinator_epoch)
        h = marker_header(pid, epoch, commit, coordinator_epoch)._replace(base_offset=self.leo)
        return self._append(h, EndTxnMarker(commit, coordinator_epoch))

    def _append(self, h: BatchHeader, marker: EndTxnMarker | None) -> int:
        first = self.leo
        self.leo += h.last_offset_delta + 1
        self.log.append((h, marker))
        completed = self.psm.on_append(h, first, self.leo - 1, -1, NOW, marker)
        if completed is not None:
            if completed.is_aborted:
                lso = self.psm.last_stable_offset(completed)
                self.aborted.append((completed.producer_id, completed.first_offset, first, lso))
            self.psm.complete_txn(completed)
        self.psm.on_high_watermark_updated(self.leo)
        return first


def test_interleaved_transactions_move_the_first_unstable_offset() -> None:
    p = Partition()
    assert p.psm.first_unstable_offset is None
    p.data(-1, -1, txn=False)  # 0
    p.data(1, 0)  # 1: producer 1 opens
    p.data(2, 0, 2)  # 2-3: producer 2 opens
    p.data(1, 1)  # 4
    assert p.psm.first_unstable_offset == 1
    assert p.psm.ongoing_transactions() == {1: 1, 2: 2}
    assert p.end(2, commit=False) == 5
    assert p.aborted == [(2, 2, 5, 1)]  # producer 1 still holds the LSO at 1
    assert p.psm.first_unstable_offset == 1
    assert p.end(1, commit=True) == 6
    assert p.psm.first_unstable_offset is None
    assert p.psm.producers()[1].current_txn_start_offset == -1


def test_abort_with_no_other_open_transaction_records_marker_plus_one() -> None:
    p = Partition()
    p.data(1, 0)
    p.end(1, commit=False)
    assert p.aborted == [(1, 0, 1, 2)]


def test_ended_transaction_is_unstable_until_the_high_watermark_passes_its_marker() -> None:
    psm = ProducerStateManager()
    psm.on_append(header(1, 0, 0, transactional=True), 0, 0, -1, NOW)
    completed = psm.on_append(marker_header(1, 0, True), 1, 1, -1, NOW, EndTxnMarker(True, 0))
    assert completed == CompletedTxn(1, 0, 1, is_aborted=False)
    psm.complete_txn(completed)
    psm.on_high_watermark_updated(1)
    assert psm.first_unstable_offset == 0 and psm.first_undecided_offset is None
    psm.on_high_watermark_updated(2)
    assert psm.first_unstable_offset is None


def test_marker_without_a_transaction_ends_nothing() -> None:
    p = Partition()
    p.data(1, 0, txn=False)
    p.end(1, commit=False, coordinator_epoch=4)
    assert p.aborted == [] and p.psm.first_unstable_offset is None
    assert p.psm.producers()[1].coordinator_epoch == 4


def test_non_transactional_batch_during_a_transaction_is_invalid_txn_state() -> None:
    p = Partition()
    p.data(1, 0)
    with pytest.raises(InvalidTxnStateError) as err:
        p.data(1, 1, txn=False)
    assert err.value.code == ErrorCode.INVALID_TXN_STATE
    p.data(1, 1)  # transactional: fine


def test_marker_fencing() -> None:
    p = Partition()
    p.data(1, 0, epoch=3)
    p.end(1, commit=True, epoch=3, coordinator_epoch=7)
    with pytest.raises(TransactionCoordinatorFencedError) as fenced:
        p.psm.check_marker(1, 3, 6)
    assert fenced.value.code == ErrorCode.TRANSACTION_COORDINATOR_FENCED
    with pytest.raises(InvalidProducerEpochError):
        p.psm.check_marker(1, 2, 7)
    p.psm.check_marker(1, 3, 7)  # same epoch: fine before transaction version 2
    p.psm.check_marker(1, 4, 8)
    with pytest.raises(InvalidProducerEpochError):
        p.psm.check_marker(1, 2, 7, transaction_version=2)
    p.psm.check_marker(1, 3, 7, transaction_version=2)  # no open txn: a retried marker
    p.data(1, 0, epoch=4)
    with pytest.raises(InvalidProducerEpochError):
        p.psm.check_marker(1, 4, 7, transaction_version=2)  # would end the open txn


def test_coordinator_origin_checks_epoch_and_txn_state_but_not_sequence() -> None:
    psm = ProducerStateManager()
    psm.on_append(header(1, 2, 0, transactional=True), 0, 0, -1, NOW)
    psm.check(header(1, 2, -1, transactional=True), NOW, AppendOrigin.COORDINATOR)
    with pytest.raises(InvalidProducerEpochError):
        psm.check(header(1, 1, -1, transactional=True), NOW, AppendOrigin.COORDINATOR)
    with pytest.raises(KafkaError) as err:
        psm.check(header(1, 2, -1), NOW, AppendOrigin.COORDINATOR)
    assert err.value.code == ErrorCode.INVALID_TXN_STATE


def test_snapshot_rebuilds_ongoing_transactions(tmp_path: Path) -> None:
    p = Partition()
    p.data(2, 0)  # 0
    p.data(1, 0)  # 1
    p.data(3, 0)  # 2
    p.end(1, commit=False)  # 3
    path = str(tmp_path / "x.snapshot")
    p.psm.write_snapshot(path, p.leo)
    loaded, offset = ProducerStateManager.read_snapshot(path)
    assert offset == 4
    assert loaded.ongoing_transactions() == {0: 2, 2: 3}
    assert loaded.first_unstable_offset == 0


def test_replay_equals_the_leader_and_expiry_keeps_open_transactions() -> None:
    p = Partition()
    p.data(1, 0)
    p.data(2, 0, txn=False)
    p.end(1, commit=False)
    p.data(1, 1)
    replayed = ProducerStateManager()
    for h, marker in p.log:
        completed = replayed.load_batch(h, marker)
        if completed is not None:
            replayed.complete_txn(completed)
    assert replayed.producers() == p.psm.producers()
    assert replayed.ongoing_transactions() == p.psm.ongoing_transactions() == {3: 1}
    assert replayed.expire(NOW + 10**10, expiration_ms=1) == 1  # producer 2 only
    assert set(replayed.producers()) == {1}


def test_reopen_after_a_failed_index_write_lets_the_retry_end_it() -> None:
    psm = ProducerStateManager()
    psm.on_append(header(1, 0, 0, transactional=True), 0, 0, -1, NOW)
    completed = psm.on_append(marker_header(1, 0, False), 1, 1, -1, NOW, EndTxnMarker(False, 0))
    assert completed is not None
    psm.reopen_txn(completed)  # the index write failed
    retry = psm.on_append(marker_header(1, 0, False), 2, 2, -1, NOW, EndTxnMarker(False, 0))
    assert retry == CompletedTxn(1, 0, 2, True)
    psm.complete_txn(retry)
    psm.on_high_watermark_updated(3)
    assert psm.first_unstable_offset is None


class TransactionsModel(RuleBasedStateMachine):
    """Random interleavings of three transactional producers against a plain model."""

    def __init__(self) -> None:
        super().__init__()
        self.p = Partition()
        self.seq = {1: 0, 2: 0, 3: 0}
        self.open: dict[int, int] = {}  # producer -> first offset of its open txn
        self.expected_aborted: list[tuple[int, int, int, int]] = []

    @rule(pid=st.sampled_from([1, 2, 3]), count=st.integers(1, 3))
    def send(self, pid: int, count: int) -> None:
        offset = self.p.data(pid, self.seq[pid], count)
        self.seq[pid] += count
        self.open.setdefault(pid, offset)

    @rule(count=st.integers(1, 2))
    def plain(self, count: int) -> None:
        self.p.data(-1, -1, count, txn=False)

    @rule(pid=st.sampled_from([1, 2, 3]), commit=st.booleans())
    def end(self, pid: int, commit: bool) -> None:
        first = self.open.pop(pid, None)
        offset = self.p.leo
        others = sorted(self.open.values())
        self.p.end(pid, commit)
        if first is not None and not commit:
            lso = others[0] if others else offset + 1
            self.expected_aborted.append((pid, first, offset, lso))

    @invariant()
    def matches_the_model(self) -> None:
        assert self.p.psm.first_unstable_offset == min(self.open.values(), default=None)
        assert self.p.aborted == self.expected_aborted
        for pid in (1, 2, 3):
            entry = self.p.psm.last_entry(pid)
            start = entry.current_txn_start_offset if entry is not None else -1
            assert start == self.open.get(pid, -1)


TestTransactionsModel = TransactionsModel.TestCase
TestTransactionsModel.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
