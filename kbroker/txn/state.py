"""A transactional id's state and its legal transitions (Kafka's TransactionMetadata, KIP-98).

Theory of operation. Each transactional id has one `TransactionMetadata`: the producer id and
epoch it hands out, the transaction's timeout, its state, the partitions the open transaction
wrote to, and its start and last-update times. A change is two steps, as in Kafka: `prepare_*`
checks the transition against `VALID_PREVIOUS_STATES` (a missing entry raises
`IllegalTransition`), marks the id with a pending state (so that a second request gets
CONCURRENT_TRANSACTIONS instead of racing the first) and returns the next state as a
`TxnTransit`; the shard writes that as a `__transaction_state` record and, once the record is
appended, `complete_transition` applies it. Nothing else mutates the metadata, so replaying the
log rebuilds it (except `last_producer_epoch`, which Kafka's record does not carry either: a
KIP-360 retry of a successful InitProducerId that spans a restart is fenced, as in Kafka).

PREPARE_EPOCH_FENCE is never written: fencing an ongoing transaction (a new producer
incarnation, or a timeout) bumps the epoch and goes straight on to PREPARE_ABORT, the way
Kafka's coordinator turns its pending fence into the abort it writes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from protocol.error_codes import ErrorCode, KafkaError

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
MAX_EPOCH = 2**15 - 1  # Short.MAX_VALUE

TopicPartition = tuple[str, int]


class IllegalTransition(RuntimeError):
    """A transition the state table does not allow: a bug, never a client's mistake."""


class TransactionState(enum.Enum):
    """Kafka's states: (id written in the log, name shown by DescribeTransactions/
    ListTransactions, whether an idle transactional id in it may expire)."""

    EMPTY = (0, "Empty", True)  # initialised, no transaction open
    ONGOING = (1, "Ongoing", False)  # partitions added, producing
    PREPARE_COMMIT = (2, "PrepareCommit", False)  # EndTxn(commit) logged, markers going out
    PREPARE_ABORT = (3, "PrepareAbort", False)  # EndTxn(abort) or a fence logged, markers going out
    COMPLETE_COMMIT = (4, "CompleteCommit", True)  # every marker written
    COMPLETE_ABORT = (5, "CompleteAbort", True)
    DEAD = (6, "Dead", False)  # expired; its tombstone is being written
    PREPARE_EPOCH_FENCE = (7, "PrepareEpochFence", False)  # in-memory step of a fencing abort

    def __init__(self, state_id: int, state_name: str, expiration_allowed: bool) -> None:
        self.id = state_id
        self.state_name = state_name
        self.expiration_allowed = expiration_allowed

    @classmethod
    def from_id(cls, state_id: int) -> TransactionState:
        for state in cls:
            if state.id == state_id:
                return state
        raise ValueError(f"unknown transaction state id {state_id}")

    @classmethod
    def from_name(cls, name: str) -> TransactionState | None:
        return next((s for s in cls if s.state_name == name), None)


S = TransactionState

