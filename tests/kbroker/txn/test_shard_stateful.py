"""A hypothesis state machine: the transaction coordinator shard against several producers.

Producers (a few per transactional id, so that incarnations fence each other) call
InitProducerId (fresh, or KIP-360 with their current id and epoch, sometimes losing the
answer and retrying), AddPartitionsToTxn, AddOffsetsToTxn (the group's `__consumer_offsets`
partition) and EndTxn (commit or abort, retried at will), and keep using their id and epoch
after they were fenced, as zombies do. A fake clock moves so that transactions time out and
idle ids expire; appends to `__transaction_state` fail now and then, and so do markers; the
coordinator restarts (a fresh shard replays every record appended so far and finishes what
the log says was decided). One id may start a few epochs short of exhaustion, so that the
producer id rotation (KIP-360) is reached.

Invariants, after every step:

(a) replaying the log into a fresh shard gives the live state (the last producer epoch
    aside: it is not in the record, as in Kafka; and an id whose first record failed to be
    appended is only in memory, as in Kafka);
(b) every record follows Kafka's state table; a producer epoch never goes backwards for a
    transactional id (a new producer id only by rotation after the epoch is exhausted, or
    after the id expired); at most one transaction is in progress per id;
(c) every transaction that reached PREPARE_COMMIT/PREPARE_ABORT gets, before its COMPLETE
    record of the same outcome, exactly one marker (per coordinator run: a restarted
    coordinator sends them all again, as Kafka's does) on each of its partitions, with its
    result, producer id and epoch, and no other marker; once faults stop it completes;
(d) a producer whose id and epoch are older than one already in the log (it was fenced)
    never gets NONE for AddPartitionsToTxn, AddOffsetsToTxn or EndTxn; an answer of NONE
    matches the live state; no id is left mid-transition between steps;
(e) with faults healed, a transaction open past its timeout is aborted by the next periodic
    check, and an idle id past transactional.id.expiration.ms is removed by the next one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from kbroker.coordinator_runtime import partition_for
from kbroker.groups.runtime import GROUP_METADATA_TOPIC
from kbroker.txn import records as rec
from kbroker.txn.coordinator import Effects, InitResult, TransactionCoordinatorShard
from kbroker.txn.state import (
    MAX_EPOCH,
    NO_PRODUCER_EPOCH,
    VALID_PREVIOUS_STATES,
    TopicPartition,
    TransactionState,
    TxnTransit,
    is_epoch_exhausted,
)
from protocol.error_codes import ErrorCode
from tests.kbroker.txn.harness import CONFIG, Harness

E = ErrorCode
S = TransactionState
TXN_IDS = ["t0", "t1", "t2"]
SEEDED = "t2"  # may start a few epochs short of exhaustion
SEEDED_PID = 500  # below the harness's producer ids: a rotated id is always larger
PARTITIONS: list[TopicPartition] = [("a", 0), ("a", 1), ("b", 0)]
GROUPS = {g: (GROUP_METADATA_TOPIC, partition_for(g, 50)) for g in ("g0", "g1")}
ALL_PARTITIONS = PARTITIONS + sorted(GROUPS.values())
APPEND_ERRORS = [E.NOT_LEADER_OR_FOLLOWER, E.REQUEST_TIMED_OUT, E.NOT_ENOUGH_REPLICAS]
MARKER_ERRORS = [E.NOT_LEADER_OR_FOLLOWER, E.REQUEST_TIMED_OUT, E.UNKNOWN_TOPIC_OR_PARTITION]
APPEND_FAILED = {E.NOT_COORDINATOR, E.COORDINATOR_NOT_AVAILABLE}
INIT_ERRORS = {E.NONE, E.CONCURRENT_TRANSACTIONS, E.PRODUCER_FENCED} | APPEND_FAILED
ADD_ERRORS = {
    E.NONE,
    E.CONCURRENT_TRANSACTIONS,
    E.INVALID_PRODUCER_ID_MAPPING,
    E.PRODUCER_FENCED,
} | APPEND_FAILED
END_ERRORS = ADD_ERRORS | {E.INVALID_TXN_STATE}
PREPARED = {S.PREPARE_COMMIT: True, S.PREPARE_ABORT: False}
COMPLETED = {S.COMPLETE_COMMIT: True, S.COMPLETE_ABORT: False}


@dataclass(frozen=True)
class Marker:
    """A marker written (or, its topic deleted, skipped) on one partition."""

    txn_id: str
    tp: TopicPartition
    producer_id: int
    epoch: int
    commit: bool
    skipped: bool = False


RESTART = None  # in the event stream: the coordinator restarted
Event = rec.TxnLogRecord | Marker | None


class LogHarness(Harness):
    """The unit tests' harness, recording records, markers, skipped partitions and restarts
    in one stream (so markers can be matched with the records around them), failing the
    next `fail_appends` appends, and restarting the coordinator."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.fail_appends: list[ErrorCode] = []
        self.coordinator_epoch = 0
        super().__init__()

    def apply(self, effects: Effects) -> None:
        queue = deque([effects])
        while queue:
            current = queue.popleft()
            if current.records or current.on_appended:
                error = None
                if current.records and self.fail_appends:
                    error = self.fail_appends.pop(0)
                    event(f"append failed: {[r.transactional_id for r in current.records]}")
                elif current.records:
                    for r in current.records:
                        decoded = rec.decode(*r.encode())
                        self.log.append(decoded)
                        self.events.append(decoded)
                queue.append(self.shard.appended(self.now, current, error))
            for job in current.markers:
                assert job.coordinator_epoch == self.coordinator_epoch
                errors = {tp: self.fail_markers.get(tp, E.NONE) for tp in job.partitions}
                for tp, error in sorted(errors.items()):
                    if error in (E.NONE, E.UNKNOWN_TOPIC_OR_PARTITION):
                        marker = Marker(
                            job.transactional_id,
                            tp,
                            job.producer_id,
                            job.producer_epoch,
                            job.commit,
                            skipped=error != E.NONE,
                        )
                        self.events.append(marker)
                queue.append(self.shard.markers_written(self.now, job, errors))
            for reply, result in current.replies:
                self.replies[reply] = result

    def load(self, coordinator_epoch: int) -> TransactionCoordinatorShard:
        shard = TransactionCoordinatorShard(
            0, self.shard.config, lambda: next(self.ids), coordinator_epoch
        )
        shard.now = self.now
        for record in self.log:
            shard.replay(record, loading=True)
        return shard

    def restart(self) -> None:
        self.coordinator_epoch += 1
        self.shard = self.load(self.coordinator_epoch)
        self.events.append(RESTART)
        self.apply(self.shard.run(self.now, self.shard.after_load))


