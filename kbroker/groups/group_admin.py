"""DescribeGroups, ListGroups and DeleteGroups over one coordinator shard."""

from __future__ import annotations

from collections.abc import Callable

from kbroker.groups.classic import CONSUMER_PROTOCOL_TYPE, ClassicGroup, GroupState
from kbroker.groups.classic_ops import store_error
from kbroker.groups.consumer import CONSUMER_GROUP_TYPE, group_tombstones
from kbroker.groups.coordinator import GroupCoordinatorShard
from protocol.error_codes import ErrorCode
from protocol.messages.describe_groups_response import DescribedGroup, DescribedGroupMember

S = GroupState
CLASSIC_GROUP_TYPE = "classic"


def describe_group(shard: GroupCoordinatorShard, group_id: str, version: int) -> DescribedGroup:
    group = shard.group_or_none(group_id)
    if group is None:
        # v6+ says so; older versions describe an unknown group as Dead with no error. A KIP-848
        # group is not described here, as in Kafka (ConsumerGroupDescribe does; clients fall back)
        not_classic = group_id in shard.consumer_groups
        message = f"Group {group_id} {'is not a classic group' if not_classic else 'not found'}."
        return DescribedGroup(
            error_code=ErrorCode.GROUP_ID_NOT_FOUND if version >= 6 else ErrorCode.NONE,
            error_message=message if version >= 6 else None,
            group_id=group_id,
            group_state=S.DEAD.value,
        )
    return DescribedGroup(
        error_code=ErrorCode.NONE,
        group_id=group_id,
        group_state=group.state.value,
        protocol_type=group.protocol_type or "",
        # the protocol and the members' metadata are only settled once the group is Stable
        protocol_data=(group.protocol_name or "") if group.is_in(S.STABLE) else "",
        members=[_member(group, member_id) for member_id in group.members],
    )


def _member(group: ClassicGroup, member_id: str) -> DescribedGroupMember:
    member = group.members[member_id]
    stable = group.is_in(S.STABLE) and group.protocol_name is not None
    return DescribedGroupMember(
        member_id=member.member_id,
        group_instance_id=member.group_instance_id,
        client_id=member.client_id,
        client_host=member.client_host,
        member_metadata=member.metadata(group.protocol_name or "") if stable else b"",
        member_assignment=member.assignment if stable else b"",
    )


def list_groups(
    shard: GroupCoordinatorShard, states: set[str], types: set[str]
) -> list[tuple[str, str, str, str]]:
    """(group id, protocol type, state, type) of the groups matching the filters (Kafka
    compares states and types case-insensitively; an empty filter matches everything)."""
    found = []
    for group in shard.groups.values():
        if group.is_in(S.DEAD):
            continue
        if states and group.state.value.lower() not in states:
            continue
        if types and CLASSIC_GROUP_TYPE not in types:
            continue
        found.append((group.group_id, group.protocol_type or "", group.state.value, "classic"))
    for consumer in shard.consumer_groups.values():
        state = consumer.state.value
        if (states and state.lower() not in states) or (types and CONSUMER_GROUP_TYPE not in types):
            continue
        found.append((consumer.group_id, CONSUMER_PROTOCOL_TYPE, state, CONSUMER_GROUP_TYPE))
    return found


def delete_group(
    shard: GroupCoordinatorShard, group_id: str, done: Callable[[ErrorCode], None]
) -> None:
    """`done` gets the group's result once its tombstones are appended (or could not be)."""

    def appended(error: ErrorCode | None) -> None:
        done(ErrorCode.NONE if error is None else store_error(error))

    consumer = shard.consumer_groups.get(group_id)
    if consumer is not None:
        if not consumer.is_empty():
            done(ErrorCode.NON_EMPTY_GROUP)
            return
        offsets = shard.offset_tombstones(group_id)
        shard.write(offsets + group_tombstones(consumer), replay=True, on_appended=appended)
        return
    group = shard.group_or_none(group_id)
    if group is None:
        done(ErrorCode.GROUP_ID_NOT_FOUND)
    elif not group.is_in(S.EMPTY):
        done(ErrorCode.NON_EMPTY_GROUP)
    else:
        shard.delete_group(group, appended)