# next state -> the states it may be entered from (TransactionState.VALID_PREVIOUS_STATES).
# Kafka's TV2 entries (EMPTY/COMPLETE_* -> PREPARE_ABORT) are absent: EndTxn v5 is not served.
VALID_PREVIOUS_STATES: dict[TransactionState, frozenset[TransactionState]] = {
    S.EMPTY: frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.ONGOING: frozenset({S.ONGOING, S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.PREPARE_COMMIT: frozenset({S.ONGOING}),
    S.PREPARE_ABORT: frozenset({S.ONGOING, S.PREPARE_EPOCH_FENCE}),
    S.COMPLETE_COMMIT: frozenset({S.PREPARE_COMMIT}),
    S.COMPLETE_ABORT: frozenset({S.PREPARE_ABORT}),
    S.DEAD: frozenset({S.EMPTY, S.COMPLETE_ABORT, S.COMPLETE_COMMIT}),
    S.PREPARE_EPOCH_FENCE: frozenset({S.ONGOING}),
}


def check_transition(current: TransactionState, target: TransactionState) -> None:
    if current not in VALID_PREVIOUS_STATES[target]:
        raise IllegalTransition(f"{current.name} -> {target.name} is not a legal transition")


def is_epoch_exhausted(epoch: int) -> bool:
    """Kafka keeps the last epoch in reserve for the fence of the last incarnation."""
    return epoch >= MAX_EPOCH - 1


@dataclass(frozen=True, slots=True)
class TxnTransit:
    """The whole next state of a transactional id: what a `__transaction_state` record holds."""

    producer_id: int
    prev_producer_id: int
    next_producer_id: int
    producer_epoch: int
    last_producer_epoch: int
    txn_timeout_ms: int
    state: TransactionState
    partitions: frozenset[TopicPartition]
    txn_start_timestamp: int
    txn_last_update_timestamp: int


@dataclass(slots=True)
class TransactionMetadata:
    transactional_id: str
    producer_id: int
    producer_epoch: int = NO_PRODUCER_EPOCH
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    prev_producer_id: int = NO_PRODUCER_ID
    next_producer_id: int = NO_PRODUCER_ID
    txn_timeout_ms: int = 60_000
    state: TransactionState = S.EMPTY
    partitions: frozenset[TopicPartition] = field(default_factory=frozenset)
    txn_start_timestamp: int = -1
    txn_last_update_timestamp: int = -1
    pending_state: TransactionState | None = None

    @classmethod
    def from_transit(cls, transactional_id: str, t: TxnTransit) -> TransactionMetadata:
        """The metadata a record read back at load describes (no transition checks: the log
        is the truth)."""
        meta = cls(transactional_id, t.producer_id)
        meta._apply(t)
        return meta

    def snapshot(self) -> TxnTransit:
        return TxnTransit(
            self.producer_id,
            self.prev_producer_id,
            self.next_producer_id,
            self.producer_epoch,
            self.last_producer_epoch,
            self.txn_timeout_ms,
            self.state,
            self.partitions,
            self.txn_start_timestamp,
            self.txn_last_update_timestamp,
        )

    @property
    def pending(self) -> bool:
        return self.pending_state is not None

    # ------------------------------------------------------------------ prepare

    def _prepare(self, transit: TxnTransit, via: TransactionState | None = None) -> TxnTransit:
        if self.pending_state is not None:
            raise IllegalTransition(
                f"{self.transactional_id}: {transit.state.name} prepared while "
                f"{self.pending_state.name} is pending"
            )
        if transit.producer_id < 0 or (transit.state != S.DEAD and transit.producer_epoch < 0):
            raise IllegalTransition(f"{self.transactional_id}: illegal producer id/epoch")
        if via is None:
            check_transition(self.state, transit.state)
        else:
            check_transition(self.state, via)
            check_transition(via, transit.state)
        # prevProducerId is always the id held before this transition (Kafka's rule)
        transit = replace(transit, prev_producer_id=self.producer_id)
        self.pending_state = transit.state
        return transit

    def prepare_increment_epoch(
        self, timeout_ms: int, expected_epoch: int | None, now_ms: int
    ) -> TxnTransit:
        """InitProducerId on an id with no open transaction: bump the epoch, or (KIP-360) answer
        a retry of the call that already bumped it with the same epoch."""
        if is_epoch_exhausted(self.producer_epoch):
            raise IllegalTransition(f"no epochs left for producer id {self.producer_id}")
        bumped = self.producer_epoch + 1
        if expected_epoch is None:
            epoch, last = bumped, NO_PRODUCER_EPOCH
        elif self.producer_epoch in (NO_PRODUCER_EPOCH, expected_epoch):
            epoch, last = bumped, self.producer_epoch
        elif expected_epoch == self.last_producer_epoch:
            epoch, last = self.producer_epoch, self.last_producer_epoch
        else:
            raise KafkaError(ErrorCode.PRODUCER_FENCED)
        return self._prepare(
            replace(
                self.snapshot(),
                producer_epoch=epoch,
                last_producer_epoch=last,
                txn_timeout_ms=timeout_ms,
                state=S.EMPTY,
                partitions=frozenset(),
                txn_start_timestamp=-1,
                txn_last_update_timestamp=now_ms,
            )
        )

    def prepare_producer_id_rotation(
        self, new_producer_id: int, timeout_ms: int, now_ms: int, record_last_epoch: bool
    ) -> TxnTransit:
        """The epoch is exhausted: continue under a new producer id at epoch 0 (KIP-360)."""
        if self.state in (S.ONGOING, S.PREPARE_ABORT, S.PREPARE_COMMIT):
            raise IllegalTransition("cannot rotate producer ids while a transaction is pending")
        last = self.producer_epoch if record_last_epoch else NO_PRODUCER_EPOCH
        return self._prepare(
            replace(
                self.snapshot(),
                producer_id=new_producer_id,
                producer_epoch=0,
                last_producer_epoch=last,
                txn_timeout_ms=timeout_ms,
                state=S.EMPTY,
                partitions=frozenset(),
                txn_start_timestamp=-1,
                txn_last_update_timestamp=now_ms,
            )
        )

    def prepare_add_partitions(self, added: set[TopicPartition], now_ms: int) -> TxnTransit:
        starts = self.state in (S.EMPTY, S.COMPLETE_ABORT, S.COMPLETE_COMMIT)
        partitions = self.partitions if not starts else frozenset()
        return self._prepare(
            replace(
                self.snapshot(),
                state=S.ONGOING,
                partitions=partitions | added,
                txn_start_timestamp=now_ms if starts else self.txn_start_timestamp,
                txn_last_update_timestamp=now_ms,
            )
        )

    def prepare_abort_or_commit(self, commit: bool, now_ms: int) -> TxnTransit:
        return self._prepare(
            replace(
                self.snapshot(),
                state=S.PREPARE_COMMIT if commit else S.PREPARE_ABORT,
                next_producer_id=NO_PRODUCER_ID,
                txn_last_update_timestamp=now_ms,
            )
        )

    def prepare_fence_and_abort(self, now_ms: int) -> TxnTransit:
        """Fence the current incarnation and abort its transaction: bump the epoch (not past
        the maximum) and forget the last epoch, so its holder can never use it again."""
        bumped = (
            self.producer_epoch if self.producer_epoch == MAX_EPOCH else self.producer_epoch + 1
        )
        return self._prepare(
            replace(
                self.snapshot(),
                producer_epoch=bumped,
                last_producer_epoch=NO_PRODUCER_EPOCH,
                state=S.PREPARE_ABORT,
                next_producer_id=NO_PRODUCER_ID,
                txn_last_update_timestamp=now_ms,
            ),
            via=S.PREPARE_EPOCH_FENCE,
        )

    def prepare_complete(self, now_ms: int) -> TxnTransit:
        """Every marker is written: COMPLETE_COMMIT or COMPLETE_ABORT, partitions cleared."""
        target = S.COMPLETE_COMMIT if self.state == S.PREPARE_COMMIT else S.COMPLETE_ABORT
        return self._prepare(
            replace(
                self.snapshot(),
                state=target,
                next_producer_id=NO_PRODUCER_ID,
                partitions=frozenset(),
                txn_last_update_timestamp=now_ms,
            )
        )

    def prepare_dead(self) -> TxnTransit:
        return self._prepare(replace(self.snapshot(), state=S.DEAD, partitions=frozenset()))

    # ------------------------------------------------------------------ complete

    def complete_transition(self, transit: TxnTransit) -> None:
        """The record of `transit` is in the log: make it the current state."""
        if self.pending_state != transit.state:
            raise IllegalTransition(
                f"{self.transactional_id}: completing {transit.state.name} but "
                f"{self.pending_state.name if self.pending_state else 'nothing'} is pending"
            )
        if transit.state in (S.DEAD, S.PREPARE_EPOCH_FENCE):
            raise IllegalTransition(f"{transit.state.name} is never completed in place")
        if transit.state == S.ONGOING and not self.partitions <= transit.partitions:
            raise IllegalTransition("a transaction's partitions only grow while it is ongoing")
        self._apply(transit)

    def abandon_transition(self) -> None:
        """The record could not be appended: the state stays as it was."""
        self.pending_state = None

    def _apply(self, t: TxnTransit) -> None:
        self.producer_id = t.producer_id
        self.prev_producer_id = t.prev_producer_id
        self.next_producer_id = t.next_producer_id
        self.producer_epoch = t.producer_epoch
        self.last_producer_epoch = t.last_producer_epoch
        self.txn_timeout_ms = t.txn_timeout_ms
        self.state = t.state
        self.partitions = t.partitions
        self.txn_start_timestamp = t.txn_start_timestamp
        self.txn_last_update_timestamp = t.txn_last_update_timestamp
        self.pending_state = None
