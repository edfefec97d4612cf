"""The KIP-848 consumer group protocol: ConsumerGroupHeartbeat and its timers.

Kafka's `GroupMetadataManager.consumerGroupHeartbeat`, kept in the same shape. A heartbeat
(member epoch >= 0) does three things, each computed on copies and written as records that the
shard replays once appended (the response is sent then, or a store error if the append failed):

1. Create or update the member (ConsumerGroupMemberMetadata). A new member, a changed
   subscription (names or pattern), or a changed hash of the subscribed topics' metadata (a
   topic created, deleted or grown) bumps the group epoch (ConsumerGroupMetadata).
2. If the group epoch is ahead of the assignment epoch, run the group's assignor (the one most
   members ask for, else the first of `group.consumer.assignors`) and write the targets that
   changed (ConsumerGroupTargetAssignmentMember) and the new assignment epoch
   (ConsumerGroupTargetAssignmentMetadata).
3. Reconcile the member towards its target (`reconcile.py`) and write its new current
   assignment (ConsumerGroupCurrentMemberAssignment) if it changed.

Epoch -1 leaves (the member is fenced: its records are deleted and the group epoch bumped);
epoch -2 is a static member's temporary leave: it keeps its partitions, with epoch -2, until its
instance rejoins with a new member id or its session expires. A member that does not heartbeat
within `group.consumer.session.timeout.ms`, or does not revoke within its rebalance timeout, is
fenced by a timer. The response carries `group.consumer.heartbeat.interval.ms`, and the
assignment when the member joins, sends a full request, or its assignment changed.

Other group types share the id space: a heartbeat that joins an empty classic group replaces it
(its offsets stay); a non-empty classic group answers GROUP_ID_NOT_FOUND, and a classic
JoinGroup to a consumer group with members answers INCONSISTENT_GROUP_PROTOCOL
(`consumer_admin.py`): Kafka's answers when online migration between the protocols is
disabled, which kbroker does not implement.
"""

from __future__ import annotations

import base64
import dataclasses
import uuid
from collections.abc import Iterable, Mapping

from kbroker.groups import records as rec
from kbroker.groups.assignors import BUILTIN, MemberSpec
from kbroker.groups.classic import GroupState
from kbroker.groups.classic_ops import store_error
from kbroker.groups.consumer import (
    LEAVE_GROUP_MEMBER_EPOCH,
    LEAVE_GROUP_STATIC_MEMBER_EPOCH,
    ConsumerGroup,
    ConsumerMember,
    MemberState,
    Owned,
    Partitions,
    TopicMeta,
    assignment_record,
    compile_regex,
    epoch_record,
    member_record,
    member_tombstones,
    metadata_hash,
    partitions_of,
    preferred_assignor,
    resolve_regex,
    target_epoch_record,
    target_record,
)
from kbroker.groups.coordinator import GroupConfig, GroupCoordinatorShard, Reply
from kbroker.groups.reconcile import Reported, reconcile, reported_partitions
from kbroker.groups.records import CoordinatorRecord
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages import consumer_group_heartbeat_response as hb
from protocol.messages.consumer_group_heartbeat_request import ConsumerGroupHeartbeatRequest

Topics = Mapping[str, TopicMeta]


def _session_key(group_id: str, member_id: str) -> str:
    return f"consumer-session {group_id} {member_id}"


def _revocation_key(group_id: str, member_id: str) -> str:
    return f"consumer-revocation {group_id} {member_id}"


