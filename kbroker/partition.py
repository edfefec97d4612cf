"""A partition this broker leads: its log, leader epoch, high watermark, last stable offset,
producer state and fetch waiters.

Theory of operation. Produce validates each batch header (CRC-32C, magic, lengths, offset
deltas, timestamps; records are never decompressed) and appends the bytes as received; the log
patches base offsets and the leader epoch in place. On a single node the in-sync replica set is
this broker alone, so the high watermark moves to the log end offset right after the append
(acks=all completes at once); a replicated cluster will advance it from follower fetches
instead, which is why HW and LEO are kept apart here. Appends wake the fetches parked on this
partition (DESIGN.md "Fetch": long-poll on min_bytes/max_wait).

Transactions (KIP-98), as Kafka's UnifiedLog does them. Each client batch is checked against
the producer state before the append (`storage/producer_state.py`); a COMMIT/ABORT marker from
the transaction coordinator (`append_marker`) is checked for fenced producer and coordinator
epochs, appended, and the transaction it ends is completed: an aborted one is first written to
the transaction index of the marker's segment, with the LSO at that point. The last stable
offset is min(high watermark, first unstable offset): a read_committed consumer reads below it
and gets the aborted transactions overlapping what it read (`aborted_transactions`). On load,
the producer state is the newest snapshot plus a replay of the batches after it; transaction
index entries from the replay start on are dropped first and rebuilt by that replay, so a
kill -9 at any point leaves the index and the LSO right.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
from typing import NamedTuple

from protocol import records
from protocol.error_codes import ErrorCode, KafkaError
from protocol.records import BatchHeader, TimestampType
from storage.log import Log
from storage.producer_state import (
    SNAPSHOT_SUFFIX,
    AppendOrigin,
    CompletedTxn,
    CorruptSnapshotError,
    DuplicateBatch,
    EndTxnMarker,
    ProducerStateManager,
    offset_from_snapshot_file_name,
    snapshot_file_name,
)
from storage.txn_index import AbortedTxn
from storage.txn_replay import replay_batches
from storage.types import FetchDataInfo

log = logging.getLogger("kbroker.partition")

SINGLE_NODE_LEADER_EPOCH = 0
SNAPSHOTS_KEPT = 2  # producer snapshots per partition: the newest and the one before it


class AppendResult(NamedTuple):
    """Offsets a produce is answered with; `duplicate` for a retry already in the log."""

    first_offset: int
    last_offset: int
    log_append_time_ms: int
    duplicate: bool = False


class Partition:
    def __init__(
        self, topic: str, index: int, log: Log, leader_epoch: int, flush_before_ack: bool = False
    ) -> None:
        self.topic = topic
        self.index = index
        self.log = log
        self.leader_epoch = leader_epoch
        self.flush_before_ack = flush_before_ack  # topic config kbroker.flush.before.ack
        self._waiters: set[asyncio.Future[None]] = set()
        self.producers = ProducerStateManager()
        self._load_producer_state()

    def _snapshots(self) -> list[tuple[int, str]]:
        found = []
        for path in glob.glob(os.path.join(self.log.dir, "*" + SNAPSHOT_SUFFIX)):
            try:
                found.append((offset_from_snapshot_file_name(path), path))
            except CorruptSnapshotError:
                continue
        return sorted(found)

    def _load_producer_state(self) -> None:
        """Producer state: the newest snapshot at or below the log end offset (written at each
        segment roll and at clean shutdown), then the batch headers after it (61 bytes read per
        batch, plus the control record of each marker). A snapshot past the log end (the tail
        was lost) or unreadable is ignored. Transaction index entries from the replay start on
        are rebuilt."""
        start = self.log.log_start_offset
        for offset, path in reversed(self._snapshots()):
            if offset > self.log.log_end_offset:
                continue
            try:
                self.producers, covered = ProducerStateManager.read_snapshot(path)
            except (CorruptSnapshotError, OSError) as exc:
                log.warning("%s: ignoring producer snapshot %s: %s", self, path, exc)
                continue
            start = max(start, covered)
            break
        self.log.truncate_txn_indexes_from(start)
        for header, marker in replay_batches(self.log.segments, start):
            completed = self.producers.load_batch(header, marker)
            if completed is not None:
                self._complete_txn(completed)
        self.producers.update_map_end_offset(self.log.log_end_offset)
        self.producers.on_high_watermark_updated(self.log.high_watermark)

    def _complete_txn(self, completed: CompletedTxn) -> None:
        """Index an aborted transaction (with the LSO it leaves), then end it in the state.

        If the index write fails the transaction stays open (the LSO does not pass it) and the
        error is raised; the coordinator retries the marker, which then completes it.
        """
        if completed.is_aborted:
            lso = self.producers.last_stable_offset(completed)
            self.log.append_aborted_txn(
                AbortedTxn(
                    completed.producer_id, completed.first_offset, completed.last_offset, lso
                )
            )
        self.producers.complete_txn(completed)

    def write_producer_snapshot(self) -> None:
        """At clean shutdown: snapshot the producer state at the log end, drop older ones.

        A partition no idempotent producer wrote to gets no snapshot (it would cost two fsyncs
        per partition at shutdown for nothing); its start-up reads the batch headers instead.
        """
        end = self.log.log_end_offset
        keep = end if end > 0 and self.producers.producer_id_count > 0 else None
        if keep is not None:
            self.producers.write_snapshot(os.path.join(self.log.dir, snapshot_file_name(end)), end)
        for offset, path in self._snapshots():
            if offset != keep:
                os.unlink(path)

    def _snapshot_after_roll(self) -> None:
        """A segment just rolled: snapshot the producer state at the log end, as Kafka does at
        every roll, so that start-up after a crash replays about one segment of batch headers
        rather than the whole log. Only the newest `SNAPSHOTS_KEPT` files are kept.

        The bytes are taken here, on the owner thread; the file write (tmp, fsync, rename) and
        the removal of older files run on the storage worker, off the event loop. A snapshot
        that could not be written is logged and skipped: the next roll or the clean shutdown
        writes another, and without one start-up replays from an older snapshot or the log.
        """
        if self.producers.producer_id_count == 0:
            return
        end = self.log.log_end_offset
        data = self.producers.snapshot_bytes(end)
        path = os.path.join(self.log.dir, snapshot_file_name(end))

        def write() -> None:  # on the worker, after every earlier snapshot write
            try:
                ProducerStateManager.write_snapshot_file(path, data, self.log.fs)
                older = [p for offset, p in self._snapshots() if offset < end]
                for old in older[: max(len(older) - (SNAPSHOTS_KEPT - 1), 0)]:
                    os.unlink(old)
            except OSError as exc:
                log.warning("%s: producer snapshot at %d not written: %s", self, end, exc)

        committer = self.log.committer
        if committer is None:
            write()
        else:
            committer.submit(write)

    def __repr__(self) -> str:
        return f"Partition({self.topic}-{self.index})"

    def check_leader_epoch(self, current_leader_epoch: int) -> None:
        """KIP-320 fencing: a client that knows another leader epoch than ours is told which
        way it is off (Fetch, ListOffsets and OffsetForLeaderEpoch carry the epoch)."""
        if current_leader_epoch in (-1, self.leader_epoch):
            return
        if current_leader_epoch < self.leader_epoch:
            raise KafkaError(ErrorCode.FENCED_LEADER_EPOCH)
        raise KafkaError(ErrorCode.UNKNOWN_LEADER_EPOCH)

    def become_leader(self) -> None:
        """Take leadership with this broker as the whole ISR (single node).

        The leader's high watermark is the smallest log end offset in the ISR; with only this
        broker in it that is our own LEO. This matters after a restart: the HW checkpoint is
        written periodically and may be behind (or absent after kill -9), but everything in
        the recovered log was appended by this leader and is committed.
        """
        self._advance_high_watermark()

    def _advance_high_watermark(self) -> None:
        """Single ISR: the high watermark follows the log end; ended transactions below it
        become stable."""
        hw = self.log.update_high_watermark(self.log.log_end_offset)
        self.producers.on_high_watermark_updated(hw)

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    @property
    def last_stable_offset(self) -> int:
        """min(high watermark, first unstable offset), never below the log start offset."""
        hw = self.log.high_watermark
        unstable = self.producers.first_unstable_offset
        if unstable is None or unstable >= hw:
            return hw
        return max(unstable, self.log.log_start_offset)

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    # ------------------------------------------------------------------ produce

    def validate(
        self, data: memoryview, now_ms: int, one_batch: bool, from_client: bool = True
    ) -> list[BatchHeader]:
        """Check every batch header without decompressing; raises KafkaError per Kafka's codes.

        Returns the headers, in order, so that nothing parses them again. `from_client`: also
        the rules for producers' batches (a coordinator's transactional batch has no sequence).
        """
        config = self.log.config
        pos = 0
        headers: list[BatchHeader] = []
        while pos < len(data):
            try:
                header = records.validate_batch(data, pos, from_client=from_client)
                if not config.log_append_time:  # a header max_timestamp below its base: fix it
                    header = records.repair_max_timestamp(data, pos, header)
            except records.InvalidRecordError as exc:
                raise KafkaError(ErrorCode.INVALID_RECORD, str(exc)) from None
            except records.CorruptRecordError as exc:
                raise KafkaError(ErrorCode.CORRUPT_MESSAGE, str(exc)) from None
            if header.size > config.max_message_bytes:
                raise KafkaError(
                    ErrorCode.MESSAGE_TOO_LARGE,
                    f"batch of {header.size} bytes exceeds max.message.bytes "
                    f"{config.max_message_bytes}",
                )
            if not config.log_append_time and header.timestamp_type == TimestampType.CREATE_TIME:
                self._check_timestamps(header.max_timestamp, now_ms)
            pos += header.size
            headers.append(header)
        if not headers:
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "no record batch in the request")
        if one_batch and len(headers) > 1:
            raise KafkaError(ErrorCode.INVALID_RECORD, "Produce v3+ takes one batch per partition")
        return headers

    def _check_timestamps(self, timestamp: int, now_ms: int) -> None:
        config = self.log.config
        if timestamp < 0:
            return
        if now_ms - timestamp > config.message_timestamp_before_max_ms:
            raise KafkaError(
                ErrorCode.INVALID_TIMESTAMP,
                f"timestamp {timestamp} is older than message.timestamp.before.max.ms allows",
            )
        if timestamp - now_ms > config.message_timestamp_after_max_ms:
            raise KafkaError(
                ErrorCode.INVALID_TIMESTAMP,
                f"timestamp {timestamp} is further ahead than message.timestamp.after.max.ms",
            )

    def append(
        self,
        data: memoryview,
        now_ms: int,
        one_batch: bool = True,
        from_coordinator: bool = False,
    ) -> AppendResult:
        """Validate and append batches as leader; the high watermark follows (single ISR).

        An idempotent producer's batch is checked against its sequence state first (KIP-98):
        an exact retry of one of its last five batches is answered with the original offsets
        and not appended again; a gap, a stale epoch or a non-transactional batch during the
        producer's transaction is an error for this partition. `from_coordinator`: a batch the
        group coordinator writes for a transaction (TxnOffsetCommit), which carries the
        producer id and epoch but no sequence: its epoch and transaction state are checked,
        its sequence is not (Kafka's AppendOrigin.COORDINATOR).
        """
        headers = self.validate(data, now_ms, one_batch, from_client=not from_coordinator)
        origin = AppendOrigin.COORDINATOR if from_coordinator else AppendOrigin.CLIENT
        if one_batch:
            try:
                self.producers.check(headers[0], now_ms, origin)
            except DuplicateBatch as dup:
                return AppendResult(dup.first_offset, dup.last_offset, dup.log_append_time_ms, True)
        codec = self.log.config.compression_type
        if codec != "producer":
            data = memoryview(self._recompress(data, codec))
        info = self.log.append_as_leader(data, self.leader_epoch, now_ms)
        offset = info.first_offset  # the log numbers the batches contiguously, in order
        for header in headers:
            last = offset + header.last_offset_delta
            self.producers.on_append(header, offset, last, info.log_append_time_ms, now_ms)
            offset = last + 1
        if info.rolled:
            self._snapshot_after_roll()
        self._advance_high_watermark()
        self.wake_fetchers()
        return AppendResult(info.first_offset, info.last_offset, info.log_append_time_ms)

    def append_marker(
        self,
        producer_id: int,
        producer_epoch: int,
        coordinator_epoch: int,
        commit: bool,
        now_ms: int,
        transaction_version: int = 0,
    ) -> int:
        """Write a transaction's COMMIT or ABORT control batch; returns the marker's offset.

        Raises KafkaError: INVALID_PRODUCER_EPOCH for a stale producer epoch,
        TRANSACTION_COORDINATOR_FENCED for an older coordinator epoch, or a storage error.
        A marker for a producer with no open transaction here is appended all the same (Kafka
        does too: the coordinator writes to every partition it added, data or not).
        """
        self.producers.check_marker(
            producer_id, producer_epoch, coordinator_epoch, transaction_version
        )
        control = records.ControlType.COMMIT if commit else records.ControlType.ABORT
        batch = bytearray(
            records.build_control_batch(
                control,
                producer_id=producer_id,
                producer_epoch=producer_epoch,
                coordinator_epoch=coordinator_epoch,
                timestamp_ms=now_ms,
            )
        )
        header = records.read_batch_header(batch)
        info = self.log.append_as_leader(batch, self.leader_epoch, now_ms)
        marker = EndTxnMarker(commit, coordinator_epoch)
        completed = self.producers.on_append(
            header, info.first_offset, info.last_offset, info.log_append_time_ms, now_ms, marker
        )
        try:
            if completed is not None:
                self._complete_txn(completed)
        finally:
            self._advance_high_watermark()
            self.wake_fetchers()
        return info.first_offset

    @staticmethod
    def _recompress(data: memoryview, codec_name: str) -> bytearray:
        """compression.type other than `producer`: re-encode each batch (off the common path)."""
        codec = {
            "uncompressed": records.Compression.NONE,
            "gzip": records.Compression.GZIP,
            "snappy": records.Compression.SNAPPY,
            "lz4": records.Compression.LZ4,
            "zstd": records.Compression.ZSTD,
        }[codec_name]
        out = bytearray()
        for pos, header in records.iter_batch_headers(data):
            if header.compression == codec:
                out += data[pos : pos + header.size]
            else:
                out += records.recompress_batch(data, pos, codec)
        return out

    def flushed(self, up_to: int) -> asyncio.Future[int]:
        """Completes when [.., up_to) is fsynced (group commit on the storage thread)."""
        committer = self.log.committer
        if committer is None:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, "log has no flush worker")
        return asyncio.wrap_future(committer.flush(self.log, up_to))

    # ------------------------------------------------------------------ fetch

    def read(self, offset: int, max_bytes: int, committed: bool, min_one: bool) -> FetchDataInfo:
        """Batches from `offset`, below the LSO (`committed`, read_committed) or the HW."""
        bound = self.last_stable_offset if committed else self.high_watermark
        return self.log.read(offset, max_bytes, bound, min_one)

    def aborted_transactions(self, info: FetchDataInfo) -> list[AbortedTxn]:
        """The aborted transactions overlapping a read_committed `read`'s batches."""
        return self.log.aborted_transactions(info)

    def expire_producers(self, now_ms: int, expiration_ms: int) -> int:
        """`producer.id.expiration.ms`: forget idle producers, never one mid-transaction."""
        return self.producers.expire(now_ms, expiration_ms)

    def wait_for_data(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(future)
        return future

    def forget_waiter(self, future: asyncio.Future[None]) -> None:
        self._waiters.discard(future)
        future.cancel()

    def wake_fetchers(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for future in waiters:
            if not future.done():
                future.set_result(None)
