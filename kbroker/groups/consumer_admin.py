"""Where KIP-848 consumer groups meet other APIs: ConsumerGroupDescribe, OffsetFetch v9, and
a classic JoinGroup to a consumer group's id.

The group id space is shared: a classic JoinGroup to a consumer group with members is refused
with INCONSISTENT_GROUP_PROTOCOL, and an empty consumer group gives way to the classic group
(its offsets stay), both as Kafka does when online migration between the protocols is
disabled (kbroker does not implement the migration).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping

from kbroker.groups.consumer import (
    ConsumerGroup,
    ConsumerMember,
    group_tombstones,
    preferred_assignor,
)
from kbroker.groups.consumer_ops import consumer_group
from kbroker.groups.coordinator import GroupCoordinatorShard, Reply
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages import consumer_group_describe_response as desc
from protocol.messages.join_group_response import JoinGroupResponse


def before_classic_join(shard: GroupCoordinatorShard, group_id: str, reply: Reply) -> bool:
    """Whether a classic JoinGroup was answered here because the id is a consumer group's.

    A consumer group with members refuses (INCONSISTENT_GROUP_PROTOCOL); an empty one is deleted,
    its offsets kept, and the classic join goes on (both as Kafka without online migration)."""
    group = shard.consumer_groups.get(group_id)
    if group is None:
        return False
    if group.members:
        shard.reply(reply, JoinGroupResponse(error_code=ErrorCode.INCONSISTENT_GROUP_PROTOCOL))
        return True
    del shard.consumer_groups[group_id]
    shard.write(group_tombstones(group), replay=True)
    return False


def offset_fetch_error(
    shard: GroupCoordinatorShard, group_id: str, member_id: str | None, member_epoch: int
) -> ErrorCode:
    """OffsetFetch v9 by a member of a consumer group: it must be a member at its epoch."""
    group = shard.consumer_groups.get(group_id)
    if group is None:
        return ErrorCode.NONE
    try:
        group.validate_offset_fetch(member_id, member_epoch)
    except KafkaError as exc:
        return exc.code
    return ErrorCode.NONE


def describe(shard: GroupCoordinatorShard, group_id: str) -> desc.DescribedGroup:
    """ConsumerGroupDescribe of one group (Kafka's `ConsumerGroup.asDescribedGroup`)."""
    try:
        group = consumer_group(shard, group_id)
    except KafkaError as exc:
        return desc.DescribedGroup(
            error_code=exc.code, error_message=exc.message, group_id=group_id
        )
    names = {meta.topic_id: meta.name for meta in shard.topics().values()}
    return desc.DescribedGroup(
        group_id=group_id,
        group_state=group.state.value,
        group_epoch=group.group_epoch,
        assignment_epoch=group.assignment_epoch,
        assignor_name=preferred_assignor(group.members.values())
        or shard.config.consumer_assignors[0],
        members=[_described_member(group, m, names) for m in group.members.values()],
    )


def _described_member(
    group: ConsumerGroup, member: ConsumerMember, names: Mapping[uuid.UUID, str]
) -> desc.Member:
    # the member answers for partitions it is revoking until it has revoked them
    owned: dict[uuid.UUID, set[int]] = {}
    for topic_id, partition in member.owned_partitions():
        owned.setdefault(topic_id, set()).add(partition)
    return desc.Member(
        member_id=member.member_id,
        instance_id=member.instance_id,
        rack_id=member.rack_id,
        member_epoch=member.member_epoch,
        client_id=member.client_id,
        client_host=member.client_host,
        subscribed_topic_names=sorted(member.subscribed_topic_names),
        subscribed_topic_regex=member.subscribed_topic_regex,
        assignment=_described_assignment(owned, names),
        target_assignment=_described_assignment(group.target.get(member.member_id, {}), names),
        member_type=1,  # the consumer protocol (0 would be a classic member)
    )


def _described_assignment(
    partitions: Mapping[uuid.UUID, Iterable[int]], names: Mapping[uuid.UUID, str]
) -> desc.Assignment:
    return desc.Assignment(
        topic_partitions=[
            desc.TopicPartitions(topic_id=t, topic_name=names[t], partitions=sorted(ps))
            for t, ps in sorted(partitions.items())
            if t in names
        ]
    )