def new_member_id() -> str:
    """A member id as Kafka makes them (a random UUID in URL-safe base64)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _invalid(message: str) -> KafkaError:
    return KafkaError(ErrorCode.INVALID_REQUEST, message)


# ---------------------------------------------------------------------- ConsumerGroupHeartbeat


def validate_request(
    config: GroupConfig, request: ConsumerGroupHeartbeatRequest, version: int
) -> None:
    """Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid` (before the group is looked at)."""
    epoch = request.member_epoch
    if (version >= 1 or epoch > 0 or epoch == LEAVE_GROUP_MEMBER_EPOCH) and not request.member_id:
        raise _invalid("MemberId can't be empty.")
    if not request.group_id:
        raise _invalid("GroupId can't be empty.")
    if request.instance_id == "":
        raise _invalid("InstanceId can't be empty.")
    if request.rack_id == "":
        raise _invalid("RackId can't be empty.")
    if epoch == 0:
        if request.rebalance_timeout_ms == -1:
            raise _invalid("RebalanceTimeoutMs must be provided in first request.")
        if request.topic_partitions is None or request.topic_partitions:
            raise _invalid("TopicPartitions must be empty when (re-)joining.")
        if request.subscribed_topic_names is None and request.subscribed_topic_regex is None:
            raise _invalid(
                "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when "
                "(re-)joining."
            )
    elif epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
        if request.instance_id is None:
            raise _invalid("InstanceId can't be null.")
    elif epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH:
        raise _invalid("MemberEpoch is invalid.")
    assignor = request.server_assignor
    if assignor is not None and assignor not in config.consumer_assignors:
        raise KafkaError(
            ErrorCode.UNSUPPORTED_ASSIGNOR,
            f"ServerAssignor {assignor} is not supported. Supported assignors: "
            f"{', '.join(config.consumer_assignors)}.",
        )


def heartbeat(
    shard: GroupCoordinatorShard,
    request: ConsumerGroupHeartbeatRequest,
    version: int,
    client_id: str,
    client_host: str,
    reply: Reply,
) -> None:
    records: list[CoordinatorRecord] = []
    try:
        validate_request(shard.config, request, version)
        if request.member_epoch in (LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH):
            response = _leave(shard, request, records)
        else:
            response = _heartbeat(shard, request, client_id, client_host, records)
    except KafkaError as exc:
        error = hb.ConsumerGroupHeartbeatResponse(error_code=exc.code, error_message=exc.message)
        shard.reply(reply, error)
        return
    if not records:
        shard.reply(reply, response)
        return

    def appended(error: ErrorCode | None) -> None:
        if error is None:
            shard.reply(reply, response)
        else:
            shard.reply(reply, hb.ConsumerGroupHeartbeatResponse(error_code=store_error(error)))

    shard.write(records, replay=True, on_appended=appended)


def _heartbeat(
    shard: GroupCoordinatorShard,
    request: ConsumerGroupHeartbeatRequest,
    client_id: str,
    client_host: str,
    records: list[CoordinatorRecord],
) -> hb.ConsumerGroupHeartbeatResponse:
    group = _group_for_heartbeat(shard, request.group_id, request.member_epoch == 0, records)
    _check_group_size(shard.config, group, request.member_id, request.instance_id)
    member_id = request.member_id or new_member_id()
    reported = reported_partitions(
        None
        if request.topic_partitions is None
        else ((t.topic_id, t.partitions) for t in request.topic_partitions)
    )
    if request.instance_id is None:
        member, replaced = _dynamic_member(group, member_id, request.member_epoch, reported), None
    else:
        member, replaced = _static_member(group, member_id, request, reported, records)
    updated = _with_request(member, request, client_id, client_host)
    topics = shard.topics()
    members = dict(group.members)
    if replaced is not None:
        del members[replaced.member_id]
    members[updated.member_id] = updated
    changed, group_epoch = _update_member(group, member, updated, members, topics, records)
    target_epoch, target = _target(shard, group, group_epoch, members, updated, topics, records)
    reconciled = updated
    if changed or not updated.is_reconciled_to(target_epoch):
        subscribed = _topic_ids(updated.subscribed_topics(topics), topics)
        reconciled = reconcile(
            updated, target_epoch, target, subscribed, group.owner, reported, changed
        )
    if reconciled != updated:
        records.append(assignment_record(group.group_id, reconciled))
        _arm_revocation_timer(shard, group.group_id, reconciled)
    _arm_session_timer(shard, group.group_id, member_id)
    return _response(shard.config, request, member, reconciled)


def _update_member(
    group: ConsumerGroup,
    member: ConsumerMember,
    updated: ConsumerMember,
    members: Mapping[str, ConsumerMember],
    topics: Topics,
    records: list[CoordinatorRecord],
) -> tuple[bool, int]:
    """Step 1: write the member if it changed; bump the group epoch if its subscription or the
    subscribed topics' metadata did. Returns (subscription changed, group epoch)."""
    if updated != member:
        records.append(member_record(group.group_id, updated))
    subscription_changed = (
        updated.subscribed_topic_names != member.subscribed_topic_names
        or updated.regex != member.regex
    )
    if updated.regex is not None and updated.regex != member.regex:
        compile_regex(updated.regex)  # INVALID_REGULAR_EXPRESSION
    new_hash = metadata_hash(subscribed_names(members.values(), topics), topics)
    if not subscription_changed and new_hash == group.metadata_hash:
        return False, group.group_epoch
    records.append(epoch_record(group.group_id, group.group_epoch + 1, new_hash))
    return subscription_changed, group.group_epoch + 1


def _response(
    config: GroupConfig,
    request: ConsumerGroupHeartbeatRequest,
    before: ConsumerMember,
    after: ConsumerMember,
) -> hb.ConsumerGroupHeartbeatResponse:
    response = hb.ConsumerGroupHeartbeatResponse(
        member_id=after.member_id,
        member_epoch=after.member_epoch,
        heartbeat_interval_ms=config.consumer_heartbeat_interval_ms,
    )
    full = (
        request.rebalance_timeout_ms != -1
        and (
            request.subscribed_topic_names is not None or request.subscribed_topic_regex is not None
        )
        and request.topic_partitions is not None
    )
    assigned = partitions_of(after.assigned)
    if request.member_epoch == 0 or full or assigned != partitions_of(before.assigned):
        response.assignment = hb.Assignment(
            topic_partitions=[
                hb.TopicPartitions(topic_id=t, partitions=sorted(ps))
                for t, ps in sorted(assigned.items())
            ]
        )
    return response


def _group_for_heartbeat(
    shard: GroupCoordinatorShard, group_id: str, joining: bool, records: list[CoordinatorRecord]
) -> ConsumerGroup:
    """The consumer group, or a new one when a member joins (created by replaying its records)."""
    group = shard.consumer_groups.get(group_id)
    if group is not None:
        return group
    classic = shard.group_or_none(group_id)
    if classic is not None:
        if not joining:
            raise KafkaError(
                ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a consumer group."
            )
        if not classic.is_in(GroupState.EMPTY):
            raise KafkaError(
                ErrorCode.GROUP_ID_NOT_FOUND,
                f"Cannot upgrade classic group {group_id} to consumer group because online "
                "upgrade is disabled.",
            )
        records.append(rec.group_metadata(group_id, None))  # Kafka replaces an empty classic group
    elif not joining:
        raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, f"Consumer group {group_id} not found.")
    return ConsumerGroup(group_id)


def _check_group_size(
    config: GroupConfig, group: ConsumerGroup, member_id: str, instance_id: str | None
) -> None:
    if group.static_member(instance_id) is not None:
        return  # a static member rejoining takes its own place
    if len(group.members) >= config.consumer_max_size and member_id not in group.members:
        raise KafkaError(
            ErrorCode.GROUP_MAX_SIZE_REACHED,
            "The consumer group has reached its maximum capacity of "
            f"{config.consumer_max_size} members.",
        )


def _check_epoch(member: ConsumerMember, received: int, reported: Reported) -> None:
    """FENCED_MEMBER_EPOCH unless the member is where the coordinator thinks it is (or one step
    behind, with a subset of its partitions: the response with its new epoch was lost)."""
    if received in (0, member.member_epoch):
        return
    lost_response = received < member.member_epoch and received == member.previous_member_epoch
    if lost_response and _is_subset(reported, member.assigned):
        return
    relation = "greater" if received > member.member_epoch else "smaller"
    raise KafkaError(
        ErrorCode.FENCED_MEMBER_EPOCH,
        f"The consumer group member has a {relation} member epoch ({received}) than the one "
        f"known by the group coordinator ({member.member_epoch}). The member must abandon all "
        "its partitions and rejoin.",
    )


def _is_subset(reported: Reported, assigned: Owned) -> bool:
    if reported is None:
        return False
    return all(p in assigned.get(t, {}) for t, ps in reported.items() for p in ps)


def _dynamic_member(
    group: ConsumerGroup, member_id: str, epoch: int, reported: Reported
) -> ConsumerMember:
    member = group.members.get(member_id)
    if member is None:
        if epoch != 0:
            group.member(member_id)  # UNKNOWN_MEMBER_ID
        return ConsumerMember(member_id)
    _check_epoch(member, epoch, reported)
    return member


def _static_member(
    group: ConsumerGroup,
    member_id: str,
    request: ConsumerGroupHeartbeatRequest,
    reported: Reported,
    records: list[CoordinatorRecord],
) -> tuple[ConsumerMember, ConsumerMember | None]:
    """The member of an instance id, and the member it replaces (KIP-345 with KIP-848 rules:
    an instance is released by its -2 leave; until then a newcomer is UNRELEASED_INSTANCE_ID)."""
    instance_id = request.instance_id
    existing = group.static_member(instance_id)
    if request.member_epoch == 0:
        if existing is None:
            return group.members.get(member_id) or ConsumerMember(member_id), None
        if existing.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            raise KafkaError(
                ErrorCode.UNRELEASED_INSTANCE_ID,
                f"Static member {member_id} with instance id {instance_id} cannot join the group "
                f"because the instance id is owned by {existing.member_id} member.",
            )
        new = dataclasses.replace(
            existing, member_id=member_id, member_epoch=0, previous_member_epoch=0
        )
        records += member_tombstones(group.group_id, existing.member_id)
        records.append(member_record(group.group_id, new))
        records.append(
            target_record(group.group_id, member_id, group.target_of(existing.member_id))
        )
        records.append(assignment_record(group.group_id, new))
        return new, existing
    if existing is None:
        raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID, f"Instance id {instance_id} is unknown.")
    if existing.member_id != member_id:
        raise KafkaError(
            ErrorCode.FENCED_INSTANCE_ID,
            f"Static member {member_id} with instance id {instance_id} was fenced by member "
            f"{existing.member_id}.",
        )
    _check_epoch(existing, request.member_epoch, reported)
    return existing, None


def _with_request(
    member: ConsumerMember, request: ConsumerGroupHeartbeatRequest, client_id: str, client_host: str
) -> ConsumerMember:
    """The member as this request describes it; absent (null, -1) fields keep their value."""
    names = request.subscribed_topic_names
    return dataclasses.replace(
        member,
        instance_id=member.instance_id if request.instance_id is None else request.instance_id,
        rack_id=member.rack_id if request.rack_id is None else request.rack_id,
        rebalance_timeout_ms=(
            member.rebalance_timeout_ms
            if request.rebalance_timeout_ms == -1
            else request.rebalance_timeout_ms
        ),
        server_assignor=(
            member.server_assignor if request.server_assignor is None else request.server_assignor
        ),
        subscribed_topic_names=member.subscribed_topic_names if names is None else frozenset(names),
        subscribed_topic_regex=(
            member.subscribed_topic_regex
            if request.subscribed_topic_regex is None
            else request.subscribed_topic_regex
        ),
        client_id=client_id,
        client_host=client_host,
    )


def subscribed_names(members: Iterable[ConsumerMember], topics: Topics) -> set[str]:
    """Every topic some member subscribes to, by name or by pattern (resolved once each)."""
    names: set[str] = set()
    patterns: set[str] = set()
    for member in members:
        names |= member.subscribed_topic_names
        if member.regex is not None:
            patterns.add(member.regex)
    for pattern in patterns:
        names |= resolve_regex(pattern, topics)
    return names


def _topic_ids(names: Iterable[str], topics: Topics) -> set[uuid.UUID]:
    return {topics[n].topic_id for n in names if n in topics}


def _target(
    shard: GroupCoordinatorShard,
    group: ConsumerGroup,
    group_epoch: int,
    members: Mapping[str, ConsumerMember],
    updated: ConsumerMember,
    topics: Topics,
    records: list[CoordinatorRecord],
) -> tuple[int, Partitions]:
    """The target epoch and the member's target, computing a new target assignment if due."""
    if group.assignment_epoch >= group_epoch:
        return group.assignment_epoch, group.target_of(updated.member_id, updated.instance_id)
    name = preferred_assignor(members.values()) or shard.config.consumer_assignors[0]
    specs = [
        MemberSpec(
            member_id=m.member_id,
            instance_id=m.instance_id,
            topics=frozenset(_topic_ids(m.subscribed_topics(topics), topics)),
            previous=group.target_of(m.member_id, m.instance_id),
        )
        for m in members.values()
    ]
    counts = {meta.topic_id: meta.partitions for meta in topics.values()}
    new = BUILTIN[name].assign(specs, counts)
    for member_id, target in sorted(new.items()):
        if group.target.get(member_id) != target:
            records.append(target_record(group.group_id, member_id, target))
    records.append(target_epoch_record(group.group_id, group_epoch, shard.now))
    return group_epoch, new.get(updated.member_id, {})


# ---------------------------------------------------------------------- leaving and fencing


def _leave(
    shard: GroupCoordinatorShard,
    request: ConsumerGroupHeartbeatRequest,
    records: list[CoordinatorRecord],
) -> hb.ConsumerGroupHeartbeatResponse:
    group = consumer_group(shard, request.group_id)
    response = hb.ConsumerGroupHeartbeatResponse(
        member_id=request.member_id, member_epoch=request.member_epoch
    )
    if request.instance_id is None:
        member = group.member(request.member_id)
    else:
        found = group.static_member(request.instance_id)
        if found is None:
            raise KafkaError(
                ErrorCode.UNKNOWN_MEMBER_ID, f"Instance id {request.instance_id} is unknown."
            )
        if found.member_id != request.member_id:
            raise KafkaError(
                ErrorCode.FENCED_INSTANCE_ID,
                f"Static member {request.member_id} with instance id {request.instance_id} was "
                f"fenced by member {found.member_id}.",
            )
        member = found
        if request.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            # it will be back: keep its partitions (held at epoch 0, so that its old id's
            # commits are refused), for its instance to take over within the session timeout
            away = dataclasses.replace(
                member,
                member_epoch=LEAVE_GROUP_STATIC_MEMBER_EPOCH,
                pending_revocation={},
                assigned={t: dict.fromkeys(ps, 0) for t, ps in member.assigned.items()},
            )
            records.append(assignment_record(group.group_id, away))
            shard.timers.cancel(_revocation_key(group.group_id, member.member_id))
            return response
    records += fence(shard, group, [member])
    return response


def fence(
    shard: GroupCoordinatorShard, group: ConsumerGroup, members: list[ConsumerMember]
) -> list[CoordinatorRecord]:
    """Remove members: their records go, the group epoch is bumped so the rest rebalance."""
    records: list[CoordinatorRecord] = []
    gone = {m.member_id for m in members}
    for member_id in gone:
        records += member_tombstones(group.group_id, member_id)
        shard.timers.cancel(_session_key(group.group_id, member_id))
        shard.timers.cancel(_revocation_key(group.group_id, member_id))
    topics = shard.topics()
    remaining = [m for m in group.members.values() if m.member_id not in gone]
    new_hash = metadata_hash(subscribed_names(remaining, topics), topics)
    records.append(epoch_record(group.group_id, group.group_epoch + 1, new_hash))
    return records


def consumer_group(shard: GroupCoordinatorShard, group_id: str) -> ConsumerGroup:
    group = shard.consumer_groups.get(group_id)
    if group is not None:
        return group
    if shard.group_or_none(group_id) is not None:
        raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a consumer group.")
    raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} not found.")


# ---------------------------------------------------------------------- timers


def _arm_session_timer(shard: GroupCoordinatorShard, group_id: str, member_id: str) -> None:
    shard.timers.schedule(
        _session_key(group_id, member_id),
        shard.now + shard.config.consumer_session_timeout_ms,
        lambda: _fence_by_timer(shard, group_id, member_id, None),
    )


def _arm_revocation_timer(
    shard: GroupCoordinatorShard, group_id: str, member: ConsumerMember
) -> None:
    """A member asked to revoke has its rebalance timeout to do so, or it is fenced."""
    key = _revocation_key(group_id, member.member_id)
    if member.state != MemberState.UNREVOKED_PARTITIONS:
        shard.timers.cancel(key)
        return
    member_id, epoch = member.member_id, member.member_epoch
    shard.timers.schedule(
        key,
        shard.now + max(member.rebalance_timeout_ms, 0),
        lambda: _fence_by_timer(shard, group_id, member_id, epoch),
    )


def _fence_by_timer(
    shard: GroupCoordinatorShard, group_id: str, member_id: str, epoch: int | None
) -> None:
    """Session expiry (epoch None) or a revocation not done in time at `epoch`."""
    group = shard.consumer_groups.get(group_id)
    member = group.members.get(member_id) if group is not None else None
    if group is None or member is None:
        return
    if epoch is not None and (
        member.member_epoch != epoch or member.state != MemberState.UNREVOKED_PARTITIONS
    ):
        return  # it did move on (or the revocation was never written: its append failed)
    shard.write(fence(shard, group, [member]), replay=True)


def restart_sessions(shard: GroupCoordinatorShard) -> None:
    """After loading: members keep their place if they heartbeat within the session timeout
    from now; those revoking get their rebalance timeout again (as Kafka's onLoaded)."""
    for group in shard.consumer_groups.values():
        for member in group.members.values():
            _arm_session_timer(shard, group.group_id, member.member_id)
            _arm_revocation_timer(shard, group.group_id, member)
