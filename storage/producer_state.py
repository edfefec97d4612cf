"""`ProducerStateManager`: idempotent-producer state of one partition (KIP-98, KIP-360).

Theory of operation. An idempotent producer (producer id >= 0) numbers the records it sends
to each partition: a batch carries `base_sequence`, and its last sequence is `base_sequence +
last_offset_delta`, wrapping from 2**31-1 to 0. A producer epoch goes with the id; the
producer (or its transaction coordinator) bumps it to start over at sequence 0 (KIP-360).
For each producer the leader keeps the epoch and the sequence and offset ranges of its last
`NUM_BATCHES_TO_RETAIN` (5) batches, the most requests a client keeps in flight, and checks
every incoming batch *before* it is appended, in the order Kafka does
(`UnifiedLog.analyzeAndValidateProducerState`, then `ProducerAppendInfo.checkProducerEpoch`
and `checkSequence`):

1. duplicate: same epoch and exactly the (base, last) sequence range of a retained batch
   (`ProducerStateEntry.findDuplicateBatch`) -> `DuplicateBatch` carrying the original
   offsets; the broker appends nothing and answers success with them;
2. fencing: an epoch below the current one -> INVALID_PRODUCER_EPOCH (since Kafka 2.7 a
   stale data batch gets this retriable code; PRODUCER_FENCED is for transactional fencing);
3. sequence (`checkSequence`, `inSequence`): a newer epoch must start at sequence 0, the
   current epoch must continue at last sequence + 1, else OUT_OF_ORDER_SEQUENCE_NUMBER. So a
   retry of a batch older than the retained five is out of order, as in Kafka.
   A producer this partition holds no state for (never seen, expired, or its state lost) is
   accepted at any sequence: KIP-360 removed the broker's UNKNOWN_PRODUCER_ID answer for
   this case (KAFKA-8710, Kafka 2.5), and Kafka 4 never sends it from the append path.

State changes only by replaying batches: `on_append` (leader, after offsets are assigned) and
`load_batch` (recovery, replication) share one code path, so recovery is "newest readable
snapshot, then `load_batch` for every batch after its offset". A producer's entry records the
epoch, the last five batches of that epoch (an epoch change clears them), and the max
timestamp of its last batch, which `expire` compares with `producer.id.expiration.ms`, as
Kafka does (`ProducerStateManager.isProducerExpired`).

Transactions (KIP-98). A transactional data batch is checked like any other and, when its
producer has no open transaction, opens one at its first offset (`current_txn_start_offset`,
and an entry in the partition's ongoing transactions, ordered by first offset). While one is
open, a non-transactional batch of that producer is INVALID_TXN_STATE. A COMMIT or ABORT
marker (a control batch the coordinator writes, `check_marker` then `on_append` with its
`EndTxnMarker`) is checked as Kafka's `ProducerAppendInfo.appendEndTxnMarker` does: an epoch
older than the producer's is INVALID_PRODUCER_EPOCH (transaction version 2 markers carry the
bumped epoch, so there an equal epoch is stale too, unless it is a retry of a marker that
already ended the transaction), a coordinator epoch older than the one recorded is
TRANSACTION_COORDINATOR_FENCED. A marker ending an open transaction returns a `CompletedTxn`;
the caller computes `last_stable_offset(completed)` for the transaction index entry, writes
it, then calls `complete_txn`, which moves the transaction to the "unreplicated" set until the
high watermark passes its marker (`on_high_watermark_updated`). The first unstable offset is
the smallest first offset of both sets; the partition's last stable offset is
min(high watermark, first unstable offset). A marker with no open transaction changes only
the epoch, coordinator epoch and timestamp. `expire` never drops a producer with an open
transaction. Snapshots carry `current_txn_start_offset` and `coordinator_epoch`, from which a
load rebuilds the ongoing transactions. Not here: KIP-890 verification (the produce path
asks the coordinator before the append).

Several batches of one producer in one append: `check` sees the state after the previous
`on_append`, so a caller appending more than one batch of a producer must call
`check`/`on_append` per batch (clients send one batch per partition per request).

File format of a snapshot (`<20-digit offset>.snapshot` beside the segments, as Kafka names
them; big-endian):

    magic b"KBPS" | version int16 (1) | crc uint32: CRC-32C of every byte after it
    offset int64 (the snapshot covers batches below it) | producer count int32
    per producer: producer_id int64, producer_epoch int16, coordinator_epoch int32,
        current_txn_start_offset int64, last_timestamp int64, last_update_offset int64,
        batch count int8 (0-5), then per batch, oldest first: first_seq int32,
        last_seq int32, first_offset int64, last_offset int64, log_append_time_ms int64

Unlike Kafka's file, which keeps only each producer's last batch, ours keeps all five, so a
restart loses no deduplication. Kafka reads our first two bytes as an unknown version, drops
the file and rebuilds from the log; we read Kafka's version-1 file (one batch per producer,
offset taken from the file name). Anything else, a bad CRC, or a wrong length raises
`CorruptSnapshotError`, and the caller rebuilds from an older snapshot or the log start.

Threads: a manager belongs to its partition's owner thread (the event loop): `check`,
`on_append`, `load_batch`, `truncate_*`, `expire`, `producers` and `snapshot_bytes` run
there. `write_snapshot_file` only writes bytes it is given, so any thread may call it (the
storage worker); `read_snapshot` builds a fresh manager on any thread, to be handed over.

Crash: the state lives in memory; a snapshot write is atomic (tmp, fsync, rename, fsync of
the directory), so a crash leaves the old file or the new one whole, never a torn mix.
"""

