"""The transaction coordinator of one `__transaction_state` partition: a sans-I/O state machine.

Theory of operation (Kafka's TransactionCoordinator and TransactionStateManager, KIP-98,
KIP-360). Every input is a call with the current time: a request (InitProducerId,
AddPartitionsToTxn, AddOffsetsToTxn, EndTxn), a timer (the periodic abort of timed-out
transactions, the periodic expiry of idle transactional ids, a retry), or the result of
writing markers. Every output is an `Effects`: records to append to this shard's partition,
replies, transaction markers to write, and callbacks to run once the append is done or has
failed. Nothing here touches sockets, the clock or the disk.

A transactional id's state (`state.TransactionMetadata`) changes only when its record is
appended: the shard prepares a transition (which marks the id pending, so a concurrent request
gets CONCURRENT_TRANSACTIONS), writes the record, and `appended` replays it. Loading is the same
replay. Ending a transaction is Kafka's two phases: the PREPARE_COMMIT/PREPARE_ABORT record is
appended (and EndTxn answered: from then on the outcome is decided), the markers are written to
every partition of the transaction (`MarkerJob`, written by the runtime), and then the
COMPLETE_* record. A marker that fails with a retriable error is retried after a short backoff;
a partition whose topic was deleted (UNKNOWN_TOPIC_OR_PARTITION) is skipped, as in Kafka.

Fencing (a new producer incarnation calls InitProducerId while a transaction is open, or the
transaction outlives its timeout) bumps the epoch and aborts under the new epoch: the markers
carry it, so every partition then rejects the old incarnation's writes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from kbroker.groups.timers import Timers
from kbroker.txn.records import TxnLogRecord
from kbroker.txn.state import (
    NO_PRODUCER_EPOCH,
    IllegalTransition,
    TopicPartition,
    TransactionMetadata,
    TransactionState,
    TxnTransit,
    is_epoch_exhausted,
)
from protocol.error_codes import ErrorCode, KafkaError

log = logging.getLogger("kbroker.txn")

S = TransactionState
MARKER_RETRY_BACKOFF_MS = 100
ABORT_TIMER = "abort-timed-out"
EXPIRE_TIMER = "expire-ids"

# what a failed append of a transaction record tells the client (appendTransactionToLog)
_APPEND_ERRORS = {
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_ENOUGH_REPLICAS: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.REQUEST_TIMED_OUT: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_LEADER_OR_FOLLOWER: ErrorCode.NOT_COORDINATOR,
    ErrorCode.KAFKA_STORAGE_ERROR: ErrorCode.NOT_COORDINATOR,
    ErrorCode.MESSAGE_TOO_LARGE: ErrorCode.UNKNOWN_SERVER_ERROR,
    ErrorCode.RECORD_LIST_TOO_LARGE: ErrorCode.UNKNOWN_SERVER_ERROR,
}


@dataclass(frozen=True, slots=True)
class TxnConfig:
    """The broker settings the coordinator obeys (Kafka's names in `from_properties`)."""

    max_timeout_ms: int = 900_000
    transactional_id_expiration_ms: int = 7 * 24 * 3600 * 1000
    abort_timed_out_interval_ms: int = 10_000
    remove_expired_interval_ms: int = 3_600_000

    @classmethod
    def from_properties(cls, get: Callable[[str], Any]) -> TxnConfig:
        return cls(
            max_timeout_ms=get("transaction.max.timeout.ms"),
            transactional_id_expiration_ms=get("transactional.id.expiration.ms"),
            abort_timed_out_interval_ms=get(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms"
            ),
            remove_expired_interval_ms=get(
                "transaction.remove.expired.transaction.cleanup.interval.ms"
            ),
        )


@dataclass(frozen=True, slots=True)
class InitResult:
    error: ErrorCode
    producer_id: int = -1
    producer_epoch: int = NO_PRODUCER_EPOCH


@dataclass(frozen=True, slots=True)
class MarkerJob:
    """Write a COMMIT or ABORT marker for this producer id and epoch to each partition."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    coordinator_epoch: int
    commit: bool
    partitions: frozenset[TopicPartition]


Reply = object  # an opaque handle: the runtime's future, a test's token
AppendCallback = Callable[[ErrorCode | None], None]
Then = Callable[[ErrorCode], None]


@dataclass(slots=True)
class Effects:
    records: list[TxnLogRecord] = field(default_factory=list)
    replies: list[tuple[Reply, object]] = field(default_factory=list)
    markers: list[MarkerJob] = field(default_factory=list)
    on_appended: list[AppendCallback] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.records or self.replies or self.markers or self.on_appended)


class TransactionCoordinatorShard:
    def __init__(
        self,
        partition: int,
        config: TxnConfig,
        next_producer_id: Callable[[], int],
        coordinator_epoch: int = 0,
    ) -> None:
        self.partition = partition
        self.config = config
        self.next_producer_id = next_producer_id
        self.coordinator_epoch = coordinator_epoch
        self.txns: dict[str, TransactionMetadata] = {}
        self.timers: Timers[None] = Timers()
        self.now = 0
        self._effects: Effects | None = None

    # ------------------------------------------------------------------ effects

    @contextlib.contextmanager
    def step(self, now_ms: int) -> Iterator[Effects]:
        if self._effects is not None:
            raise AssertionError("coordinator steps do not nest")
        self.now = now_ms
        self._effects = Effects()
        try:
            yield self._effects
        finally:
            self._effects = None

    def run(self, now_ms: int, action: Callable[[], None]) -> Effects:
        with self.step(now_ms) as effects:
            action()
        return effects

    def reply(self, to: Reply, result: object) -> None:
        assert self._effects is not None, "reply outside a step"
        self._effects.replies.append((to, result))

    def _write(self, record: TxnLogRecord, on_appended: AppendCallback) -> None:
        assert self._effects is not None, "write outside a step"
        self._effects.records.append(record)
        self._effects.on_appended.append(on_appended)

    def appended(self, now_ms: int, effects: Effects, error: ErrorCode | None) -> Effects:
        """The runtime appended `effects.records` (error None) or failed to: apply, follow up."""
        if error is None:
            for record in effects.records:
                self.replay(record)
        callbacks = effects.on_appended

        def follow_up() -> None:
            for callback in callbacks:
                callback(error)

        return self.run(now_ms, follow_up)

    def tick(self, now_ms: int) -> Effects:
        with self.step(now_ms) as effects:
            while (action := self.timers.pop_due(now_ms)) is not None:
                action()
        return effects

    def next_deadline(self) -> int | None:
        return self.timers.next_deadline()

    # ------------------------------------------------------------------ replay and load

    def replay(self, record: TxnLogRecord, loading: bool = False) -> None:
        txn_id, transit = record.transactional_id, record.value
        if transit is None:
            self.txns.pop(txn_id, None)
            return
        meta = self.txns.get(txn_id)
        if loading or meta is None:
            self.txns[txn_id] = TransactionMetadata.from_transit(txn_id, transit)
        else:
            meta.complete_transition(transit)

    def after_load(self) -> None:
        """Start the periodic duties and finish what the previous run decided but did not
        complete: a PREPARE_COMMIT/PREPARE_ABORT gets its markers and COMPLETE record. An
        ONGOING transaction keeps its start time and times out as it would have."""
        self._schedule_periodic(ABORT_TIMER, self.config.abort_timed_out_interval_ms)
        self._schedule_periodic(EXPIRE_TIMER, self.config.remove_expired_interval_ms)
        for meta in self.txns.values():
            if meta.state in (S.PREPARE_COMMIT, S.PREPARE_ABORT) and not meta.pending:
                self._send_markers(meta.transactional_id, meta.snapshot())

    def _schedule_periodic(self, key: str, interval_ms: int) -> None:
        duty = self.abort_timed_out_transactions if key == ABORT_TIMER else self.expire_ids

        def fire() -> None:
            duty()
            self._schedule_periodic(key, interval_ms)

        self.timers.schedule(key, self.now + interval_ms, fire)

    # ------------------------------------------------------------------ transitions

    def _write_transition(self, meta: TransactionMetadata, transit: TxnTransit, then: Then) -> None:
        """Append `transit` (a tombstone for DEAD); `then` gets NONE or the client's error."""
        value = None if transit.state == S.DEAD else transit

        def on_appended(error: ErrorCode | None) -> None:
            if error is not None:
                if meta.pending_state == transit.state:
                    meta.abandon_transition()
                then(_APPEND_ERRORS.get(error, error))
            else:
                then(ErrorCode.NONE)

        self._write(TxnLogRecord(meta.transactional_id, value), on_appended)

    # ------------------------------------------------------------------ InitProducerId

    def init_producer_id(
        self,
        reply: Reply,
        transactional_id: str,
        timeout_ms: int,
        expected: tuple[int, int] | None = None,
    ) -> None:
        """A producer with this transactional id starts (or recovers, KIP-360, when
        `expected` names its current producer id and epoch)."""
        if not 0 < timeout_ms <= self.config.max_timeout_ms:
            self.reply(reply, InitResult(ErrorCode.INVALID_TRANSACTION_TIMEOUT))
            return
        meta = self.txns.get(transactional_id)
        if meta is None:
            meta = TransactionMetadata(
                transactional_id,
                self.next_producer_id(),
                txn_timeout_ms=timeout_ms,
                txn_last_update_timestamp=self.now,
            )
            self.txns[transactional_id] = meta
        try:
            transit = self._prepare_init(meta, timeout_ms, expected)
        except KafkaError as exc:
            self.reply(reply, InitResult(ErrorCode(exc.code)))
            return
        if transit.state == S.PREPARE_ABORT:
            # an open transaction of the previous incarnation: abort it under a bumped epoch,
            # and let the new producer retry (its retry bumps the epoch once more)
            def fenced(error: ErrorCode) -> None:
                code = ErrorCode.CONCURRENT_TRANSACTIONS if error == ErrorCode.NONE else error
                self.reply(reply, InitResult(code))

            self._end(meta, transit, fenced)
            return

        def initialised(error: ErrorCode) -> None:
            if error != ErrorCode.NONE:
                self.reply(reply, InitResult(error))
            else:
                log.info(
                    "initialised transactional id %s with producer id %d epoch %d",
                    transactional_id,
                    transit.producer_id,
                    transit.producer_epoch,
                )
                self.reply(
                    reply, InitResult(ErrorCode.NONE, transit.producer_id, transit.producer_epoch)
                )

        self._write_transition(meta, transit, initialised)

    def _prepare_init(
        self, meta: TransactionMetadata, timeout_ms: int, expected: tuple[int, int] | None
    ) -> TxnTransit:
        if meta.pending:
            raise KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS)
        if expected is not None and not (
            meta.producer_epoch == NO_PRODUCER_EPOCH
            or expected[0] == meta.producer_id
            or (expected[0] == meta.prev_producer_id and is_epoch_exhausted(expected[1]))
        ):
            raise KafkaError(ErrorCode.PRODUCER_FENCED)
        if meta.state in (S.PREPARE_ABORT, S.PREPARE_COMMIT):
            raise KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS)
        if meta.state in (S.COMPLETE_ABORT, S.COMPLETE_COMMIT, S.EMPTY):
            exhausted = is_epoch_exhausted(meta.producer_epoch)
            if exhausted and (expected is None or expected[1] == meta.producer_epoch):
                return meta.prepare_producer_id_rotation(
                    self.next_producer_id(), timeout_ms, self.now, expected is not None
                )
            if exhausted:
                # a KIP-360 retry with the epoch before the last one: Kafka's
                # prepareIncrementProducerEpoch throws, answered UNKNOWN_SERVER_ERROR
                raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, "no producer epochs left")
            return meta.prepare_increment_epoch(
                timeout_ms, None if expected is None else expected[1], self.now
            )
        if meta.state == S.ONGOING:
            return meta.prepare_fence_and_abort(self.now)
        raise IllegalTransition(f"{meta.transactional_id} found in {meta.state.name}")

    # ------------------------------------------------------------------ AddPartitionsToTxn

    def add_partitions(
        self,
        reply: Reply,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: set[TopicPartition],
    ) -> None:
        """Add partitions (or, for AddOffsetsToTxn, the group's offsets partition) to the
        producer's transaction, starting one if none is open. Replies with an ErrorCode."""
        meta = self.txns.get(transactional_id)
        if meta is None:
            self.reply(reply, ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        elif meta.pending:
            self.reply(reply, ErrorCode.CONCURRENT_TRANSACTIONS)
        elif meta.producer_id != producer_id:
            self.reply(reply, ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        elif meta.producer_epoch != producer_epoch:
            self.reply(reply, ErrorCode.PRODUCER_FENCED)
        elif meta.state in (S.PREPARE_COMMIT, S.PREPARE_ABORT):
            self.reply(reply, ErrorCode.CONCURRENT_TRANSACTIONS)
        elif meta.state == S.ONGOING and partitions <= meta.partitions:
            self.reply(reply, ErrorCode.NONE)
        else:
            transit = meta.prepare_add_partitions(partitions, self.now)
            self._write_transition(meta, transit, lambda error: self.reply(reply, error))

    def verify_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: list[TopicPartition],
    ) -> dict[TopicPartition, ErrorCode]:
        """AddPartitionsToTxn verify_only (KIP-890 part 1): is each partition in the open
        transaction of this producer id and epoch? Reads only."""
        meta = self.txns.get(transactional_id)
        error: ErrorCode | None = None
        if meta is None or meta.producer_id != producer_id:
            error = ErrorCode.INVALID_PRODUCER_ID_MAPPING
        elif meta.producer_epoch != producer_epoch:
            error = ErrorCode.PRODUCER_FENCED
        elif meta.state in (S.PREPARE_COMMIT, S.PREPARE_ABORT):
            error = ErrorCode.CONCURRENT_TRANSACTIONS
        if error is not None:
            return dict.fromkeys(partitions, error)
        assert meta is not None
        return {
            tp: ErrorCode.NONE if tp in meta.partitions else ErrorCode.TRANSACTION_ABORTABLE
            for tp in partitions
        }

    # ------------------------------------------------------------------ EndTxn

    def end_txn(
        self,
        reply: Reply,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
    ) -> None:
        """Commit or abort (transaction version 1: no epoch bump). A retry of an EndTxn that
        already completed answers NONE; the opposite outcome, INVALID_TXN_STATE."""
        meta = self.txns.get(transactional_id)
        if meta is None or meta.producer_id != producer_id:
            self.reply(reply, ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        elif meta.producer_epoch != producer_epoch:
            self.reply(reply, ErrorCode.PRODUCER_FENCED)
        elif meta.pending:
            self.reply(reply, ErrorCode.CONCURRENT_TRANSACTIONS)
        elif meta.state == S.ONGOING:
            transit = meta.prepare_abort_or_commit(commit, self.now)
            self._end(meta, transit, lambda error: self.reply(reply, error))
        else:
            self.reply(reply, _end_txn_answer(meta.state, commit))

    def _end(self, meta: TransactionMetadata, transit: TxnTransit, then: Then) -> None:
        """Append a PREPARE_* record; once it is in, answer and write the markers."""

        def prepared(error: ErrorCode) -> None:
            then(error)
            if error == ErrorCode.NONE:
                self._send_markers(meta.transactional_id, transit)

        self._write_transition(meta, transit, prepared)

    def _send_markers(self, transactional_id: str, transit: TxnTransit) -> None:
        assert self._effects is not None, "markers outside a step"
        self._effects.markers.append(
            MarkerJob(
                transactional_id,
                transit.producer_id,
                transit.producer_epoch,
                self.coordinator_epoch,
                transit.state == S.PREPARE_COMMIT,
                transit.partitions,
            )
        )

    def markers_written(
        self, now_ms: int, job: MarkerJob, errors: dict[TopicPartition, ErrorCode]
    ) -> Effects:
        """The runtime wrote `job`'s markers; `errors` has each partition's outcome."""
        with self.step(now_ms) as effects:
            retry = frozenset(
                tp
                for tp, error in errors.items()
                if error not in (ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            )
            if retry:
                log.warning("%s: retrying markers for %s", job.transactional_id, sorted(retry))
                again = replace(job, partitions=retry)
                self.timers.schedule(
                    f"markers/{job.transactional_id}",
                    now_ms + MARKER_RETRY_BACKOFF_MS,
                    lambda: self._resend(again),
                )
            else:
                self._complete(job)
        return effects

    def _resend(self, job: MarkerJob) -> None:
        assert self._effects is not None
        self._effects.markers.append(job)

    def _complete(self, job: MarkerJob) -> None:
        meta = self.txns.get(job.transactional_id)
        expected = S.PREPARE_COMMIT if job.commit else S.PREPARE_ABORT
        if (
            meta is None
            or meta.producer_id != job.producer_id
            or meta.producer_epoch != job.producer_epoch
            or meta.state != expected
        ):
            log.warning("%s: markers written but the transaction moved on", job.transactional_id)
            return
        if meta.pending:
            self._retry_complete(job)
            return

        def completed(error: ErrorCode) -> None:
            if error != ErrorCode.NONE:
                log.warning("%s: COMPLETE record not appended: %s", job.transactional_id, error)
                self._retry_complete(job)

        self._write_transition(meta, meta.prepare_complete(self.now), completed)

    def _retry_complete(self, job: MarkerJob) -> None:
        self.timers.schedule(
            f"complete/{job.transactional_id}",
            self.now + MARKER_RETRY_BACKOFF_MS,
            lambda: self._complete(job),
        )

    # ------------------------------------------------------------------ periodic duties

    def abort_timed_out_transactions(self) -> None:
        """Abort, with an epoch bump that fences the producer, every transaction open longer
        than its timeout (Kafka's abortTimedOutTransactions)."""
        for meta in list(self.txns.values()):
            if (
                meta.state == S.ONGOING
                and not meta.pending
                and meta.txn_start_timestamp + meta.txn_timeout_ms < self.now
            ):
                log.info("aborting timed-out transaction of %s", meta.transactional_id)
                self._end(meta, meta.prepare_fence_and_abort(self.now), _log_abort_outcome)

    def expire_ids(self) -> None:
        """Forget transactional ids idle longer than transactional.id.expiration.ms: a
        tombstone each, removing them once appended."""
        horizon = self.now - self.config.transactional_id_expiration_ms
        for meta in list(self.txns.values()):
            if (
                not meta.pending
                and meta.state.expiration_allowed
                and meta.txn_last_update_timestamp <= horizon
            ):
                log.info("expiring transactional id %s", meta.transactional_id)
                self._write_transition(meta, meta.prepare_dead(), lambda error: None)


def _end_txn_answer(state: TransactionState, commit: bool) -> ErrorCode:
    """EndTxn when no transaction is open (Kafka's endTransactionWithTV1 table)."""
    if state in (S.COMPLETE_COMMIT, S.COMPLETE_ABORT):
        same = (state == S.COMPLETE_COMMIT) == commit
        return ErrorCode.NONE if same else ErrorCode.INVALID_TXN_STATE
    if state in (S.PREPARE_COMMIT, S.PREPARE_ABORT):
        same = (state == S.PREPARE_COMMIT) == commit
        return ErrorCode.CONCURRENT_TRANSACTIONS if same else ErrorCode.INVALID_TXN_STATE
    if state == S.EMPTY:
        return ErrorCode.INVALID_TXN_STATE
    raise IllegalTransition(f"EndTxn found the transactional id in {state.name}")


def _log_abort_outcome(error: ErrorCode) -> None:
    if error != ErrorCode.NONE:
        log.warning("rollback of a timed-out transaction failed: %s", error.name)
