"""Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete, and their expiry.

An offset commit is an OffsetCommit record in `__consumer_offsets`; the committed value
becomes visible when the record is appended and replayed, and the response is sent then, so a
commit that was acknowledged is in the log. Validation follows Kafka's classic rules
(`ClassicGroup.validateOffsetCommit`): generation -1 with no member id is a simple consumer or
an admin client and may commit only while the group is Empty; a member must name the current
generation; during CompletingRebalance commits get REBALANCE_IN_PROGRESS (the member has a new
generation but no assignment yet). Metadata longer than `offset.metadata.max.bytes` gets
OFFSET_METADATA_TOO_LARGE for that partition only. A KIP-848 consumer group checks the member
id and member epoch instead (`ConsumerGroup.commit_rejections`: UNKNOWN_MEMBER_ID,
STALE_MEMBER_EPOCH, per partition for an older epoch, KIP-1251).

Expiry (KIP-211): offsets of a group that has been Empty for `offsets.retention.minutes` are
deleted (tombstones), counted from when it became Empty; a simple consumer's offsets (no
protocol type) from their commit time; OffsetCommit v2-4's explicit retention sets an expiry
time on the record, which wins. A group left Empty with no offsets is deleted. A consumer
group's offsets expire from their commit, except those of topics it subscribes to.

Pending transactional offsets (`txn_state.py`) are not returned by OffsetFetch; with
`require_stable` a partition that has one answers UNSTABLE_OFFSET_COMMIT. As in Kafka, an offset
with a pending transactional one does not expire, a group with pending ones is not deleted by
expiry, and OffsetDelete writes a tombstone for a partition with only a pending offset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kbroker.groups import classic_ops
from kbroker.groups import records as rec
from kbroker.groups.classic import ClassicGroup, GroupState
from kbroker.groups.consumer import ConsumerGroup, group_tombstones
from kbroker.groups.coordinator import GroupCoordinatorShard
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages.offset_commit_request import OffsetCommitRequest
from protocol.messages.offset_commit_value import OffsetCommitValue

S = GroupState

# (topic, partition) -> error code, in request order
CommitResults = list[tuple[str, int, ErrorCode]]
CommitReply = Callable[[CommitResults], None]

EXPIRY_TIMER = "expire-offsets"


def schedule_expiry(shard: GroupCoordinatorShard) -> None:
    interval = shard.config.offsets_retention_check_interval_ms
    shard.timers.schedule(EXPIRY_TIMER, shard.now + interval, lambda: expire_offsets(shard))


def _validate_commit(group: ClassicGroup, request: OffsetCommitRequest) -> None:
    generation = request.generation_id_or_member_epoch
    if group.is_in(S.DEAD):
        raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
    if generation < 0 and group.is_in(S.EMPTY):
        return  # a simple consumer or an admin client: fine while nobody is a member
    if generation >= 0 or request.member_id or request.group_instance_id is not None:
        group.validate_member(request.member_id, request.group_instance_id)
        if generation != group.generation_id:
            raise KafkaError(ErrorCode.ILLEGAL_GENERATION)
    elif not group.is_in(S.EMPTY):
        raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID)
    if group.is_in(S.COMPLETING_REBALANCE):
        raise KafkaError(ErrorCode.REBALANCE_IN_PROGRESS)


def _consumer_commit_refusals(
    shard: GroupCoordinatorShard, request: OffsetCommitRequest, version: int
) -> dict[tuple[str, int], ErrorCode]:
    """A KIP-848 group's rules: member id and member epoch (see `ConsumerGroup`)."""
    topic_ids = {name: meta.topic_id for name, meta in shard.topics().items()}
    return shard.consumer_groups[request.group_id].commit_rejections(
        request.member_id,
        request.generation_id_or_member_epoch,
        version,
        [(t.name, p.partition_index) for t in request.topics for p in t.partitions],
        topic_ids,
    )


def metadata_too_large(shard: GroupCoordinatorShard, metadata: str) -> bool:
    """Over `offset.metadata.max.bytes`, which Kafka compares with String.length(): UTF-16
    code units, not bytes."""
    return len(metadata.encode("utf-16-le")) // 2 > shard.config.offset_metadata_max_bytes