from __future__ import annotations

import enum
import os
import struct
from collections import deque
from dataclasses import dataclass, field

import crc32c

from protocol.error_codes import ErrorCode, KafkaError
from protocol.records import BatchHeader, TimestampType
from storage.fs import OS_FS, FileSystem

__all__ = [
    "DEFAULT_PRODUCER_ID_EXPIRATION_MS",
    "NUM_BATCHES_TO_RETAIN",
    "AppendOrigin",
    "BatchMetadata",
    "CompletedTxn",
    "CorruptSnapshotError",
    "DuplicateBatch",
    "EndTxnMarker",
    "InvalidProducerEpochError",
    "InvalidTxnStateError",
    "OutOfOrderSequenceError",
    "ProducerStateEntry",
    "ProducerStateManager",
    "TransactionCoordinatorFencedError",
    "offset_from_snapshot_file_name",
    "snapshot_file_name",
]

NUM_BATCHES_TO_RETAIN = 5
DEFAULT_PRODUCER_ID_EXPIRATION_MS = 86_400_000  # producer.id.expiration.ms, one day
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_TIMESTAMP = -1
_MAX_SEQUENCE = 2**31 - 1
_MAX_EPOCH = 2**15 - 1
SNAPSHOT_SUFFIX = ".snapshot"

_MAGIC = b"KBPS"
_VERSION = 1
_PREFIX = struct.Struct(">4shI")  # magic, version, crc
_BODY_HEAD = struct.Struct(">qi")  # offset, producer count
_ENTRY = struct.Struct(">qhiqqqb")
_BATCH = struct.Struct(">iiqqq")
_KAFKA_VERSION = 1
_KAFKA_PREFIX = struct.Struct(">hIi")  # version, crc, entry count
_KAFKA_ENTRY = struct.Struct(">qhiqiqiq")
_KAFKA_CRC_START = 6


class DuplicateBatch(Exception):
    """A retry of a batch already in the log: answer success with its original offsets."""

    def __init__(self, first_offset: int, last_offset: int, log_append_time_ms: int) -> None:
        super().__init__(f"duplicate of the batch at offsets [{first_offset}, {last_offset}]")
        self.first_offset = first_offset
        self.last_offset = last_offset
        self.log_append_time_ms = log_append_time_ms


class InvalidProducerEpochError(KafkaError):
    """A batch from an epoch older than the producer's current one (a zombie or a retry)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_PRODUCER_EPOCH, message)


class OutOfOrderSequenceError(KafkaError):
    """A batch whose sequence does not continue the producer's last one."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, message)


