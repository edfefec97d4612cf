"""The classic group protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup and their timers.

Kafka's rules (`GroupMetadataManager.classicGroup*`), kept in the same shape so that the two
read side by side:

- A new dynamic member at JoinGroup v4+ first gets MEMBER_ID_REQUIRED with an id, and is a
  *pending* member until it joins with that id (KIP-394). A static member (group.instance.id,
  KIP-345) joining with no member id takes over its instance's place: in a Stable group whose
  protocol would not change, it gets the current generation back with no rebalance.
- A rebalance (PreparingRebalance) completes when every known member has rejoined and no
  pending member is outstanding, or when the largest rebalance timeout passes (members that
  did not rejoin are removed, static ones kept). A new group waits
  `group.initial.rebalance.delay.ms` first, extended while members keep arriving, up to the
  rebalance timeout.
- Completing the join makes a generation: the protocol is chosen by vote among those all
  members support, the leader gets every member's metadata, and everybody must SyncGroup within
  the rebalance timeout (else they are removed and the group rebalances again).
- The leader's SyncGroup carries the assignment; it is written as a GroupMetadata record and,
  once appended, every parked SyncGroup is answered and the group is Stable.
- A member whose session timeout passes without a heartbeat is removed; a member parked in a
  JoinGroup or SyncGroup needs no heartbeat (but a new member must finish joining within
  `new_member_join_timeout_ms`).
"""

from __future__ import annotations

import logging

from kbroker.groups import records as rec
from kbroker.groups.classic import ClassicGroup, ClassicMember, GroupState
from kbroker.groups.coordinator import GroupCoordinatorShard, Reply
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages.heartbeat_request import HeartbeatRequest
from protocol.messages.heartbeat_response import HeartbeatResponse
from protocol.messages.join_group_request import JoinGroupRequest
from protocol.messages.join_group_response import JoinGroupResponse, JoinGroupResponseMember
from protocol.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from protocol.messages.leave_group_response import LeaveGroupResponse, MemberResponse
from protocol.messages.sync_group_request import SyncGroupRequest
from protocol.messages.sync_group_response import SyncGroupResponse

log = logging.getLogger("kbroker.groups")

UNKNOWN_MEMBER_ID = ""
S = GroupState


def _heartbeat_key(group_id: str, member_id: str) -> str:
    return f"heartbeat {group_id} {member_id}"


def _join_key(group_id: str) -> str:
    return f"join {group_id}"


def _sync_key(group_id: str) -> str:
    return f"sync {group_id}"


def _join_response(
    group: ClassicGroup,
    member_id: str,
    members: list[JoinGroupResponseMember] | None = None,
    skip_assignment: bool = False,
) -> JoinGroupResponse:
    return JoinGroupResponse(
        error_code=ErrorCode.NONE,
        generation_id=group.generation_id,
        protocol_type=group.protocol_type,
        protocol_name=group.protocol_name,
        leader=group.leader_id or "",
        skip_assignment=skip_assignment,
        member_id=member_id,
        members=members or [],
    )


def _join_error(member_id: str, code: ErrorCode) -> JoinGroupResponse:
    return JoinGroupResponse(error_code=code, member_id=member_id)


def _current_members(group: ClassicGroup) -> list[JoinGroupResponseMember]:
    protocol = group.protocol_name or ""
    return [
        JoinGroupResponseMember(m.member_id, m.group_instance_id, m.metadata(protocol))
        for m in group.members.values()
    ]


# ---------------------------------------------------------------------- JoinGroup


