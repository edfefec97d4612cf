"""TxnOffsetCommit: a transactional producer commits a group's offsets inside its transaction.

Theory of operation (KIP-98; KIP-447 added the group's generation, member id and instance id
in v3 so that a zombie producer of an old generation is fenced by the group, not only by its
transactional id). Kafka's `OffsetMetadataManager.commitTransactionalOffset`:

- the group is validated with the offset-commit rules relaxed for transactions: a classic
  group accepts a request that names no member (v0-2 cannot name one) whatever its state, and
  does not refuse commits during CompletingRebalance; a request that names a member must name a
  current one (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID) of the current generation
  (ILLEGAL_GENERATION). A KIP-848 consumer group checks the member and its epoch; any stale
  epoch is ILLEGAL_GENERATION, for the whole request. An unknown group is created as a simple
  group when the request names no generation, else ILLEGAL_GENERATION;
- metadata over `offset.metadata.max.bytes` is refused for that partition alone;
- the accepted offsets are written as ONE transactional batch carrying the producer's id and
  epoch; replaying it keeps them pending (`txn_state.py`) until the transaction's marker. The
  answer is sent once the batch is appended; an append error is every partition's error.

The producer's epoch is checked by the partition when the batch is appended (Kafka's
AppendOrigin.COORDINATOR), and that the partition is in the transaction by the transaction
coordinator (AddOffsetsToTxn), not here.
"""

from __future__ import annotations

from kbroker.groups import records as rec
from kbroker.groups.classic import ClassicGroup, GroupState
from kbroker.groups.classic_ops import store_error
from kbroker.groups.coordinator import GroupCoordinatorShard
from kbroker.groups.offsets import CommitReply, CommitResults, metadata_too_large
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages.offset_commit_value import OffsetCommitValue
from protocol.messages.txn_offset_commit_request import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
)

S = GroupState


def _validate_classic(group: ClassicGroup, request: TxnOffsetCommitRequest) -> None:
    """Kafka's `ClassicGroup.validateOffsetCommit` with isTransactional set."""
    generation = request.generation_id
    if group.is_in(S.DEAD):
        raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
    if generation < 0 and group.is_in(S.EMPTY):
        return
    if generation >= 0 or request.member_id or request.group_instance_id is not None:
        group.validate_member(request.member_id, request.group_instance_id)
        if generation != group.generation_id:
            raise KafkaError(ErrorCode.ILLEGAL_GENERATION)


def _validate_consumer(
    shard: GroupCoordinatorShard,
    request: TxnOffsetCommitRequest,
    version: int,
    partitions: list[tuple[str, int]],
) -> None:
    """A KIP-848 group: the member and its epoch; a stale epoch is ILLEGAL_GENERATION."""
    topic_ids = {name: meta.topic_id for name, meta in shard.topics().items()}
    try:
        refused = shard.consumer_groups[request.group_id].commit_rejections(
            request.member_id,
            request.generation_id,
            version,
            partitions,
            topic_ids,
            transactional=True,
            group_instance_id=request.group_instance_id,
        )
    except KafkaError as exc:
        if exc.code == ErrorCode.STALE_MEMBER_EPOCH:
            raise KafkaError(ErrorCode.ILLEGAL_GENERATION) from None
        raise
    if refused:
        raise KafkaError(ErrorCode.ILLEGAL_GENERATION)


def _validate(
    shard: GroupCoordinatorShard,
    request: TxnOffsetCommitRequest,
    version: int,
    partitions: list[tuple[str, int]],
) -> None:
    if request.group_id in shard.consumer_groups:
        _validate_consumer(shard, request, version, partitions)
        return
    group = shard.group_or_none(request.group_id)
    if group is not None:
        _validate_classic(group, request)
    elif request.generation_id >= 0:
        raise KafkaError(ErrorCode.ILLEGAL_GENERATION)
    else:
        shard.get_or_create_group(request.group_id)  # a simple group, as for OffsetCommit


def commit_transactional_offsets(
    shard: GroupCoordinatorShard,
    request: TxnOffsetCommitRequest,
    version: int,
    respond: CommitReply,
) -> None:
    """Validate and write the request's offsets as one transactional batch; `respond` gets
    each partition's code once the batch is appended (or could not be)."""
    partitions: list[tuple[str, TxnOffsetCommitRequestPartition]] = [
        (t.name, p) for t in request.topics for p in t.partitions
    ]

    def fail(code: ErrorCode) -> None:
        respond([(topic, p.partition_index, code) for topic, p in partitions])

    checked = [
        (topic, p.partition_index)
        for topic, p in partitions
        if not metadata_too_large(shard, p.committed_metadata or "")
    ]
    try:
        _validate(shard, request, version, checked)
    except KafkaError as exc:
        fail(ErrorCode(exc.code))
        return
    codes: CommitResults = []
    records = []
    for topic, p in partitions:
        metadata = p.committed_metadata or ""
        if metadata_too_large(shard, metadata):
            codes.append((topic, p.partition_index, ErrorCode.OFFSET_METADATA_TOO_LARGE))
            continue
        value = OffsetCommitValue(
            offset=p.committed_offset,
            leader_epoch=p.committed_leader_epoch,
            metadata=metadata,
            commit_timestamp=shard.now,
            expire_timestamp=-1,
        )
        records.append(rec.offset_commit(request.group_id, topic, p.partition_index, value))
        codes.append((topic, p.partition_index, ErrorCode.NONE))
    if not records:
        respond(codes)
        return

    def appended(error: ErrorCode | None) -> None:
        if error is None:
            respond(codes)
        else:
            fail(store_error(error))

    shard.write(
        records,
        replay=True,
        on_appended=appended,
        transaction=(request.producer_id, request.producer_epoch),
    )