class InvalidTxnStateError(KafkaError):
    """A non-transactional batch from a producer whose transaction is open here."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_TXN_STATE, message)


class TransactionCoordinatorFencedError(KafkaError):
    """A marker from a coordinator older than the one that last wrote for this producer."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.TRANSACTION_COORDINATOR_FENCED, message)


class AppendOrigin(enum.Enum):
    """Who appends, which decides what is checked (Kafka's AppendOrigin).

    CLIENT: duplicates, epoch, sequence, transaction state. COORDINATOR (the group
    coordinator's transactional offset commits, which carry no sequence): epoch and
    transaction state. Replication and recovery go through `load_batch`, unchecked.
    """

    CLIENT = "client"
    COORDINATOR = "coordinator"


@dataclass(frozen=True, slots=True)
class EndTxnMarker:
    """What a transaction marker's control record says."""

    commit: bool
    coordinator_epoch: int


@dataclass(frozen=True, slots=True)
class CompletedTxn:
    """A transaction a marker ended: its producer, first data offset, marker offset."""

    producer_id: int
    first_offset: int
    last_offset: int
    is_aborted: bool


class CorruptSnapshotError(Exception):
    """A snapshot file that is torn, fails its CRC, or has an unknown format or version."""


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == _MAX_SEQUENCE)


def _decrement_sequence(seq: int, delta: int) -> int:
    return (seq - delta) % (_MAX_SEQUENCE + 1)


def snapshot_file_name(offset: int) -> str:
    """Kafka's name for the snapshot covering batches below `offset`."""
    return f"{offset:020d}{SNAPSHOT_SUFFIX}"


def offset_from_snapshot_file_name(path: str) -> int:
    """The offset in a `<20-digit offset>.snapshot` name; CorruptSnapshotError otherwise."""
    name = os.path.basename(path)
    stem = name[: -len(SNAPSHOT_SUFFIX)] if name.endswith(SNAPSHOT_SUFFIX) else ""
    if not stem.isdigit():
        raise CorruptSnapshotError(f"{path}: not named <offset>{SNAPSHOT_SUFFIX}")
    return int(stem)


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    """One appended batch of a producer: its sequence range, offsets and answer time."""

    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    log_append_time_ms: int = NO_TIMESTAMP


def _empty_batches() -> deque[BatchMetadata]:
    return deque(maxlen=NUM_BATCHES_TO_RETAIN)


