"""The transaction coordinator shard, driven directly with a fake clock (no sockets, no sleeps)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kbroker.txn import records as rec
from kbroker.txn.coordinator import InitResult
from kbroker.txn.state import (
    MAX_EPOCH,
    VALID_PREVIOUS_STATES,
    IllegalTransition,
    TransactionMetadata,
    TransactionState,
    check_transition,
)
from protocol.error_codes import ErrorCode
from protocol.messages.transaction_log_value import PartitionsSchema, TransactionLogValue
from tests.kbroker.txn.harness import Harness

S = TransactionState
A0, A1, B0 = ("a", 0), ("a", 1), ("b", 0)


def started(h: Harness, *partitions: tuple[str, int]) -> tuple[int, int]:
    """Init "tx" and open a transaction on `partitions`; returns (producer id, epoch)."""
    init = h.init()
    assert init.error == ErrorCode.NONE
    assert h.add(init.producer_id, init.producer_epoch, *partitions) == ErrorCode.NONE
    return init.producer_id, init.producer_epoch


# ---------------------------------------------------------------- the state table


def test_state_table_allows_exactly_its_entries() -> None:
    for target, previous in VALID_PREVIOUS_STATES.items():
        for current in TransactionState:
            if current in previous:
                check_transition(current, target)
            else:
                with pytest.raises(IllegalTransition):
                    check_transition(current, target)
    assert S.ONGOING not in VALID_PREVIOUS_STATES[S.COMPLETE_COMMIT]


def test_preparing_twice_or_illegally_raises() -> None:
    meta = TransactionMetadata("tx", 1, producer_epoch=0)
    with pytest.raises(IllegalTransition):
        meta.prepare_abort_or_commit(True, 0)  # EMPTY -> PREPARE_COMMIT
    meta.prepare_add_partitions({A0}, 0)
    with pytest.raises(IllegalTransition):
        meta.prepare_add_partitions({A1}, 0)  # one pending transition at a time


# ---------------------------------------------------------------- InitProducerId


def test_init_keeps_the_producer_id_and_bumps_the_epoch() -> None:
    h = Harness()
    first, second = h.init(), h.init()
    assert first == InitResult(ErrorCode.NONE, 1000, 0)
    assert second == InitResult(ErrorCode.NONE, 1000, 1)
    assert h.logged_states() == ["EMPTY", "EMPTY"]


@pytest.mark.parametrize("timeout_ms", [0, -1, 60_001])
def test_init_refuses_a_timeout_outside_the_bounds(timeout_ms: int) -> None:
    h = Harness()
    assert h.init(timeout_ms=timeout_ms).error == ErrorCode.INVALID_TRANSACTION_TIMEOUT
    assert h.log == []


def test_kip360_recovery_with_current_and_previous_epoch() -> None:
    h = Harness()
    pid = h.init().producer_id
    bumped = h.init(expected=(pid, 0))
    assert bumped == InitResult(ErrorCode.NONE, pid, 1)
    assert h.meta().last_producer_epoch == 0
    # a retry of that call (its answer was lost) gets the same epoch, not another bump
    assert h.init(expected=(pid, 0)) == InitResult(ErrorCode.NONE, pid, 1)
    assert h.init(expected=(pid, 7)).error == ErrorCode.PRODUCER_FENCED
    assert h.init(expected=(pid + 1, 1)).error == ErrorCode.PRODUCER_FENCED


def test_exhausted_epoch_rotates_to_a_new_producer_id() -> None:
    h = Harness()
    old = h.init().producer_id
    exhausted = replace(h.meta().snapshot(), producer_epoch=MAX_EPOCH - 1)
    h.shard.replay(rec.TxnLogRecord("tx", exhausted), loading=True)
    rotated = h.init(expected=(old, MAX_EPOCH - 1))
    assert rotated.error == ErrorCode.NONE and rotated.producer_epoch == 0
    assert rotated.producer_id != old and h.meta().prev_producer_id == old
    # the producer never saw that answer and retries with its old id and epoch
    retry = h.init(expected=(old, MAX_EPOCH - 1))
    assert retry == InitResult(ErrorCode.NONE, rotated.producer_id, 0)


def test_kip360_retry_into_an_exhausted_epoch_is_an_error_not_a_crash() -> None:
    # found by test_shard_stateful: a recovery bumped the epoch to MAX_EPOCH - 1 (exhausted)
    # and its answer was lost; the retry, naming the epoch before, made the shard raise out
    # of the request (the connection was closed). Kafka's prepareIncrementProducerEpoch
    # throws there too, and the coordinator answers UNKNOWN_SERVER_ERROR.
    h = Harness()
    pid = h.init().producer_id
    almost = replace(h.meta().snapshot(), producer_epoch=MAX_EPOCH - 2)
    h.shard.replay(rec.TxnLogRecord("tx", almost), loading=True)
    assert h.init(expected=(pid, MAX_EPOCH - 2)) == InitResult(ErrorCode.NONE, pid, MAX_EPOCH - 1)
    records = len(h.log)
    assert h.init(expected=(pid, MAX_EPOCH - 2)).error == ErrorCode.UNKNOWN_SERVER_ERROR
    assert len(h.log) == records and h.meta().pending_state is None
    # the producer holding the exhausted epoch (or a new incarnation) still rotates
    rotated = h.init(expected=(pid, MAX_EPOCH - 1))
    assert rotated.error == ErrorCode.NONE and rotated.producer_id != pid
    assert rotated.producer_epoch == 0


def test_new_incarnation_fences_and_aborts_the_open_transaction() -> None:
    h = Harness()
    pid, epoch = started(h, A0, B0)
    assert h.init().error == ErrorCode.CONCURRENT_TRANSACTIONS
    assert sorted(h.markers) == [("a", 0, pid, 1, False), ("b", 0, pid, 1, False)]
    assert h.meta().state == S.COMPLETE_ABORT
    assert h.init() == InitResult(ErrorCode.NONE, pid, 2)  # the client's retry
    assert h.end(pid, epoch, commit=True) == ErrorCode.PRODUCER_FENCED
    assert h.add(pid, epoch, A1) == ErrorCode.PRODUCER_FENCED
    assert h.logged_states() == [
        "EMPTY",
        "ONGOING",
        "PREPARE_ABORT",
        "COMPLETE_ABORT",
        "EMPTY",
    ]


# ---------------------------------------------------------------- AddPartitionsToTxn


def test_add_partitions_errors() -> None:
    h = Harness()
    assert h.add(1, 0, A0) == ErrorCode.INVALID_PRODUCER_ID_MAPPING  # unknown id
    pid = h.init().producer_id
    assert h.add(pid + 1, 0, A0) == ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert h.add(pid, 1, A0) == ErrorCode.PRODUCER_FENCED
    assert h.add(pid, 0, A0) == ErrorCode.NONE
    records = len(h.log)
    assert h.add(pid, 0, A0) == ErrorCode.NONE  # already in: no new record
    assert len(h.log) == records
    assert h.add(pid, 0, A1) == ErrorCode.NONE
    assert h.meta().partitions == {A0, A1}


def test_a_second_request_while_a_record_is_being_appended_is_concurrent() -> None:
    h = Harness()
    pid = h.init().producer_id
    first = h.shard.run(h.now, lambda: h.shard.add_partitions("r1", "tx", pid, 0, {A0}))
    second = h.shard.run(h.now, lambda: h.shard.add_partitions("r2", "tx", pid, 0, {A1}))
    assert second.replies == [("r2", ErrorCode.CONCURRENT_TRANSACTIONS)]
    h.apply(first)
    assert h.replies.pop("r1") == ErrorCode.NONE and h.meta().partitions == {A0}


def test_failed_append_leaves_the_state_and_maps_the_error() -> None:
    h = Harness()
    pid = h.init().producer_id
    h.fail_append = ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert h.add(pid, 0, A0) == ErrorCode.NOT_COORDINATOR
    assert h.meta().state == S.EMPTY and h.meta().pending_state is None
    h.fail_append = None
    assert h.add(pid, 0, A0) == ErrorCode.NONE


def test_verify_partitions() -> None:
    h = Harness()
    pid, epoch = started(h, A0)
    verify = h.shard.verify_partitions
    assert verify("tx", pid, epoch, [A0, A1]) == {
        A0: ErrorCode.NONE,
        A1: ErrorCode.TRANSACTION_ABORTABLE,
    }
    assert verify("tx", pid, epoch + 1, [A0]) == {A0: ErrorCode.PRODUCER_FENCED}
    assert verify("tx", pid + 1, epoch, [A0]) == {A0: ErrorCode.INVALID_PRODUCER_ID_MAPPING}
    assert verify("nope", pid, epoch, [A0]) == {A0: ErrorCode.INVALID_PRODUCER_ID_MAPPING}
    assert h.end(pid, epoch, commit=True) == ErrorCode.NONE
    assert verify("tx", pid, epoch, [A0]) == {A0: ErrorCode.TRANSACTION_ABORTABLE}


# ---------------------------------------------------------------- EndTxn


def test_commit_writes_prepare_markers_then_complete() -> None:
    h = Harness()
    pid, epoch = started(h, A0, A1, B0)
    assert h.end(pid, epoch, commit=True) == ErrorCode.NONE
    assert sorted(h.markers) == [(t, p, pid, epoch, True) for t, p in (A0, A1, B0)]
    assert h.logged_states() == ["EMPTY", "ONGOING", "PREPARE_COMMIT", "COMPLETE_COMMIT"]
    assert h.meta().state == S.COMPLETE_COMMIT and h.meta().partitions == frozenset()
    # retries: the same outcome is fine, the other one is not
    assert h.end(pid, epoch, commit=True) == ErrorCode.NONE
    assert h.end(pid, epoch, commit=False) == ErrorCode.INVALID_TXN_STATE
    # the next transaction starts afresh
    assert h.add(pid, epoch, B0) == ErrorCode.NONE
    assert h.meta().partitions == {B0}
    assert h.end(pid, epoch, commit=False) == ErrorCode.NONE
    assert h.markers[-1] == ("b", 0, pid, epoch, False)
    assert h.end(pid, epoch, commit=False) == ErrorCode.NONE
    assert h.end(pid, epoch, commit=True) == ErrorCode.INVALID_TXN_STATE


def test_end_txn_errors() -> None:
    h = Harness()
    assert h.end(1, 0, commit=True) == ErrorCode.INVALID_PRODUCER_ID_MAPPING
    pid = h.init().producer_id
    assert h.end(pid, 0, commit=True) == ErrorCode.INVALID_TXN_STATE  # nothing open
    assert h.add(pid, 0, A0) == ErrorCode.NONE
    assert h.end(pid + 1, 0, commit=True) == ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert h.end(pid, 1, commit=True) == ErrorCode.PRODUCER_FENCED


def test_markers_are_retried_and_a_deleted_topic_is_skipped() -> None:
    h = Harness()
    pid, epoch = started(h, A0, A1, B0)
    h.fail_markers = {
        A1: ErrorCode.NOT_LEADER_OR_FOLLOWER,
        B0: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,  # deleted since: Kafka skips it
    }
    assert h.end(pid, epoch, commit=True) == ErrorCode.NONE
    assert h.meta().state == S.PREPARE_COMMIT
    assert h.end(pid, epoch, commit=True) == ErrorCode.CONCURRENT_TRANSACTIONS
    assert h.end(pid, epoch, commit=False) == ErrorCode.INVALID_TXN_STATE
    assert h.init().error == ErrorCode.CONCURRENT_TRANSACTIONS
    assert h.add(pid, epoch, A0) == ErrorCode.CONCURRENT_TRANSACTIONS
    h.advance(100)  # still failing: retried again later
    assert h.meta().state == S.PREPARE_COMMIT
    del h.fail_markers[A1]
    h.advance(100)
    assert h.meta().state == S.COMPLETE_COMMIT
    assert sorted(h.markers) == [("a", 0, pid, epoch, True), ("a", 1, pid, epoch, True)]


# ---------------------------------------------------------------- timeouts and expiry


def test_a_timed_out_transaction_is_aborted_with_a_fencing_epoch_bump() -> None:
    h = Harness()
    init = h.init(timeout_ms=1500)
    pid, epoch = init.producer_id, init.producer_epoch
    assert h.add(pid, epoch, A0) == ErrorCode.NONE
    h.advance(1000)  # the periodic check runs every 1000 ms
    assert h.meta().state == S.ONGOING
    h.advance(1000)
    assert h.meta().state == S.COMPLETE_ABORT
    assert h.markers == [("a", 0, pid, epoch + 1, False)]
    assert h.meta().producer_epoch == epoch + 1
    assert h.end(pid, epoch, commit=True) == ErrorCode.PRODUCER_FENCED
    assert h.add(pid, epoch, A0) == ErrorCode.PRODUCER_FENCED
    assert h.init() == InitResult(ErrorCode.NONE, pid, epoch + 2)


def test_idle_transactional_ids_expire_but_open_transactions_do_not() -> None:
    h = Harness()
    h.init("idle")
    started(h, A0)  # "tx", open
    h.shard.txns["tx"].txn_timeout_ms = 10**9  # keep it from timing out
    h.advance(50_000)  # the expiry check runs every 50 s, ids expire after 100 s idle
    assert set(h.shard.txns) == {"idle", "tx"}
    h.advance(50_000)
    assert set(h.shard.txns) == {"tx"}
    assert h.logged_states("idle") == ["EMPTY", "TOMBSTONE"]
    assert h.init("idle").producer_id != h.meta().producer_id  # a new id after expiry


# ---------------------------------------------------------------- replay and load


def test_replay_rebuilds_the_live_state() -> None:
    h = Harness()
    started(h, A0, A1)  # "tx" ongoing
    h.init("done")
    done = h.meta("done")
    assert h.add(done.producer_id, 0, B0, txn_id="done") == ErrorCode.NONE
    assert h.end(done.producer_id, 0, commit=True, txn_id="done") == ErrorCode.NONE
    h.init("fenced")
    assert h.add(h.meta("fenced").producer_id, 0, A0, txn_id="fenced") == ErrorCode.NONE
    h.init("fenced")
    h.init("gone")
    h.now += 200_000
    h.apply(h.shard.run(h.now, h.shard.expire_ids))

    loaded = Harness()
    for record in h.log:
        loaded.shard.replay(record, loading=True)

    def view(shard: Harness) -> dict[str, object]:
        return {
            txn_id: replace(meta.snapshot(), last_producer_epoch=-1)
            for txn_id, meta in shard.shard.txns.items()
        }

    assert view(loaded) == view(h)
    assert "gone" not in loaded.shard.txns


def test_load_completes_a_prepared_transaction() -> None:
    h = Harness()
    pid, epoch = started(h, A0, B0)
    h.fail_markers = {A0: ErrorCode.KAFKA_STORAGE_ERROR, B0: ErrorCode.KAFKA_STORAGE_ERROR}
    assert h.end(pid, epoch, commit=True) == ErrorCode.NONE  # the broker dies now

    fresh = Harness()
    for record in h.log:
        fresh.shard.replay(record, loading=True)
    assert fresh.meta().state == S.PREPARE_COMMIT
    fresh.apply(fresh.shard.run(fresh.now, fresh.shard.after_load))
    assert sorted(fresh.markers) == [("a", 0, pid, epoch, True), ("b", 0, pid, epoch, True)]
    assert fresh.meta().state == S.COMPLETE_COMMIT
    assert fresh.init() == InitResult(ErrorCode.NONE, pid, epoch + 1)


def test_empty_state_records_carry_no_partition_list() -> None:
    h = Harness()
    started(h, A0)
    empty, ongoing = (r.encode()[1] for r in h.log[:2])
    assert empty is not None and ongoing is not None
    value_empty = TransactionLogValue.decode(memoryview(empty)[2:], 1)
    value_ongoing = TransactionLogValue.decode(memoryview(ongoing)[2:], 1)
    assert value_empty.transaction_partitions is None
    assert value_ongoing.transaction_partitions == [PartitionsSchema("a", [0])]