def join_group(
    shard: GroupCoordinatorShard,
    request: JoinGroupRequest,
    version: int,
    client_id: str,
    client_host: str,
    reply: Reply,
) -> None:
    config = shard.config
    member_id = request.member_id
    if not request.group_id:
        shard.reply(reply, _join_error(member_id, ErrorCode.INVALID_GROUP_ID))
        return
    timeout = request.session_timeout_ms
    if not config.min_session_timeout_ms <= timeout <= config.max_session_timeout_ms:
        shard.reply(reply, _join_error(member_id, ErrorCode.INVALID_SESSION_TIMEOUT))
        return
    if request.rebalance_timeout_ms == -1:  # v0: the session timeout serves as both
        request.rebalance_timeout_ms = timeout
    is_unknown = member_id == UNKNOWN_MEMBER_ID
    group = shard.group_or_none(request.group_id)
    if group is None:
        if not is_unknown:
            shard.reply(reply, _join_error(member_id, ErrorCode.UNKNOWN_MEMBER_ID))
            return
        group = shard.get_or_create_group(request.group_id)
    if not _accept_joining_member(shard, group, member_id):
        shard.reply(reply, _join_error(UNKNOWN_MEMBER_ID, ErrorCode.GROUP_MAX_SIZE_REACHED))
        if group.remove(member_id) is not None:
            shard.timers.cancel(_heartbeat_key(group.group_id, member_id))
        return
    protocols = [(p.name, bytes(p.metadata)) for p in request.protocols]
    if not group.supports_protocols(request.protocol_type, protocols):
        shard.reply(reply, _join_error(member_id, ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
        return
    if is_unknown:
        new_id = group.generate_member_id(client_id, request.group_instance_id)
        if request.group_instance_id is not None:
            _join_new_static_member(
                shard, group, request, version, protocols, new_id, client_id, client_host, reply
            )
        elif version >= 4:  # KIP-394: hand out the id, accept the member when it comes back
            group.pending_members.add(new_id)
            shard.timers.schedule(
                _heartbeat_key(group.group_id, new_id),
                shard.now + timeout,
                lambda: expire_heartbeat(shard, group.group_id, new_id),
            )
            shard.reply(reply, _join_error(new_id, ErrorCode.MEMBER_ID_REQUIRED))
        else:
            _add_member_and_rebalance(
                shard, group, request, protocols, new_id, client_id, client_host, reply
            )
        return
    _join_existing_member(shard, group, request, protocols, client_id, client_host, reply)


def _accept_joining_member(
    shard: GroupCoordinatorShard, group: ClassicGroup, member_id: str
) -> bool:
    max_size = shard.config.max_size
    if group.is_in(S.EMPTY, S.DEAD):
        return True
    member = group.members.get(member_id)
    if group.is_in(S.PREPARING_REBALANCE):
        awaiting = member is not None and member.awaiting_join is not None
        return awaiting or group.awaiting_join_count() < max_size
    return member is not None or len(group.members) < max_size


def _join_new_static_member(
    shard: GroupCoordinatorShard,
    group: ClassicGroup,
    request: JoinGroupRequest,
    version: int,
    protocols: list[tuple[str, bytes]],
    new_id: str,
    client_id: str,
    client_host: str,
    reply: Reply,
) -> None:
    instance_id = request.group_instance_id
    assert instance_id is not None
    old_id = group.static_members.get(instance_id)
    if old_id is None:
        _add_member_and_rebalance(
            shard, group, request, protocols, new_id, client_id, client_host, reply
        )
        return
    _replace_static_member(shard, group, request, version, protocols, old_id, new_id, reply)


def _replace_static_member(
    shard: GroupCoordinatorShard,
    group: ClassicGroup,
    request: JoinGroupRequest,
    version: int,
    protocols: list[tuple[str, bytes]],
    old_id: str,
    new_id: str,
    reply: Reply,
) -> None:
    """A restarted static member takes its instance's place; the old id is fenced."""
    instance_id = request.group_instance_id
    assert instance_id is not None
    old_leader = group.leader_id
    old = group.members[old_id]
    # the old incarnation's parked requests learn that they were replaced
    if old.awaiting_join is not None:
        shard.reply(old.awaiting_join, _join_error(old_id, ErrorCode.FENCED_INSTANCE_ID))
        old.awaiting_join = None
    if old.awaiting_sync is not None:
        shard.reply(old.awaiting_sync, SyncGroupResponse(error_code=ErrorCode.FENCED_INSTANCE_ID))
        old.awaiting_sync = None
    shard.timers.cancel(_heartbeat_key(group.group_id, old_id))
    member = group.replace_static_member(instance_id, old_id, new_id)
    reschedule_heartbeat(shard, group, member)
    saved = (member.protocols, member.rebalance_timeout_ms, member.session_timeout_ms)
    _update_member(member, request, protocols, reply)

    if group.is_in(S.STABLE) and group.protocol_name == group.select_protocol():
        # Same protocol next generation: persist the new member id, keep the assignment.
        assignments = {m.member_id: m.assignment for m in group.members.values()}

        def stored(error: ErrorCode | None) -> None:
            if error is not None:  # revert: the old member id stays valid
                member.protocols, member.rebalance_timeout_ms, member.session_timeout_ms = saved
                member.awaiting_join = None
                restored = group.replace_static_member(instance_id, new_id, old_id)
                reschedule_heartbeat(shard, group, restored)
                if old_leader == old_id:
                    group.leader_id = old_id
                shard.reply(reply, _join_error(UNKNOWN_MEMBER_ID, store_error(error)))
                return
            member.awaiting_join = None
            if version >= 9:
                # KIP-814: a rejoining leader learns the members but must not reassign
                is_leader = group.leader_id == new_id
                members = _current_members(group) if is_leader else []
                response = _join_response(group, new_id, members, skip_assignment=is_leader)
            else:
                # older clients: name the old leader id, so that this member acts as a follower
                # and syncs for its current assignment instead of computing a new one
                response = _join_response(group, new_id)
                response.leader = old_leader or ""
            shard.reply(reply, response)

        value = group.to_record_value(assignments)
        shard.write([rec.group_metadata(group.group_id, value)], replay=False, on_appended=stored)
        return
    if group.is_in(S.COMPLETING_REBALANCE):
        # the leader may already be assigning to the old id: rebalance so the new id is assigned
        prepare_rebalance(shard, group, f"static member {instance_id} rejoined")
        return
    if group.is_in(S.STABLE):
        _maybe_prepare_rebalance_or_complete_join(shard, group)
        return
    _maybe_complete_join_phase(shard, group)


def _join_existing_member(
    shard: GroupCoordinatorShard,
    group: ClassicGroup,
    request: JoinGroupRequest,
    protocols: list[tuple[str, bytes]],
    client_id: str,
    client_host: str,
    reply: Reply,
) -> None:
    member_id = request.member_id
    if member_id in group.pending_members:
        _add_member_and_rebalance(
            shard, group, request, protocols, member_id, client_id, client_host, reply
        )
        return
    try:
        member = group.validate_member(member_id, request.group_instance_id)
    except KafkaError as exc:
        shard.reply(reply, _join_error(member_id, exc.code))
        return
    if group.is_in(S.PREPARING_REBALANCE):
        _update_member(member, request, protocols, reply)
        _maybe_prepare_rebalance_or_complete_join(shard, group)
    elif group.is_in(S.COMPLETING_REBALANCE):
        if member.protocols == protocols:  # a retry: it lost the response to its JoinGroup
            members = _current_members(group) if group.leader_id == member_id else []
            shard.reply(reply, _join_response(group, member_id, members))
        else:
            _update_member(member, request, protocols, reply)
            _maybe_prepare_rebalance_or_complete_join(shard, group)
    elif group.is_in(S.STABLE):
        if group.leader_id == member_id or member.protocols != protocols:
            # the leader rejoining forces a rebalance (e.g. the topics' metadata changed)
            _update_member(member, request, protocols, reply)
            _maybe_prepare_rebalance_or_complete_join(shard, group)
        else:
            shard.reply(reply, _join_response(group, member_id))
    else:
        shard.reply(reply, _join_error(member_id, ErrorCode.UNKNOWN_MEMBER_ID))


def _update_member(
    member: ClassicMember,
    request: JoinGroupRequest,
    protocols: list[tuple[str, bytes]],
    reply: Reply,
) -> None:
    member.protocols = protocols
    member.rebalance_timeout_ms = request.rebalance_timeout_ms
    member.session_timeout_ms = request.session_timeout_ms
    member.awaiting_join = reply


def _add_member_and_rebalance(
    shard: GroupCoordinatorShard,
    group: ClassicGroup,
    request: JoinGroupRequest,
    protocols: list[tuple[str, bytes]],
    member_id: str,
    client_id: str,
    client_host: str,
    reply: Reply,
) -> None:
    member = ClassicMember(
        member_id=member_id,
        group_instance_id=request.group_instance_id,
        client_id=client_id,
        client_host=client_host,
        rebalance_timeout_ms=request.rebalance_timeout_ms,
        session_timeout_ms=request.session_timeout_ms,
        protocol_type=request.protocol_type,
        protocols=protocols,
        is_new=True,
    )
    if group.is_in(S.PREPARING_REBALANCE) and group.previous_state == S.EMPTY:
        group.new_member_added = True  # the initial delayed join waits a little longer
    group.add(member, reply)
    # A new member cannot heartbeat until it has its id; bound how long its join may stay parked.
    reschedule_heartbeat(shard, group, member, shard.config.new_member_join_timeout_ms)
    _maybe_prepare_rebalance_or_complete_join(shard, group)


def _maybe_prepare_rebalance_or_complete_join(
    shard: GroupCoordinatorShard, group: ClassicGroup
) -> None:
    if group.can_rebalance():
        prepare_rebalance(shard, group, "membership changed")
    else:
        _maybe_complete_join_phase(shard, group)


def _maybe_complete_join_phase(shard: GroupCoordinatorShard, group: ClassicGroup) -> None:
    if not group.is_in(S.PREPARING_REBALANCE) or group.previous_state == S.EMPTY:
        return  # a new group's first join phase ends by its delay timer only
    if group.has_all_members_joined():
        complete_join(shard, group.group_id)


def prepare_rebalance(shard: GroupCoordinatorShard, group: ClassicGroup, reason: str) -> None:
    log.info(
        "group %s: preparing to rebalance (generation %d, %s): %s",
        group.group_id,
        group.generation_id,
        group.state.value,
        reason,
    )
    if group.is_in(S.COMPLETING_REBALANCE):
        _reset_and_propagate_error(shard, group, ErrorCode.REBALANCE_IN_PROGRESS)
    group.pending_sync.clear()
    shard.timers.cancel(_sync_key(group.group_id))
    initial = group.is_in(S.EMPTY)
    group.transition(S.PREPARING_REBALANCE, shard.now)
    group_id = group.group_id
    if initial:
        delay = shard.config.initial_rebalance_delay_ms
        remaining = max(group.rebalance_timeout_ms() - delay, 0)
        shard.timers.schedule(
            _join_key(group_id),
            shard.now + delay,
            lambda: _try_complete_initial_join(shard, group_id, delay, remaining),
        )
        return
    if group.has_all_members_joined():
        complete_join(shard, group_id)
    else:
        shard.timers.schedule(
            _join_key(group_id),
            shard.now + group.rebalance_timeout_ms(),
            lambda: complete_join(shard, group_id),
        )


def _try_complete_initial_join(
    shard: GroupCoordinatorShard, group_id: str, delay: int, remaining: int
) -> None:
    group = shard.group_or_none(group_id)
    if group is None:
        return
    if group.new_member_added and remaining != 0:
        group.new_member_added = False
        new_delay = min(shard.config.initial_rebalance_delay_ms, remaining)
        new_remaining = max(remaining - delay, 0)
        shard.timers.schedule(
            _join_key(group_id),
            shard.now + new_delay,
            lambda: _try_complete_initial_join(shard, group_id, new_delay, new_remaining),
        )
    else:
        complete_join(shard, group_id)


def complete_join(shard: GroupCoordinatorShard, group_id: str) -> None:
    """End the join phase: drop dynamic members that did not rejoin, make a generation."""
    group = shard.group_or_none(group_id)
    if group is None or not group.is_in(S.PREPARING_REBALANCE):
        return
    shard.timers.cancel(_join_key(group_id))
    for member in list(group.members.values()):
        if member.awaiting_join is None and not member.is_static:
            group.remove(member.member_id)
            shard.timers.cancel(_heartbeat_key(group_id, member.member_id))
    if not group.elect_joined_leader() and group.members:
        # nobody rejoined yet: wait another rebalance timeout for the session timeouts to act
        shard.timers.schedule(
            _join_key(group_id),
            shard.now + group.rebalance_timeout_ms(),
            lambda: complete_join(shard, group_id),
        )
        return
    group.generation_id += 1
    group.pending_sync.clear()
    if not group.members:
        group.protocol_name = None
        group.transition(S.EMPTY, shard.now)
        shard.write([rec.group_metadata(group_id, group.to_record_value({}))], replay=False)
        return
    group.protocol_name = group.select_protocol()
    group.transition(S.COMPLETING_REBALANCE, shard.now)
    log.info(
        "group %s: generation %d with %d members (protocol %s, leader %s)",
        group_id,
        group.generation_id,
        len(group.members),
        group.protocol_name,
        group.leader_id,
    )
    leader_members = _current_members(group)
    for member in group.members.values():
        if member.awaiting_join is not None:
            members = leader_members if member.member_id == group.leader_id else []
            shard.reply(member.awaiting_join, _join_response(group, member.member_id, members))
            member.awaiting_join = None
        reschedule_heartbeat(shard, group, member)
        member.is_new = False
        group.pending_sync.add(member.member_id)
    generation = group.generation_id
    shard.timers.schedule(
        _sync_key(group_id),
        shard.now + group.rebalance_timeout_ms(),
        lambda: _expire_pending_sync(shard, group_id, generation),
    )


def _expire_pending_sync(shard: GroupCoordinatorShard, group_id: str, generation: int) -> None:
    group = shard.group_or_none(group_id)
    if group is None or group.generation_id != generation:
        return
    if group.is_in(S.COMPLETING_REBALANCE, S.STABLE) and group.pending_sync:
        for member_id in list(group.pending_sync):
            _drop_member(shard, group, member_id)
        prepare_rebalance(shard, group, "members did not sync in time")


# ---------------------------------------------------------------------- SyncGroup


def sync_group(shard: GroupCoordinatorShard, request: SyncGroupRequest, reply: Reply) -> None:
    group = shard.group_or_none(request.group_id)
    if group is None or group.is_in(S.EMPTY):
        shard.reply(reply, SyncGroupResponse(error_code=ErrorCode.UNKNOWN_MEMBER_ID))
        return
    error = _validate_sync(group, request)
    if error is not None:
        shard.reply(reply, SyncGroupResponse(error_code=error))
    elif group.is_in(S.PREPARING_REBALANCE):
        shard.reply(reply, SyncGroupResponse(error_code=ErrorCode.REBALANCE_IN_PROGRESS))
    elif group.is_in(S.COMPLETING_REBALANCE):
        member = group.members[request.member_id]
        member.awaiting_sync = reply
        _remove_pending_sync(shard, group, request.member_id)
        if group.leader_id == request.member_id:
            _store_assignment(shard, group, request)
    else:  # Stable: the member lost its SyncGroup response; give it the assignment again
        _remove_pending_sync(shard, group, request.member_id)
        member = group.members[request.member_id]
        shard.reply(reply, _sync_response(group, member.assignment))


def _validate_sync(group: ClassicGroup, request: SyncGroupRequest) -> ErrorCode | None:
    try:
        group.validate_member(request.member_id, request.group_instance_id)
    except KafkaError as exc:
        return exc.code
    if request.generation_id != group.generation_id:
        return ErrorCode.ILLEGAL_GENERATION
    if request.protocol_type is not None and request.protocol_type != group.protocol_type:
        return ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    if request.protocol_name is not None and request.protocol_name != group.protocol_name:
        return ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    return None


def _sync_response(group: ClassicGroup, assignment: bytes) -> SyncGroupResponse:
    return SyncGroupResponse(
        error_code=ErrorCode.NONE,
        protocol_type=group.protocol_type,
        protocol_name=group.protocol_name,
        assignment=assignment,
    )


def _store_assignment(
    shard: GroupCoordinatorShard, group: ClassicGroup, request: SyncGroupRequest
) -> None:
    """The leader's assignment: persist it, then answer every parked SyncGroup."""
    assignments = {a.member_id: bytes(a.assignment) for a in request.assignments}
    for member_id in group.members:
        assignments.setdefault(member_id, b"")  # SyncGroup must never answer without one
    generation = group.generation_id

    def stored(error: ErrorCode | None) -> None:
        if not group.is_in(S.COMPLETING_REBALANCE) or group.generation_id != generation:
            return  # another rebalance began meanwhile; its members were told already
        if error is not None:
            _reset_and_propagate_error(shard, group, store_error(error))
            _maybe_prepare_rebalance_or_complete_join(shard, group)
            return
        for member in group.members.values():
            member.assignment = assignments.get(member.member_id, b"")
        _propagate_assignment(shard, group, ErrorCode.NONE)
        group.transition(S.STABLE, shard.now)

    value = group.to_record_value(assignments)
    shard.write([rec.group_metadata(group.group_id, value)], replay=False, on_appended=stored)


def _propagate_assignment(
    shard: GroupCoordinatorShard, group: ClassicGroup, error: ErrorCode
) -> None:
    for member in group.members.values():
        if member.awaiting_sync is None:
            continue
        if error == ErrorCode.NONE:
            response = _sync_response(group, member.assignment)
        else:
            response = SyncGroupResponse(error_code=error)
        shard.reply(member.awaiting_sync, response)
        member.awaiting_sync = None
        reschedule_heartbeat(shard, group, member)


def _reset_and_propagate_error(
    shard: GroupCoordinatorShard, group: ClassicGroup, error: ErrorCode
) -> None:
    for member in group.members.values():
        member.assignment = b""
    _propagate_assignment(shard, group, error)


def _remove_pending_sync(shard: GroupCoordinatorShard, group: ClassicGroup, member_id: str) -> None:
    group.pending_sync.discard(member_id)
    if not group.pending_sync or not group.is_in(S.COMPLETING_REBALANCE, S.STABLE):
        shard.timers.cancel(_sync_key(group.group_id))


def store_error(error: ErrorCode) -> ErrorCode:
    """What a client is told when the group's record could not be appended (Kafka's mapping)."""
    if error in (
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.NOT_ENOUGH_REPLICAS,
        ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ErrorCode.REQUEST_TIMED_OUT,
    ):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if error in (ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.KAFKA_STORAGE_ERROR):
        return ErrorCode.NOT_COORDINATOR
    if error in (
        ErrorCode.MESSAGE_TOO_LARGE,
        ErrorCode.RECORD_LIST_TOO_LARGE,
        ErrorCode.INVALID_FETCH_SIZE,
    ):
        return ErrorCode.UNKNOWN_SERVER_ERROR
    return error


# ---------------------------------------------------------------------- Heartbeat


def heartbeat(shard: GroupCoordinatorShard, request: HeartbeatRequest, reply: Reply) -> None:
    group = shard.group_or_none(request.group_id)
    if group is None:
        shard.reply(reply, HeartbeatResponse(error_code=ErrorCode.UNKNOWN_MEMBER_ID))
        return
    try:
        member = group.validate_member(request.member_id, request.group_instance_id)
    except KafkaError as exc:
        shard.reply(reply, HeartbeatResponse(error_code=exc.code))
        return
    if request.generation_id != group.generation_id:
        shard.reply(reply, HeartbeatResponse(error_code=ErrorCode.ILLEGAL_GENERATION))
        return
    if group.is_in(S.EMPTY):
        shard.reply(reply, HeartbeatResponse(error_code=ErrorCode.UNKNOWN_MEMBER_ID))
        return
    reschedule_heartbeat(shard, group, member)
    code = ErrorCode.REBALANCE_IN_PROGRESS if group.is_in(S.PREPARING_REBALANCE) else ErrorCode.NONE
    shard.reply(reply, HeartbeatResponse(error_code=code))


def reschedule_heartbeat(
    shard: GroupCoordinatorShard,
    group: ClassicGroup,
    member: ClassicMember,
    timeout_ms: int | None = None,
) -> None:
    group_id, member_id = group.group_id, member.member_id
    timeout = member.session_timeout_ms if timeout_ms is None else timeout_ms
    shard.timers.schedule(
        _heartbeat_key(group_id, member_id),
        shard.now + timeout,
        lambda: expire_heartbeat(shard, group_id, member_id),
    )


def restart_sessions(shard: GroupCoordinatorShard) -> None:
    """After loading: members recorded in the log keep their place if they heartbeat within
    their session timeout from now (as after a coordinator failover in Kafka)."""
    for group in shard.groups.values():
        for member in group.members.values():
            reschedule_heartbeat(shard, group, member)


def expire_heartbeat(shard: GroupCoordinatorShard, group_id: str, member_id: str) -> None:
    group = shard.group_or_none(group_id)
    if group is None:
        return
    if member_id in group.pending_members:
        group.remove(member_id)
        if group.is_in(S.PREPARING_REBALANCE) and group.has_all_members_joined():
            complete_join(shard, group_id)
        return
    member = group.members.get(member_id)
    if member is None or member.has_satisfied_heartbeat():
        return
    log.info("group %s: member %s expired (no heartbeat in time)", group_id, member_id)
    _remove_member_and_update_group(shard, group, member_id)


def _drop_member(shard: GroupCoordinatorShard, group: ClassicGroup, member_id: str) -> None:
    """Remove a member, telling its parked requests (the client will rejoin if alive)."""
    member = group.remove(member_id)
    shard.timers.cancel(_heartbeat_key(group.group_id, member_id))
    if member is None:
        return
    if member.awaiting_join is not None:
        shard.reply(
            member.awaiting_join, _join_error(UNKNOWN_MEMBER_ID, ErrorCode.UNKNOWN_MEMBER_ID)
        )
        member.awaiting_join = None
    if member.awaiting_sync is not None:
        shard.reply(member.awaiting_sync, SyncGroupResponse(error_code=ErrorCode.UNKNOWN_MEMBER_ID))
        member.awaiting_sync = None


def _remove_member_and_update_group(
    shard: GroupCoordinatorShard, group: ClassicGroup, member_id: str
) -> None:
    _drop_member(shard, group, member_id)
    if group.is_in(S.STABLE, S.COMPLETING_REBALANCE):
        _maybe_prepare_rebalance_or_complete_join(shard, group)
    elif group.is_in(S.PREPARING_REBALANCE) and group.has_all_members_joined():
        complete_join(shard, group.group_id)


# ---------------------------------------------------------------------- LeaveGroup


def leave_group(
    shard: GroupCoordinatorShard, request: LeaveGroupRequest, version: int, reply: Reply
) -> None:
    identities = request.members if version >= 3 else [MemberIdentity(member_id=request.member_id)]
    group = shard.group_or_none(request.group_id)
    if group is None:
        shard.reply(reply, LeaveGroupResponse(error_code=ErrorCode.UNKNOWN_MEMBER_ID))
        return
    results = [_leave_one(shard, group, identity) for identity in identities]
    if any(r.error_code == ErrorCode.NONE for r in results):
        if group.is_in(S.STABLE, S.COMPLETING_REBALANCE):
            _maybe_prepare_rebalance_or_complete_join(shard, group)
        else:  # not a new group's first join phase: only its delay timer ends that one
            _maybe_complete_join_phase(shard, group)
    if version >= 3:
        shard.reply(reply, LeaveGroupResponse(error_code=ErrorCode.NONE, members=results))
    else:  # one member; its error is the request's
        shard.reply(reply, LeaveGroupResponse(error_code=results[0].error_code))


def _leave_one(
    shard: GroupCoordinatorShard, group: ClassicGroup, identity: MemberIdentity
) -> MemberResponse:
    result = MemberResponse(identity.member_id, identity.group_instance_id, ErrorCode.NONE)
    if identity.member_id == UNKNOWN_MEMBER_ID:
        # administrative removal of a static member by its instance id
        member_id = group.static_members.get(identity.group_instance_id or "")
        if identity.group_instance_id is None or member_id is None:
            result.error_code = ErrorCode.UNKNOWN_MEMBER_ID
        else:
            _drop_member(shard, group, member_id)
        return result
    if identity.member_id in group.pending_members:
        group.remove(identity.member_id)
        shard.timers.cancel(_heartbeat_key(group.group_id, identity.member_id))
        return result
    try:
        group.validate_member(identity.member_id, identity.group_instance_id)
    except KafkaError as exc:
        result.error_code = exc.code
        return result
    _drop_member(shard, group, identity.member_id)
    return result