@dataclass(slots=True)
class ProducerStateEntry:
    """What a partition knows of one producer id (DescribeProducers reports these fields).

    `batches` holds the last `NUM_BATCHES_TO_RETAIN` batches of `producer_epoch`, oldest
    first. `last_update_offset` is the offset of the last batch, data or marker, that changed
    the entry; truncation uses it to tell whether the entry survives.
    """

    producer_id: int
    producer_epoch: int = NO_PRODUCER_EPOCH
    last_timestamp: int = NO_TIMESTAMP
    coordinator_epoch: int = -1
    current_txn_start_offset: int = -1
    last_update_offset: int = -1
    batches: deque[BatchMetadata] = field(default_factory=_empty_batches)

    @property
    def first_sequence(self) -> int:
        return self.batches[0].first_seq if self.batches else NO_SEQUENCE

    @property
    def last_sequence(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE

    @property
    def first_data_offset(self) -> int:
        return self.batches[0].first_offset if self.batches else -1

    @property
    def last_data_offset(self) -> int:
        return self.batches[-1].last_offset if self.batches else -1

    def copy(self) -> ProducerStateEntry:
        batches = _empty_batches()
        batches.extend(self.batches)
        return ProducerStateEntry(
            self.producer_id,
            self.producer_epoch,
            self.last_timestamp,
            self.coordinator_epoch,
            self.current_txn_start_offset,
            self.last_update_offset,
            batches,
        )

    def find_duplicate(self, epoch: int, first_seq: int, last_seq: int) -> BatchMetadata | None:
        """The retained batch with exactly this epoch and sequence range, if any."""
        if epoch != self.producer_epoch:
            return None
        for batch in self.batches:
            if batch.first_seq == first_seq and batch.last_seq == last_seq:
                return batch
        return None

    def set_epoch(self, epoch: int) -> None:
        """Move to `epoch`; the retained batches belong to the old one, so drop them."""
        if epoch != self.producer_epoch:
            self.batches.clear()
            self.producer_epoch = epoch


class ProducerStateManager:
    """Per-partition producer id -> `ProducerStateEntry`, with Kafka's validation rules.

    File: `<offset>.snapshot` (format in the module docstring), written by the owning log via
    `snapshot_bytes` + `write_snapshot_file`. Threads: owner thread only, except the two
    snapshot file functions. Crash: memory is rebuilt from the newest readable snapshot and
    the log after it; a bad snapshot raises `CorruptSnapshotError`.
    """

    def __init__(self, producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS) -> None:
        self.producer_id_expiration_ms = producer_id_expiration_ms
        self._producers: dict[int, ProducerStateEntry] = {}
        self._map_end_offset = 0
        # first offset -> producer id, kept in increasing first-offset order
        self._ongoing: dict[int, int] = {}
        # first offset -> (producer id, marker offset): ended, marker not yet below the HW
        self._unreplicated: dict[int, tuple[int, int]] = {}

    # --- queries -------------------------------------------------------------------------

    @property
    def map_end_offset(self) -> int:
        """The state reflects every batch below this offset (Kafka's `mapEndOffset`)."""
        return self._map_end_offset

    @property
    def producer_id_count(self) -> int:
        return len(self._producers)

    def last_entry(self, producer_id: int) -> ProducerStateEntry | None:
        """The live entry of `producer_id` (do not mutate it), or None."""
        return self._producers.get(producer_id)

    def producers(self) -> dict[int, ProducerStateEntry]:
        """A copy of every entry, safe to keep or hand to another thread."""
        return {pid: entry.copy() for pid, entry in self._producers.items()}

    @property
    def first_unstable_offset(self) -> int | None:
        """The first offset of the oldest transaction not yet both ended and replicated."""
        ongoing = next(iter(self._ongoing), None)
        unreplicated = min(self._unreplicated, default=None)
        if ongoing is None or unreplicated is None:
            return ongoing if unreplicated is None else unreplicated
        return min(ongoing, unreplicated)

    @property
    def first_undecided_offset(self) -> int | None:
        """The first offset of the oldest transaction not yet ended."""
        return next(iter(self._ongoing), None)

    def ongoing_transactions(self) -> dict[int, int]:
        """first offset -> producer id of every open transaction, oldest first (a copy)."""
        return dict(self._ongoing)

    # --- the produce path ----------------------------------------------------------------

    def check(
        self, header: BatchHeader, now_ms: int, origin: AppendOrigin = AppendOrigin.CLIENT
    ) -> None:
        """Validate one incoming data batch before it is appended.

        Raises `DuplicateBatch` for a retry of a retained batch (CLIENT only), or a
        `KafkaError` for a batch to reject: `InvalidProducerEpochError`,
        `OutOfOrderSequenceError` (CLIENT only), `InvalidTxnStateError`. A batch without a
        producer id passes. `now_ms` is for transaction verification, later.
        """
        pid = header.producer_id
        if pid <= NO_PRODUCER_ID:
            return
        entry = self._producers.get(pid)
        if entry is None:
            return  # no state: any epoch and sequence is accepted (see module docstring)
        epoch = header.producer_epoch
        if origin is AppendOrigin.CLIENT:
            duplicate = entry.find_duplicate(epoch, header.base_sequence, header.last_sequence)
            if duplicate is not None:
                raise DuplicateBatch(
                    duplicate.first_offset, duplicate.last_offset, duplicate.log_append_time_ms
                )
        if epoch < entry.producer_epoch:
            raise InvalidProducerEpochError(
                f"epoch {epoch} of producer {pid} is older than its current epoch "
                f"{entry.producer_epoch}"
            )
        if origin is AppendOrigin.CLIENT:
            self._check_sequence(entry, epoch, header.base_sequence)
        if entry.current_txn_start_offset >= 0 and not header.is_transactional:
            raise InvalidTxnStateError(
                f"producer {pid} sent a non-transactional batch while its transaction from "
                f"offset {entry.current_txn_start_offset} is open"
            )

    def check_marker(
        self,
        producer_id: int,
        producer_epoch: int,
        coordinator_epoch: int,
        transaction_version: int = 0,
    ) -> None:
        """Validate a COMMIT/ABORT marker before it is appended (Kafka's appendEndTxnMarker).

        Raises `InvalidProducerEpochError` for a stale producer epoch (strictly older; for
        transaction version 2, older or equal unless it retries a marker that already ended
        the transaction) and `TransactionCoordinatorFencedError` for a coordinator epoch older
        than the recorded one.
        """
        entry = self._producers.get(producer_id)
        if entry is None:
            return
        current = entry.producer_epoch
        if transaction_version >= 2:
            retry = producer_epoch == current and (
                entry.current_txn_start_offset < 0 or producer_epoch == _MAX_EPOCH
            )
            stale = producer_epoch <= current and not retry
        else:
            stale = producer_epoch < current
        if stale:
            raise InvalidProducerEpochError(
                f"marker epoch {producer_epoch} of producer {producer_id} is stale "
                f"(current epoch {current}, transaction version {transaction_version})"
            )
        if entry.coordinator_epoch > coordinator_epoch:
            raise TransactionCoordinatorFencedError(
                f"coordinator epoch {coordinator_epoch} for producer {producer_id} is older "
                f"than {entry.coordinator_epoch}"
            )

    @staticmethod
    def _check_sequence(entry: ProducerStateEntry, epoch: int, first_seq: int) -> None:
        pid = entry.producer_id
        if entry.producer_epoch == NO_PRODUCER_EPOCH:
            return  # known id but no epoch: nothing to continue from
        if epoch != entry.producer_epoch:
            if first_seq != 0:
                raise OutOfOrderSequenceError(
                    f"producer {pid} started epoch {epoch} at sequence {first_seq}, not 0 "
                    f"(current epoch {entry.producer_epoch})"
                )
            return
        if not _in_sequence(entry.last_sequence, first_seq):
            raise OutOfOrderSequenceError(
                f"producer {pid} epoch {epoch} sent sequence {first_seq} after "
                f"{entry.last_sequence}"
            )

    def on_append(
        self,
        header: BatchHeader,
        first_offset: int,
        last_offset: int,
        log_append_time_ms: int,
        now_ms: int,
        marker: EndTxnMarker | None = None,
    ) -> CompletedTxn | None:
        """Record a batch the log has just appended at `[first_offset, last_offset]`.

        `log_append_time_ms` is what the produce response reported (-1 for CreateTime
        topics); a retry of this batch is answered with it. Call it for every appended batch,
        with or without a producer id, so that `map_end_offset` follows the log end. Not for
        a batch `check` found to be a duplicate: nothing was appended. A control batch needs
        its `marker`; if it ended an open transaction the `CompletedTxn` is returned, and the
        caller must index it (if aborted) and then call `complete_txn`.
        """
        return self._apply(header, first_offset, last_offset, log_append_time_ms, marker)

    def load_batch(
        self, header: BatchHeader, marker: EndTxnMarker | None = None
    ) -> CompletedTxn | None:
        """Replay a batch read from the log (recovery, start-up, replication): no validation.

        Offsets come from the header; the log append time from `max_timestamp` when the
        batch is stamped LogAppendTime. The result equals what `on_append` recorded. A control
        batch without `marker` (its record could not be read) ends nothing.
        """
        append_time = (
            header.max_timestamp
            if header.timestamp_type is TimestampType.LOG_APPEND_TIME
            else NO_TIMESTAMP
        )
        return self._apply(header, header.base_offset, header.last_offset, append_time, marker)

    def update_map_end_offset(self, offset: int) -> None:
        """Declare the state complete below `offset` (after a recovery scan that ended there)."""
        self._map_end_offset = offset

    def _apply(
        self,
        header: BatchHeader,
        first_offset: int,
        last_offset: int,
        append_time: int,
        marker: EndTxnMarker | None,
    ) -> CompletedTxn | None:
        self._map_end_offset = max(self._map_end_offset, last_offset + 1)
        pid = header.producer_id
        if pid <= NO_PRODUCER_ID or (
            header.is_control and (marker is None or not header.records_count)
        ):
            return None  # an emptied control batch: its transaction was compacted away
        entry = self._producers.get(pid)
        if entry is None:
            entry = self._producers[pid] = ProducerStateEntry(pid)
        entry.set_epoch(header.producer_epoch)
        entry.last_update_offset = last_offset
        if marker is not None:
            return self._end_txn(entry, marker, first_offset, header.max_timestamp)
        entry.last_timestamp = append_time if append_time >= 0 else header.max_timestamp
        entry.batches.append(
            BatchMetadata(
                header.base_sequence, header.last_sequence, first_offset, last_offset, append_time
            )
        )
        if header.is_transactional and entry.current_txn_start_offset < 0:
            entry.current_txn_start_offset = first_offset
            self._add_ongoing(first_offset, pid)
        return None

    def _end_txn(
        self, entry: ProducerStateEntry, marker: EndTxnMarker, offset: int, timestamp: int
    ) -> CompletedTxn | None:
        start = entry.current_txn_start_offset
        entry.coordinator_epoch = marker.coordinator_epoch
        entry.last_timestamp = timestamp
        entry.current_txn_start_offset = -1
        if start < 0:
            return None  # a marker for a transaction with no data here: nothing to end
        return CompletedTxn(entry.producer_id, start, offset, not marker.commit)

    def _add_ongoing(self, first_offset: int, producer_id: int) -> None:
        last = next(reversed(self._ongoing), None)
        self._ongoing[first_offset] = producer_id
        if last is not None and last > first_offset:  # only a snapshot load gets here
            self._ongoing = dict(sorted(self._ongoing.items()))

    def last_stable_offset(self, completed: CompletedTxn) -> int:
        """The LSO once `completed` ends: the first offset of the oldest other open
        transaction, else the marker's offset + 1 (the aborted-txn index entry stores it)."""
        for first_offset, producer_id in self._ongoing.items():
            if producer_id != completed.producer_id:
                return first_offset
        return completed.last_offset + 1

    def complete_txn(self, completed: CompletedTxn) -> None:
        """Mark `completed` ended; it stays unstable until the HW passes its marker."""
        if self._ongoing.pop(completed.first_offset, None) is None:
            raise ValueError(f"{completed} was not an ongoing transaction")
        self._unreplicated[completed.first_offset] = (completed.producer_id, completed.last_offset)

    def reopen_txn(self, completed: CompletedTxn) -> None:
        """Undo the end of `completed` (its index entry could not be written): the producer's
        transaction is open again, so a retried marker ends it."""
        entry = self._producers.get(completed.producer_id)
        if entry is not None and completed.first_offset in self._ongoing:
            entry.current_txn_start_offset = completed.first_offset

    def on_high_watermark_updated(self, high_watermark: int) -> None:
        """Ended transactions whose marker is below the high watermark become stable."""
        if self._unreplicated:
            self._unreplicated = {
                first: (pid, last)
                for first, (pid, last) in self._unreplicated.items()
                if last >= high_watermark
            }

    # --- truncation and expiry -----------------------------------------------------------

    def truncate_to(self, offset: int) -> bool:
        """Drop the effect of every batch at or above `offset`; True if the caller must reload.

        An entry's earlier state cannot be recovered from memory (older batches and epochs
        are gone), so this is exact only when no producer changed at or above `offset`:
        then it returns False and only `map_end_offset` moves. Otherwise it clears all state
        (like Kafka's `truncateAndReload`) and returns True; the caller rebuilds with
        `load_snapshot` of the newest snapshot at or below `offset`, or with
        `truncate_fully_and_start_at(log_start_offset)`, then `load_batch` for each batch up
        to `offset`, then `update_map_end_offset(offset)`.
        """
        if all(e.last_update_offset < offset for e in self._producers.values()):
            self._map_end_offset = min(self._map_end_offset, offset)
            return False
        self.truncate_fully_and_start_at(0)
        return True

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Forget every producer and transaction; the (empty) state is complete below `offset`."""
        self._producers.clear()
        self._ongoing.clear()
        self._unreplicated.clear()
        self._map_end_offset = offset

    def expire(self, now_ms: int, expiration_ms: int | None = None) -> int:
        """Drop producers idle for `expiration_ms` (default `producer_id_expiration_ms`,
        Kafka's `producer.id.expiration.ms`) without an open transaction.

        Idle is measured from the max timestamp of the producer's last batch, as Kafka
        does. Returns how many were dropped.
        """
        limit = self.producer_id_expiration_ms if expiration_ms is None else expiration_ms
        expired = [
            pid
            for pid, entry in self._producers.items()
            if entry.current_txn_start_offset < 0 and now_ms - entry.last_timestamp >= limit
        ]
        for pid in expired:
            del self._producers[pid]
        return len(expired)

    # --- snapshots -----------------------------------------------------------------------

    def snapshot_bytes(self, offset: int) -> bytes:
        """Serialize the state as the snapshot covering batches below `offset` (owner thread).

        `offset` must be at or above every batch the state has seen: a snapshot that claims
        less would make a reload replay those batches twice.
        """
        newest = max((e.last_update_offset for e in self._producers.values()), default=-1)
        if offset <= newest:
            raise ValueError(f"snapshot at {offset} would omit state from offset {newest}")
        parts = [_BODY_HEAD.pack(offset, len(self._producers))]
        parts.extend(_encode_entry(entry) for entry in self._producers.values())
        body = b"".join(parts)
        return _PREFIX.pack(_MAGIC, _VERSION, int(crc32c.crc32c(body))) + body

    @staticmethod
    def write_snapshot_file(path: str, data: bytes, fs: FileSystem = OS_FS) -> None:
        """Write snapshot bytes atomically: tmp, fsync, rename, fsync the directory (any thread)."""
        fs.write_atomically(path, data)

    def write_snapshot(self, path: str, offset: int, fs: FileSystem = OS_FS) -> None:
        """`snapshot_bytes` then `write_snapshot_file`, both on the calling thread."""
        self.write_snapshot_file(path, self.snapshot_bytes(offset), fs)

    @classmethod
    def read_snapshot(
        cls, path: str, producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS
    ) -> tuple[ProducerStateManager, int]:
        """A manager loaded from `path`, and the offset the snapshot covers (any thread).

        Raises CorruptSnapshotError for a bad file and OSError when it cannot be read.
        Expired producers are kept; call `expire` once the manager is in use.
        """
        manager = cls(producer_id_expiration_ms)
        return manager, manager.load_snapshot(path)

    def load_snapshot(self, path: str) -> int:
        """Replace the state with the snapshot file at `path`; returns the offset it covers."""
        with open(path, "rb") as f:
            data = f.read()
        return self.load_snapshot_bytes(data, path)

    def load_snapshot_bytes(self, data: bytes, name: str) -> int:
        """Replace the state with snapshot bytes; returns the offset they cover.

        `name` is the file's path: it names the file in errors, and a Kafka snapshot's
        offset is only in its file name. Raises CorruptSnapshotError, leaving state as it was.
        """
        if data[:2] == _KAFKA_VERSION.to_bytes(2, "big"):
            offset = offset_from_snapshot_file_name(name)
            producers = _decode_kafka_snapshot(name, data)
        else:
            offset, producers = _decode_snapshot(name, data)
        self._producers = producers
        self._map_end_offset = offset
        self._unreplicated.clear()
        self._ongoing = {
            entry.current_txn_start_offset: pid
            for pid, entry in sorted(
                producers.items(), key=lambda item: item[1].current_txn_start_offset
            )
            if entry.current_txn_start_offset >= 0
        }
        return offset


# --- snapshot encoding and decoding --------------------------------------------------------


def _encode_entry(entry: ProducerStateEntry) -> bytes:
    head = _ENTRY.pack(
        entry.producer_id,
        entry.producer_epoch,
        entry.coordinator_epoch,
        entry.current_txn_start_offset,
        entry.last_timestamp,
        entry.last_update_offset,
        len(entry.batches),
    )
    batches = (
        _BATCH.pack(b.first_seq, b.last_seq, b.first_offset, b.last_offset, b.log_append_time_ms)
        for b in entry.batches
    )
    return head + b"".join(batches)


def _decode_snapshot(path: str, data: bytes) -> tuple[int, dict[int, ProducerStateEntry]]:
    if len(data) < _PREFIX.size + _BODY_HEAD.size:
        raise CorruptSnapshotError(f"{path}: {len(data)} bytes is too short for a snapshot")
    magic, version, crc = _PREFIX.unpack_from(data)
    if magic != _MAGIC:
        raise CorruptSnapshotError(f"{path}: not a producer state snapshot")
    if version != _VERSION:
        raise CorruptSnapshotError(f"{path}: unknown snapshot version {version}")
    actual = int(crc32c.crc32c(memoryview(data)[_PREFIX.size :]))
    if actual != crc:
        raise CorruptSnapshotError(f"{path}: crc {actual:#010x} does not match {crc:#010x}")
    try:
        return _decode_body(path, data)
    except struct.error as exc:
        raise CorruptSnapshotError(f"{path}: truncated snapshot: {exc}") from None


def _decode_body(path: str, data: bytes) -> tuple[int, dict[int, ProducerStateEntry]]:
    pos = _PREFIX.size
    offset, count = _BODY_HEAD.unpack_from(data, pos)
    pos += _BODY_HEAD.size
    producers: dict[int, ProducerStateEntry] = {}
    for _ in range(count):
        pid, epoch, coord_epoch, txn_start, last_ts, last_update, n = _ENTRY.unpack_from(data, pos)
        pos += _ENTRY.size
        if not 0 <= n <= NUM_BATCHES_TO_RETAIN:
            raise CorruptSnapshotError(f"{path}: producer {pid} has {n} batches")
        entry = ProducerStateEntry(pid, epoch, last_ts, coord_epoch, txn_start, last_update)
        for _ in range(n):
            entry.batches.append(BatchMetadata(*_BATCH.unpack_from(data, pos)))
            pos += _BATCH.size
        producers[pid] = entry
    if pos != len(data) or len(producers) != count:
        raise CorruptSnapshotError(f"{path}: snapshot length or producer ids do not add up")
    return offset, producers


def _decode_kafka_snapshot(path: str, data: bytes) -> dict[int, ProducerStateEntry]:
    """Apache Kafka's version-1 snapshot: one entry, with its last batch, per producer."""
    if len(data) < _KAFKA_PREFIX.size:
        raise CorruptSnapshotError(f"{path}: {len(data)} bytes is too short for a snapshot")
    _, crc, count = _KAFKA_PREFIX.unpack_from(data)
    actual = int(crc32c.crc32c(memoryview(data)[_KAFKA_CRC_START:]))
    if actual != crc:
        raise CorruptSnapshotError(f"{path}: crc {actual:#010x} does not match {crc:#010x}")
    if count < 0 or len(data) != _KAFKA_PREFIX.size + count * _KAFKA_ENTRY.size:
        raise CorruptSnapshotError(f"{path}: {count} entries do not fit {len(data)} bytes")
    producers: dict[int, ProducerStateEntry] = {}
    for i in range(count):
        fields = _KAFKA_ENTRY.unpack_from(data, _KAFKA_PREFIX.size + i * _KAFKA_ENTRY.size)
        pid, epoch, last_seq, last_offset, delta, timestamp, coord_epoch, txn_start = fields
        entry = ProducerStateEntry(pid, epoch, timestamp, coord_epoch, txn_start, last_offset)
        if last_offset >= 0:
            first_seq = _decrement_sequence(last_seq, delta)
            entry.batches.append(
                BatchMetadata(first_seq, last_seq, last_offset - delta, last_offset)
            )
        producers[pid] = entry
    return producers