@dataclass
class Producer:
    index: int
    txn_id: str
    creds: tuple[int, int] | None = None  # the producer id and epoch it holds


@dataclass
class Open:
    """A transaction between its PREPARE_* record and its COMPLETE_* record."""

    producer_id: int
    epoch: int
    commit: bool
    partitions: frozenset[TopicPartition]
    marked: set[TopicPartition] = field(default_factory=set)  # across coordinator runs
    marked_this_run: set[TopicPartition] = field(default_factory=set)
    skipped: set[TopicPartition] = field(default_factory=set)


class TxnShardMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = LogHarness()
        self.producers: list[Producer] = []
        self.checked = 0  # events checked so far
        self.last: dict[str, TxnTransit] = {}  # each live id's last record
        self.highest: dict[str, tuple[int, int]] = {}  # highest (pid, epoch) ever logged
        self.open: dict[str, Open] = {}
        self.added_by: dict[str, set[tuple[int, int]]] = {}  # adders in the open txn
        self.granted: dict[str, tuple[int, int]] = {}  # last InitProducerId answer
        self.ending: str | None = None  # the id an EndTxn is being answered for

    @initialize(
        ids=st.lists(st.sampled_from(TXN_IDS), min_size=2, max_size=5),
        seed=st.booleans(),
    )
    def make_producers(self, ids: list[str], seed: bool) -> None:
        self.producers = [Producer(i, txn_id) for i, txn_id in enumerate(ids)]
        if seed:
            # a previous life left SEEDED three epochs short of exhaustion
            transit = TxnTransit(
                SEEDED_PID, -1, -1, MAX_EPOCH - 4, -1, 10_000, S.EMPTY, frozenset(), -1, 0
            )
            record = rec.TxnLogRecord(SEEDED, transit)
            self.h.log.append(record)
            self.h.events.append(record)
            self.h.restart()

    # ------------------------------------------------------------------ helpers

    def _faulty(self) -> bool:
        return bool(self.h.fail_appends)

    def _fenced(self, p: Producer) -> bool:
        """Its id and epoch are older than one in the log: a newer incarnation (or a
        timeout) has fenced it."""
        assert p.creds is not None
        return p.creds < self.highest.get(p.txn_id, (-1, -1))

    def _live(self, p: Producer) -> tuple[int, int] | None:
        meta = self.h.shard.txns.get(p.txn_id)
        return None if meta is None else (meta.producer_id, meta.producer_epoch)

    def _holder(self, data: st.DataObject) -> Producer | None:
        """A producer to act: one that holds an id and epoch (a fresh one initialises)."""
        p = data.draw(st.sampled_from(self.producers))
        if p.creds is None:
            result = self._init(p, data.draw(st.sampled_from([1_000, 10_000])), None)
            if result.error == E.NONE:
                p.creds = (result.producer_id, result.producer_epoch)
        return p if p.creds is not None else None

    # ------------------------------------------------------------------ InitProducerId

    def _init(self, p: Producer, timeout_ms: int, expected: tuple[int, int] | None) -> InitResult:
        faulty = self._faulty()
        before = self.highest.get(p.txn_id)
        meta = self.h.shard.txns.get(p.txn_id)
        # Kafka cannot answer a KIP-360 retry once the epoch is exhausted (its
        # prepareIncrementProducerEpoch throws): UNKNOWN_SERVER_ERROR
        stuck = (
            expected is not None
            and meta is not None
            and meta.state in (S.EMPTY, S.COMPLETE_ABORT, S.COMPLETE_COMMIT)
            and is_epoch_exhausted(meta.producer_epoch)
            and expected[1] != meta.producer_epoch
            and expected[0] in (meta.producer_id, meta.prev_producer_id)
        )
        result = self.h.init(p.txn_id, timeout_ms, expected)
        self._check_events()
        event(f"init{' kip360' if expected else ''}: {result.error.name}")
        if stuck:
            assert result.error in (E.UNKNOWN_SERVER_ERROR, E.PRODUCER_FENCED), result
            return result
        assert result.error in INIT_ERRORS, result
        assert faulty or result.error not in APPEND_FAILED, result
        if result.error == E.PRODUCER_FENCED:
            assert expected is not None
        if result.error != E.NONE:
            return result
        granted = (result.producer_id, result.producer_epoch)
        last = self.last[p.txn_id]
        assert last.state == S.EMPTY and (last.producer_id, last.producer_epoch) == granted
        assert result.producer_epoch < MAX_EPOCH  # the last one is kept for a fence
        previous = self.granted.get(p.txn_id)
        if previous is not None:
            # a KIP-360 retry of a successful call gets the same answer; anything else more
            assert granted > previous or (expected is not None and granted == previous)
        if expected is None and before is not None:
            assert granted > before
        self.granted[p.txn_id] = granted
        return result

    @rule(
        data=st.data(),
        timeout_ms=st.sampled_from([1_000, 5_000, 5_000, 30_000, 60_000]),
        kip360=st.booleans(),
        lose_answer=st.booleans(),
    )
    def init(self, data: st.DataObject, timeout_ms: int, kip360: bool, lose_answer: bool) -> None:
        """A producer starts (a new incarnation fences the old one) or recovers (KIP-360);
        the answer may be lost, the producer then keeping the id and epoch it had."""
        p = data.draw(st.sampled_from(self.producers))
        result = self._init(p, timeout_ms, p.creds if kip360 else None)
        if result.error == E.NONE and not lose_answer:
            p.creds = (result.producer_id, result.producer_epoch)

    @rule(data=st.data(), timeout_ms=st.sampled_from([5_000, 30_000]))
    def init_retried(self, data: st.DataObject, timeout_ms: int) -> None:
        """KIP-360: the answer to a recovery is lost and the producer asks again with the
        same id and epoch: the same answer, not another bump."""
        p = self._holder(data)
        if p is None:
            return
        assert p.creds is not None
        # (an id that expired starts afresh: the retry is then fenced, as in Kafka)
        known = p.txn_id in self.last
        first = self._init(p, timeout_ms, p.creds)
        if first.error != E.NONE:
            return
        second = self._init(p, timeout_ms, p.creds)
        exhausted = is_epoch_exhausted(first.producer_epoch) and p.creds[1] != first.producer_epoch
        if known and not self._faulty() and not exhausted:
            assert second == first, (first, second)
        if second.error == E.NONE:
            p.creds = (second.producer_id, second.producer_epoch)

    @rule(timeout_ms=st.sampled_from([0, -1, 60_001]), data=st.data())
    def init_bad_timeout(self, timeout_ms: int, data: st.DataObject) -> None:
        p = data.draw(st.sampled_from(self.producers))
        records = len(self.h.log)
        assert self.h.init(p.txn_id, timeout_ms).error == E.INVALID_TRANSACTION_TIMEOUT
        assert len(self.h.log) == records

    # ------------------------------------------------------------------ AddPartitions, EndTxn

    def _add(self, p: Producer, partitions: set[TopicPartition]) -> None:
        assert p.creds is not None
        faulty, fenced, live = self._faulty(), self._fenced(p), self._live(p)
        meta = self.h.shard.txns.get(p.txn_id)
        preparing = meta is not None and meta.state in PREPARED
        code = self.h.add(*p.creds, *partitions, txn_id=p.txn_id)
        self._check_events()
        event(f"add{' (fenced)' if fenced else ''}: {code.name}")
        assert code in ADD_ERRORS, code
        assert faulty or code not in APPEND_FAILED, code
        if fenced:
            assert code != E.NONE, f"fenced {p} added {partitions}"
        if live == p.creds and not faulty and not preparing:
            assert code == E.NONE, code  # the current producer, nothing in the way
        if code == E.NONE:
            meta = self.h.shard.txns[p.txn_id]
            assert meta.state == S.ONGOING and partitions <= meta.partitions
            assert (meta.producer_id, meta.producer_epoch) == p.creds
            adders = self.added_by.setdefault(p.txn_id, set())
            adders.add(p.creds)
            assert len(adders) == 1, f"two producers in one transaction of {p.txn_id}: {adders}"

    @rule(data=st.data(), partitions=st.sets(st.sampled_from(PARTITIONS), min_size=1))
    def add_partitions(self, data: st.DataObject, partitions: set[TopicPartition]) -> None:
        if (p := self._holder(data)) is not None:
            self._add(p, partitions)

    @rule(
        data=st.data(),
        partitions=st.sets(st.sampled_from(ALL_PARTITIONS), min_size=1, max_size=3),
        commit=st.booleans(),
    )
    def transaction(
        self, data: st.DataObject, partitions: set[TopicPartition], commit: bool
    ) -> None:
        """A whole transaction in one go: add its partitions, then commit or abort."""
        if (p := self._holder(data)) is not None:
            self._add(p, partitions)
            self._end(p, commit)

    @rule(data=st.data(), group=st.sampled_from(sorted(GROUPS)))
    def add_offsets(self, data: st.DataObject, group: str) -> None:
        """AddOffsetsToTxn: the group's `__consumer_offsets` partition joins."""
        if (p := self._holder(data)) is not None:
            self._add(p, {GROUPS[group]})

    @rule(data=st.data(), commit=st.booleans())
    def end_txn(self, data: st.DataObject, commit: bool) -> None:
        """EndTxn, or its retry (the same or, wrongly, the other outcome)."""
        if (p := self._holder(data)) is not None:
            self._end(p, commit)

    def _end(self, p: Producer, commit: bool) -> None:
        assert p.creds is not None
        faulty, fenced, live = self._faulty(), self._fenced(p), self._live(p)
        meta = self.h.shard.txns.get(p.txn_id)
        was_ongoing = meta is not None and meta.state == S.ONGOING
        code = self.h.end(*p.creds, commit, txn_id=p.txn_id)
        self.ending = p.txn_id  # the PREPARE record appended now is the client's, no fence
        self._check_events()
        self.ending = None
        event(f"end{' (fenced)' if fenced else ''}: {code.name}")
        assert code in END_ERRORS, code
        assert faulty or code not in APPEND_FAILED, code
        if fenced:
            assert code != E.NONE, f"fenced {p} ended its transaction"
        if live == p.creds and was_ongoing and not faulty:
            assert code == E.NONE, code
        if code == E.NONE:
            meta = self.h.shard.txns[p.txn_id]
            assert (meta.producer_id, meta.producer_epoch) == p.creds
            outcome = PREPARED.get(meta.state, COMPLETED.get(meta.state))
            assert outcome == commit, (meta.state, commit)

    # ------------------------------------------------------------------ time and faults

    @rule(ms=st.sampled_from([1, 100, 100, 500, 1_000, 1_000, 3_000, 10_000, 60_000, 120_000]))
    def advance(self, ms: int) -> None:
        self.h.advance(ms)

    @rule(count=st.integers(1, 2), error=st.sampled_from(APPEND_ERRORS))
    def fail_appends(self, count: int, error: ErrorCode) -> None:
        self.h.fail_appends = [error] * count

    @rule(tp=st.sampled_from(ALL_PARTITIONS), error=st.sampled_from(MARKER_ERRORS))
    def fail_markers(self, tp: TopicPartition, error: ErrorCode) -> None:
        self.h.fail_markers[tp] = error

    @rule()
    def heal_markers(self) -> None:
        self.h.fail_markers.clear()

    @rule()
    def restart(self) -> None:
        """The coordinator moves (or the broker restarts): a fresh shard loads the log."""
        self.h.restart()
        self._check_events()

    @rule(long=st.booleans())
    def settle(self, long: bool) -> None:
        """Faults stop and time passes: one periodic abort check (and, long, one expiry
        check) runs; every decided transaction completes."""
        self.h.fail_appends.clear()
        self.h.fail_markers.clear()
        # the abort check runs at most its interval from now, marker retries sooner
        self.h.advance(CONFIG.remove_expired_interval_ms if long else 1_000)
        self._check_events()
        now = self.h.now
        for meta in self.h.shard.txns.values():
            assert meta.state not in PREPARED, meta
            if meta.state == S.ONGOING:
                assert meta.txn_start_timestamp + meta.txn_timeout_ms >= now, meta
            if long and meta.state.expiration_allowed:
                horizon = now - CONFIG.transactional_id_expiration_ms
                assert meta.txn_last_update_timestamp > horizon, meta
        assert not self.open, self.open

    # ------------------------------------------------------------------ invariants

    def _check_record(self, record: rec.TxnLogRecord) -> None:
        txn_id, t = record.transactional_id, record.value
        last = self.last.get(txn_id)
        event(f"record {'TOMBSTONE' if t is None else t.state.name}")
        if t is None:  # tombstone: an idle id expired
            if last is None:
                event("tombstone of an id only in memory")  # its first record failed
                return
            assert last.state.expiration_allowed, (txn_id, last)
            assert txn_id not in self.open
            del self.last[txn_id]
            self.granted.pop(txn_id, None)
            return
        assert t.producer_epoch >= 0 and t.producer_id >= 0
        if last is None:
            assert t.state == S.EMPTY, t  # a new id starts with InitProducerId
        else:
            # (PREPARE_ABORT: from ONGOING, directly or via the in-memory PREPARE_EPOCH_FENCE)
            assert last.state in VALID_PREVIOUS_STATES[t.state], (last.state, t.state)
            if t.producer_id == last.producer_id:
                assert t.producer_epoch >= last.producer_epoch, (last, t)
            else:  # KIP-360 rotation: only once the epoch is exhausted, to epoch 0
                event("producer id rotated")
                assert is_epoch_exhausted(last.producer_epoch), (last, t)
                assert t.producer_epoch == 0 and t.prev_producer_id == last.producer_id
                assert t.state == S.EMPTY
        key = (t.producer_id, t.producer_epoch)
        assert key >= self.highest.get(txn_id, (-1, -1)), (txn_id, key, self.highest)
        self.highest[txn_id] = key
        if t.state == S.ONGOING:
            assert t.partitions and t.txn_start_timestamp >= 0
            if last is not None and last.state == S.ONGOING:  # the same transaction grows
                assert last.partitions <= t.partitions
                assert last.txn_start_timestamp == t.txn_start_timestamp
                assert (last.producer_id, last.producer_epoch) == key
        else:
            self.added_by.pop(txn_id, None)
        if t.state in PREPARED:
            assert last is not None and last.state == S.ONGOING
            assert txn_id not in self.open, "one transaction at a time"
            assert t.partitions == last.partitions and t.producer_id == last.producer_id
            # EndTxn keeps the epoch; a fence (a new incarnation, a timeout) bumps it, so that
            # the markers fence the old incarnation on every partition
            fence = self.ending != txn_id
            bump = 1 if fence and last.producer_epoch < MAX_EPOCH else 0
            assert t.producer_epoch == last.producer_epoch + bump, (fence, last, t)
            assert not (fence and t.state == S.PREPARE_COMMIT), t
            event(f"{t.state.name}{' (fenced)' if fence else ''}")
            self.open[txn_id] = Open(
                t.producer_id, t.producer_epoch, PREPARED[t.state], t.partitions
            )
        elif t.state in COMPLETED:
            txn = self.open.pop(txn_id, None)
            assert txn is not None, f"{txn_id}: {t.state.name} without a PREPARE record"
            assert COMPLETED[t.state] == txn.commit
            assert (t.producer_id, t.producer_epoch) == (txn.producer_id, txn.epoch)
            assert txn.marked | txn.skipped == txn.partitions, (txn, t)
            assert not t.partitions
        else:
            assert txn_id not in self.open, (txn_id, t.state)
        if t.state == S.EMPTY:
            assert not t.partitions and t.txn_start_timestamp == -1
        self.last[txn_id] = t

    def _check_events(self) -> None:
        for entry in self.h.events[self.checked :]:
            if isinstance(entry, rec.TxnLogRecord):
                self._check_record(entry)
            elif entry is RESTART:  # the new coordinator sends the markers again
                if self.open:
                    event("restarted with a transaction to complete")
                for ended in self.open.values():
                    ended.marked_this_run.clear()
            else:
                txn = self.open.get(entry.txn_id)
                assert txn is not None, f"a marker outside a transaction's end: {entry}"
                assert entry.tp in txn.partitions, (entry, txn)
                if entry.skipped:
                    txn.skipped.add(entry.tp)
                    continue
                assert (entry.producer_id, entry.epoch, entry.commit) == (
                    txn.producer_id,
                    txn.epoch,
                    txn.commit,
                ), (entry, txn)
                assert entry.tp not in txn.marked_this_run, f"two markers: {entry}, {txn}"
                txn.marked_this_run.add(entry.tp)
                txn.marked.add(entry.tp)
        self.checked = len(self.h.events)

    @invariant()
    def the_log_is_consistent(self) -> None:
        self._check_events()
        for txn_id, txn in self.open.items():
            # a decided transaction not yet complete waits for its markers or COMPLETE record
            meta = self.h.shard.txns[txn_id]
            assert meta.state in PREPARED and PREPARED[meta.state] == txn.commit

    @invariant()
    def nothing_is_left_pending(self) -> None:
        for meta in self.h.shard.txns.values():
            assert meta.pending_state is None, meta

    @invariant()
    def the_log_replays_to_the_live_state(self) -> None:
        loaded = self.h.load(self.h.coordinator_epoch).txns
        live = {
            txn_id: replace(meta.snapshot(), last_producer_epoch=NO_PRODUCER_EPOCH)
            for txn_id, meta in self.h.shard.txns.items()
            # created by an InitProducerId whose record was not appended: memory only
            if not (meta.producer_epoch == NO_PRODUCER_EPOCH and txn_id not in self.last)
        }
        assert {txn_id: meta.snapshot() for txn_id, meta in loaded.items()} == live

    def teardown(self) -> None:
        self._check_events()


TxnShardMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestTxnCoordinatorShard = TxnShardMachine.TestCase