def commit_offsets(
    shard: GroupCoordinatorShard,
    request: OffsetCommitRequest,
    version: int,
    respond: CommitReply,
) -> None:
    """Validate and write one OffsetCommit record per partition; `respond` gets the codes
    once the records are appended (or could not be)."""
    partitions = [(t.name, p) for t in request.topics for p in t.partitions]
    group = shard.group_or_none(request.group_id)
    refused: dict[tuple[str, int], ErrorCode] = {}
    try:
        if request.group_id in shard.consumer_groups:
            refused = _consumer_commit_refusals(shard, request, version)
        elif group is None:
            if request.generation_id_or_member_epoch >= 0:
                raise KafkaError(
                    ErrorCode.GROUP_ID_NOT_FOUND if version >= 9 else ErrorCode.ILLEGAL_GENERATION
                )
            group = shard.get_or_create_group(request.group_id)
        else:
            _validate_commit(group, request)
    except KafkaError as exc:
        respond([(topic, p.partition_index, exc.code) for topic, p in partitions])
        return
    if group is not None and request.member_id in group.members:
        # a commit proves the member is alive, as a heartbeat does (Kafka does the same)
        classic_ops.reschedule_heartbeat(shard, group, group.members[request.member_id])
    now = shard.now
    expire = -1
    if 2 <= version <= 4 and request.retention_time_ms != -1:
        expire = now + request.retention_time_ms
    codes: CommitResults = []
    records = []
    for topic, p in partitions:
        metadata = p.committed_metadata or ""
        if (topic, p.partition_index) in refused:
            codes.append((topic, p.partition_index, refused[(topic, p.partition_index)]))
            continue
        if metadata_too_large(shard, metadata):
            codes.append((topic, p.partition_index, ErrorCode.OFFSET_METADATA_TOO_LARGE))
            continue
        value = OffsetCommitValue(
            offset=p.committed_offset,
            leader_epoch=p.committed_leader_epoch,
            metadata=metadata,
            # v1 may name the commit time (Kafka keeps it); -1 or later versions: now
            commit_timestamp=now if p.commit_timestamp == -1 else p.commit_timestamp,
            expire_timestamp=expire,
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
            failed = classic_ops.store_error(error)
            respond([(t, i, failed if c == ErrorCode.NONE else c) for t, i, c in codes])

    shard.write(records, replay=True, on_appended=appended)


def fetch_offsets(
    shard: GroupCoordinatorShard, group_id: str, partitions: Iterable[tuple[str, int]] | None
) -> list[tuple[str, int, OffsetCommitValue | None]]:
    """Committed values of the given partitions (None: not committed), or of all of them.
    Pending transactional offsets are not among them (they are not committed yet)."""
    committed = shard.offsets.get(group_id, {})
    if partitions is None:
        return [(t, p, v) for (t, p), v in sorted(committed.items())]
    return [(t, p, committed.get((t, p))) for t, p in partitions]


def fetch_stable_offsets(
    shard: GroupCoordinatorShard, group_id: str, partitions: Iterable[tuple[str, int]] | None
) -> list[tuple[str, int, OffsetCommitValue | None, ErrorCode]]:
    """OffsetFetch with `require_stable` (KIP-447): as `fetch_offsets`, but a partition with a
    pending transactional offset answers UNSTABLE_OFFSET_COMMIT and no value. Asked for all
    partitions, only committed ones are listed, as in Kafka (fetchAllOffsets)."""
    return [
        (t, p, None, ErrorCode.UNSTABLE_OFFSET_COMMIT)
        if shard.pending.has(group_id, (t, p))
        else (t, p, value, ErrorCode.NONE)
        for t, p, value in fetch_offsets(shard, group_id, partitions)
    ]


def delete_offsets(
    shard: GroupCoordinatorShard,
    group_id: str,
    partitions: list[tuple[str, int]],
    reply: Callable[[ErrorCode, list[tuple[str, int, ErrorCode]]], None],
) -> None:
    """OffsetDelete: not for topics an active group subscribes to (GROUP_SUBSCRIBED_TO_TOPIC).
    `reply` is called once the tombstones are appended (or could not be)."""
    group = shard.group_or_none(group_id)
    consumer = shard.consumer_groups.get(group_id)
    if group is None and consumer is None:
        reply(ErrorCode.GROUP_ID_NOT_FOUND, [])
        return
    subscribed: set[str] | None = set()
    if consumer is not None:
        subscribed = consumer.subscribed_topics(shard.topics())
    elif group is not None and not group.is_in(S.EMPTY):
        subscribed = group.subscribed_topics()
        if subscribed is None:  # not the consumer protocol: Kafka refuses for a non-empty group
            reply(ErrorCode.NON_EMPTY_GROUP, [])
            return
    committed = shard.offsets.get(group_id, {})
    results = []
    tombstones = []
    for topic, partition in partitions:
        if subscribed is not None and topic in subscribed:
            results.append((topic, partition, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC))
            continue
        if (topic, partition) in committed or shard.pending.has(group_id, (topic, partition)):
            tombstones.append(rec.offset_commit(group_id, topic, partition, None))
        results.append((topic, partition, ErrorCode.NONE))
    if not tombstones:
        reply(ErrorCode.NONE, results)
        return

    def appended(error: ErrorCode | None) -> None:
        if error is None:
            reply(ErrorCode.NONE, results)
        else:  # nothing was deleted: the whole request fails, as in Kafka
            reply(classic_ops.store_error(error), [])

    shard.write(tombstones, replay=True, on_appended=appended)


def expire_offsets(shard: GroupCoordinatorShard) -> None:
    """Timer: tombstone expired offsets, delete groups left empty with none (then re-arm)."""
    now = shard.now
    retention = shard.config.offsets_retention_ms
    for group_id, committed in list(shard.offsets.items()):
        if group_id in shard.consumer_groups:
            _expire_consumer_group_offsets(shard, shard.consumer_groups[group_id], committed)
            continue
        group = shard.group_or_none(group_id)
        base = _expiry_base(group)
        if base is None:
            continue
        expired = [
            rec.offset_commit(group_id, topic, partition, None)
            for (topic, partition), value in committed.items()
            if _expired(value, base, now, retention)
            and not shard.pending.has(group_id, (topic, partition))
        ]
        if not expired:
            continue
        if (
            group is not None
            and group.is_in(S.EMPTY)
            and len(expired) == len(committed)
            and not shard.pending.has_group(group_id)
        ):
            shard.delete_group(group)  # its tombstones cover every offset
        else:
            shard.write(expired, replay=True)
    for group in list(shard.groups.values()):
        # Kafka's cleanup: an Empty group with no offsets left is deleted
        if (
            group.is_in(S.EMPTY)
            and not group.members
            and not group.pending_members
            and group.group_id not in shard.offsets
            and not shard.pending.has_group(group.group_id)
        ):
            shard.delete_group(group)
    for consumer in list(shard.consumer_groups.values()):
        if (
            consumer.is_empty()
            and consumer.group_id not in shard.offsets
            and not shard.pending.has_group(consumer.group_id)
        ):
            shard.write(group_tombstones(consumer), replay=True)
    schedule_expiry(shard)


def _expire_consumer_group_offsets(
    shard: GroupCoordinatorShard,
    group: ConsumerGroup,
    committed: dict[tuple[str, int], OffsetCommitValue],
) -> None:
    """Kafka's rule for KIP-848 groups: offsets of topics the group subscribes to do not expire,
    the others count from their commit; an empty group whose offsets all expired is deleted."""
    subscribed = group.subscribed_topics(shard.topics())
    now, retention = shard.now, shard.config.offsets_retention_ms
    expired = [
        rec.offset_commit(group.group_id, topic, partition, None)
        for (topic, partition), value in committed.items()
        if topic not in subscribed
        and _expired(value, lambda v: v.commit_timestamp, now, retention)
        and not shard.pending.has(group.group_id, (topic, partition))
    ]
    if (
        group.is_empty()
        and len(expired) == len(committed)
        and not shard.pending.has_group(group.group_id)
    ):
        expired += group_tombstones(group)
    if expired:
        shard.write(expired, replay=True)


def _expiry_base(group: ClassicGroup | None) -> Callable[[OffsetCommitValue], int] | None:
    """From when an offset's retention counts, or None when it does not expire now."""
    if group is None or group.protocol_type is None:
        return lambda value: value.commit_timestamp  # simple consumer
    if group.is_in(S.EMPTY):
        since = group.state_timestamp_ms
        return lambda value: since if since >= 0 else value.commit_timestamp
    return None


def _expired(
    value: OffsetCommitValue, base: Callable[[OffsetCommitValue], int], now: int, retention: int
) -> bool:
    if value.expire_timestamp != -1:
        return now >= value.expire_timestamp
    return now - base(value) >= retention
