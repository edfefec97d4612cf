"""A KIP-848 consumer group: its members, epochs and assignments, and the records that hold them.

Theory of operation (KIP-848; Kafka's `ConsumerGroup`, `ConsumerGroupMember`, `MemberState`).
The coordinator, not a member, assigns the partitions, and three epochs order the work:

- the *group epoch* grows whenever what the assignment depends on changes: a member joins,
  leaves or changes its subscription, or the metadata of a subscribed topic changes (created,
  deleted, partitions added: seen as a new hash of that metadata, as in KIP-1101);
- the *assignment epoch* is the group epoch the target assignment was last computed for; the
  group is Assigning while it lags behind the group epoch;
- a member's *member epoch* is the assignment epoch it has reconciled to. A member moves to a
  new epoch only once it no longer owns what it must give up, and a partition is given to its
  next owner only once its previous owner has released it (`owners`), so a partition is never
  owned by two members at once.

Group states are derived, not stored: Empty (no members), Assigning (group epoch ahead of the
assignment epoch), Reconciling (a member is not yet stable at the assignment epoch), Stable.
A deleted group is no longer in the shard (Dead). Member states are Kafka's `MemberState`:
Stable, UnrevokedPartitions (must revoke first, within its rebalance timeout) and
UnreleasedPartitions (at the new epoch, waiting for partitions other members still hold).

All of it lives in the ConsumerGroup* records of `__consumer_offsets` (types 3, 5, 6, 7, 8, with
Kafka's schemas) and changes only by replaying them (`replay`), so loading is replay. Members
and groups are treated as values: `consumer_ops` computes updated copies and writes records;
nothing here is mutated in place except by `replay`. Partition assignments carry, per
partition, the epoch at which the member got it (KIP-1251: a commit with an older member epoch
is still accepted for partitions the member held at that epoch).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from kbroker.groups import records as rec
from kbroker.groups.records import CoordinatorRecord
from kbroker.topics_naming import is_internal
from protocol.error_codes import ErrorCode, KafkaError
from protocol.messages import consumer_group_current_member_assignment_value as cur
from protocol.messages import consumer_group_target_assignment_member_value as tgt
from protocol.messages.consumer_group_current_member_assignment_key import (
    ConsumerGroupCurrentMemberAssignmentKey,
)
from protocol.messages.consumer_group_member_metadata_key import ConsumerGroupMemberMetadataKey
from protocol.messages.consumer_group_member_metadata_value import (
    ConsumerGroupMemberMetadataValue,
)
from protocol.messages.consumer_group_metadata_key import ConsumerGroupMetadataKey
from protocol.messages.consumer_group_metadata_value import ConsumerGroupMetadataValue
from protocol.messages.consumer_group_target_assignment_member_key import (
    ConsumerGroupTargetAssignmentMemberKey,
)
from protocol.messages.consumer_group_target_assignment_metadata_key import (
    ConsumerGroupTargetAssignmentMetadataKey,
)
from protocol.messages.consumer_group_target_assignment_metadata_value import (
    ConsumerGroupTargetAssignmentMetadataValue,
)

CONSUMER_GROUP_TYPE = "consumer"
LEAVE_GROUP_MEMBER_EPOCH = -1
LEAVE_GROUP_STATIC_MEMBER_EPOCH = -2

RECORD_TYPES = frozenset(
    {
        rec.CONSUMER_GROUP_METADATA,
        rec.CONSUMER_GROUP_MEMBER_METADATA,
        rec.CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA,
        rec.CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER,
        rec.CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT,
    }
)

Partitions = dict[uuid.UUID, frozenset[int]]  # a target: topic id -> partitions
Owned = dict[uuid.UUID, dict[int, int]]  # topic id -> partition -> epoch it was assigned at
TopicPartition = tuple[uuid.UUID, int]


class ConsumerGroupState(enum.Enum):
    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


class MemberState(enum.IntEnum):
    STABLE = 0
    UNREVOKED_PARTITIONS = 1
    UNRELEASED_PARTITIONS = 2
    UNKNOWN = 127  # a state written by a newer broker: the member is fenced on its next heartbeat

    @classmethod
    def from_value(cls, value: int) -> MemberState:
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


class TopicMeta(Protocol):
    """What the coordinator needs to know of a topic (the broker's `TopicInfo` fits)."""

    @property
    def name(self) -> str: ...
    @property
    def topic_id(self) -> uuid.UUID: ...
    @property
    def partitions(self) -> int: ...


@dataclass(frozen=True, slots=True)
class TopicMetadata:
    name: str
    topic_id: uuid.UUID
    partitions: int


TopicsView = Callable[[], Mapping[str, TopicMeta]]  # topic name -> metadata, now


# ---------------------------------------------------------------------- subscriptions


@functools.lru_cache(maxsize=256)
def compile_regex(regex: str) -> re.Pattern[str]:
    """Kafka resolves RE2/J-style patterns; Python's `re` with a full match is close enough for
    the usual subscriptions (`^orders\\..*`, `(^a.*)|(^b.*)`). INVALID_REGULAR_EXPRESSION else."""
    try:
        return re.compile(regex)
    except re.error as exc:
        raise KafkaError(
            ErrorCode.INVALID_REGULAR_EXPRESSION,
            f"SubscribedTopicRegex `{regex}` is not a valid regular expression: {exc}.",
        ) from None


def resolve_regex(regex: str, topic_names: Iterable[str]) -> set[str]:
    """The topics a subscription pattern names now; internal topics never match."""
    try:
        pattern = compile_regex(regex)
    except KafkaError:
        return set()
    return {n for n in topic_names if not is_internal(n) and pattern.fullmatch(n)}


def metadata_hash(names: Iterable[str], topics: Mapping[str, TopicMeta]) -> int:
    """A digest of the subscribed topics' metadata (id, partition count); 0 when none exist. A
    changed hash is how a created, deleted or grown topic reaches the assignment."""
    present = sorted(n for n in set(names) if n in topics)
    if not present:
        return 0
    digest = hashlib.blake2b(digest_size=8)
    for name in present:
        meta = topics[name]
        digest.update(f"{name}\0{meta.topic_id}\0{meta.partitions}\0".encode())
    return int.from_bytes(digest.digest(), "big", signed=True)


# ---------------------------------------------------------------------- members


@dataclass(slots=True)
class ConsumerMember:
    member_id: str
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: frozenset[str] = frozenset()
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    assigned: Owned = field(default_factory=dict)
    pending_revocation: Owned = field(default_factory=dict)

    @property
    def regex(self) -> str | None:
        """The subscription pattern, None when there is none (clients send "" for none)."""
        return self.subscribed_topic_regex or None

    def is_reconciled_to(self, epoch: int) -> bool:
        return self.state == MemberState.STABLE and self.member_epoch == epoch

    def subscribed_topics(self, topic_names: Iterable[str]) -> set[str]:
        names = set(self.subscribed_topic_names)
        if self.regex is not None:
            names |= resolve_regex(self.regex, topic_names)
        return names

    def assignment_epoch(self, topic_id: uuid.UUID, partition: int) -> int | None:
        """The epoch at which it got a partition it still owns (assigned or being revoked)."""
        epoch = self.assigned.get(topic_id, {}).get(partition)
        if epoch is None:
            epoch = self.pending_revocation.get(topic_id, {}).get(partition)
        return epoch

    def owned_partitions(self) -> Iterable[TopicPartition]:
        for owned in (self.assigned, self.pending_revocation):
            for topic_id, partitions in owned.items():
                for partition in partitions:
                    yield topic_id, partition

    # ------------------------------------------------------------------ records

    def metadata_value(self) -> ConsumerGroupMemberMetadataValue:
        return ConsumerGroupMemberMetadataValue(
            instance_id=self.instance_id,
            rack_id=self.rack_id,
            client_id=self.client_id,
            client_host=self.client_host,
            subscribed_topic_names=sorted(self.subscribed_topic_names),
            subscribed_topic_regex=self.subscribed_topic_regex,
            rebalance_timeout_ms=self.rebalance_timeout_ms,
            server_assignor=self.server_assignor,
        )

    def assignment_value(self) -> cur.ConsumerGroupCurrentMemberAssignmentValue:
        return cur.ConsumerGroupCurrentMemberAssignmentValue(
            member_epoch=self.member_epoch,
            previous_member_epoch=self.previous_member_epoch,
            state=int(self.state),
            assigned_partitions=_owned_to_record(self.assigned),
            partitions_pending_revocation=_owned_to_record(self.pending_revocation),
        )

    def with_metadata(self, value: ConsumerGroupMemberMetadataValue) -> ConsumerMember:
        return dataclasses.replace(
            self,
            instance_id=value.instance_id,
            rack_id=value.rack_id,
            client_id=value.client_id,
            client_host=value.client_host,
            subscribed_topic_names=frozenset(value.subscribed_topic_names),
            subscribed_topic_regex=value.subscribed_topic_regex,
            rebalance_timeout_ms=value.rebalance_timeout_ms,
            server_assignor=value.server_assignor,
        )

    def with_assignment(
        self, value: cur.ConsumerGroupCurrentMemberAssignmentValue
    ) -> ConsumerMember:
        default_epoch = max(value.member_epoch, 0)  # records written before KIP-1251
        return dataclasses.replace(
            self,
            member_epoch=value.member_epoch,
            previous_member_epoch=value.previous_member_epoch,
            state=MemberState.from_value(value.state),
            assigned=_owned_from_record(value.assigned_partitions, default_epoch),
            pending_revocation=_owned_from_record(
                value.partitions_pending_revocation, default_epoch
            ),
        )


def _owned_to_record(owned: Owned) -> list[cur.TopicPartitions]:
    result = []
    for topic_id, epochs in sorted(owned.items()):
        partitions = sorted(epochs)
        result.append(
            cur.TopicPartitions(
                topic_id=topic_id,
                partitions=partitions,
                assignment_epochs=[epochs[p] for p in partitions],
            )
        )
    return result


def _owned_from_record(topics: list[cur.TopicPartitions], default_epoch: int) -> Owned:
    owned: Owned = {}
    for t in topics:
        epochs = t.assignment_epochs
        if epochs is None or len(epochs) != len(t.partitions):
            epochs = [default_epoch] * len(t.partitions)
        owned[t.topic_id] = dict(zip(t.partitions, epochs, strict=True))
    return owned


def preferred_assignor(members: Iterable[ConsumerMember]) -> str | None:
    """The assignor most members ask for (Kafka's rule), None when none asks."""
    votes: dict[str, int] = {}
    for member in members:
        if member.server_assignor:
            votes[member.server_assignor] = votes.get(member.server_assignor, 0) + 1
    return max(votes, key=lambda name: votes[name]) if votes else None


def partitions_of(owned: Owned) -> Partitions:
    return {topic_id: frozenset(epochs) for topic_id, epochs in owned.items() if epochs}


# ---------------------------------------------------------------------- groups


@dataclass(slots=True)
class ConsumerGroup:
    group_id: str
    group_epoch: int = 1  # as Kafka: a member's first epoch is never 0, which means "join"
    metadata_hash: int = 0
    assignment_epoch: int = 0
    assignment_timestamp: int = 0
    members: dict[str, ConsumerMember] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    target: dict[str, Partitions] = field(default_factory=dict)  # member id -> its target
    owners: dict[TopicPartition, str] = field(default_factory=dict)  # who holds a partition now

    @property
    def state(self) -> ConsumerGroupState:
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch > self.assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        if any(not m.is_reconciled_to(self.assignment_epoch) for m in self.members.values()):
            return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    def is_empty(self) -> bool:
        return not self.members

    def member(self, member_id: str) -> ConsumerMember:
        member = self.members.get(member_id)
        if member is None:
            raise KafkaError(
                ErrorCode.UNKNOWN_MEMBER_ID,
                f"Member {member_id} is not a member of group {self.group_id}.",
            )
        return member

    def static_member(self, instance_id: str | None) -> ConsumerMember | None:
        member_id = self.static_members.get(instance_id) if instance_id is not None else None
        return self.members.get(member_id) if member_id is not None else None

    def target_of(self, member_id: str, instance_id: str | None = None) -> Partitions:
        """A member's target; a static member taking over its instance inherits the old one's."""
        if member_id in self.target:
            return self.target[member_id]
        previous = self.static_members.get(instance_id) if instance_id is not None else None
        return self.target.get(previous, {}) if previous is not None else {}

    def owner(self, topic_id: uuid.UUID, partition: int) -> str | None:
        return self.owners.get((topic_id, partition))

    def subscribed_topics(self, topic_names: Iterable[str]) -> set[str]:
        names = set(topic_names)
        subscribed: set[str] = set()
        for member in self.members.values():
            subscribed |= member.subscribed_topics(names)
        return subscribed

    # ------------------------------------------------------------------ offsets

    def commit_rejections(
        self,
        member_id: str,
        member_epoch: int,
        version: int,
        partitions: Iterable[tuple[str, int]],
        topic_ids: Mapping[str, uuid.UUID],
        transactional: bool = False,
        group_instance_id: str | None = None,
    ) -> dict[tuple[str, int], ErrorCode]:
        """Kafka's `ConsumerGroup.validateOffsetCommit`: raises for the whole request, or
        returns the partitions refused (a member epoch older than the partition's, KIP-1251).
        A TxnOffsetCommit (`transactional`) may name no member at all (its v0-2 cannot), and
        the OffsetCommit version rule does not apply to it."""
        if member_epoch < 0 and not self.members:
            return {}  # an admin client or a consumer outside the group: fine while empty
        if transactional and member_epoch == -1 and not member_id and group_instance_id is None:
            return {}
        member = self.member(member_id)
        if not transactional and version < 9:
            raise KafkaError(
                ErrorCode.UNSUPPORTED_VERSION,
                "OffsetCommit version 9 or above must be used by members using the consumer "
                "group protocol",
            )
        if member_epoch == member.member_epoch:
            return {}
        if member_epoch > member.member_epoch:
            raise KafkaError(
                ErrorCode.STALE_MEMBER_EPOCH,
                f"Received member epoch {member_epoch} is newer than current member epoch "
                f"{member.member_epoch}.",
            )
        refused = {}
        for topic, partition in partitions:
            topic_id = topic_ids.get(topic)
            held = None if topic_id is None else member.assignment_epoch(topic_id, partition)
            if held is None or member_epoch < held:
                refused[(topic, partition)] = ErrorCode.STALE_MEMBER_EPOCH
        return refused

    def validate_offset_fetch(self, member_id: str | None, member_epoch: int) -> None:
        if member_id is None and member_epoch < 0:
            return  # an admin client
        member = self.member(member_id or "")
        if member_epoch != member.member_epoch:
            raise KafkaError(
                ErrorCode.STALE_MEMBER_EPOCH,
                f"The received member epoch {member_epoch} does not match the expected member "
                f"epoch {member.member_epoch}.",
            )

    # ------------------------------------------------------------------ replay

    def replay_member_metadata(
        self, member_id: str, value: ConsumerGroupMemberMetadataValue | None
    ) -> None:
        if value is None:
            old = self.members.pop(member_id, None)
            if old is not None:
                self._release(old)
                if (
                    old.instance_id is not None
                    and self.static_members.get(old.instance_id) == member_id
                ):
                    del self.static_members[old.instance_id]
            return
        member = self.members.get(member_id) or ConsumerMember(member_id)
        self.members[member_id] = member.with_metadata(value)
        if value.instance_id is not None:
            self.static_members[value.instance_id] = member_id

    def replay_current_assignment(
        self, member_id: str, value: cur.ConsumerGroupCurrentMemberAssignmentValue | None
    ) -> None:
        old = self.members.get(member_id)
        if value is None:
            if old is not None:
                self._release(old)
                self.members[member_id] = dataclasses.replace(
                    old,
                    member_epoch=LEAVE_GROUP_MEMBER_EPOCH,
                    previous_member_epoch=LEAVE_GROUP_MEMBER_EPOCH,
                    assigned={},
                    pending_revocation={},
                )
            return
        if old is not None:
            self._release(old)
        member = (old or ConsumerMember(member_id)).with_assignment(value)
        self.members[member_id] = member
        for topic_partition in member.owned_partitions():
            holder = self.owners.setdefault(topic_partition, member_id)
            if holder != member_id:
                raise AssertionError(
                    f"group {self.group_id}: partition {topic_partition} given to {member_id} "
                    f"while {holder} still owns it"
                )

    def replay_target(
        self, member_id: str, value: tgt.ConsumerGroupTargetAssignmentMemberValue | None
    ) -> None:
        if value is None:
            self.target.pop(member_id, None)
        else:
            self.target[member_id] = {
                t.topic_id: frozenset(t.partitions) for t in value.topic_partitions if t.partitions
            }

    def _release(self, member: ConsumerMember) -> None:
        for topic_partition in member.owned_partitions():
            if self.owners.get(topic_partition) == member.member_id:
                del self.owners[topic_partition]


def replay(groups: dict[str, ConsumerGroup], record: CoordinatorRecord) -> None:
    """Apply one ConsumerGroup* record (Kafka's `GroupMetadataManager.replay` for them)."""
    key, value = record.key, record.value
    group = groups.get(key.group_id)
    if group is None:
        if value is None:
            return  # a tombstone for a group already gone
        group = groups[key.group_id] = ConsumerGroup(key.group_id)
    if record.type == rec.CONSUMER_GROUP_METADATA:
        if value is None:
            del groups[key.group_id]
        else:
            group.group_epoch, group.metadata_hash = value.epoch, value.metadata_hash
    elif record.type == rec.CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA:
        if value is None:
            group.assignment_epoch, group.assignment_timestamp = -1, 0
        else:
            group.assignment_epoch = value.assignment_epoch
            group.assignment_timestamp = value.assignment_timestamp
    elif record.type == rec.CONSUMER_GROUP_MEMBER_METADATA:
        group.replay_member_metadata(key.member_id, value)
    elif record.type == rec.CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER:
        group.replay_target(key.member_id, value)
    elif record.type == rec.CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT:
        group.replay_current_assignment(key.member_id, value)
    else:
        raise AssertionError(f"record type {record.type} is not a consumer group record")


# ---------------------------------------------------------------------- record builders


def epoch_record(group_id: str, epoch: int, hash_: int) -> CoordinatorRecord:
    return CoordinatorRecord(
        rec.CONSUMER_GROUP_METADATA,
        ConsumerGroupMetadataKey(group_id),
        ConsumerGroupMetadataValue(epoch=epoch, metadata_hash=hash_),
    )


def member_record(group_id: str, member: ConsumerMember) -> CoordinatorRecord:
    return CoordinatorRecord(
        rec.CONSUMER_GROUP_MEMBER_METADATA,
        ConsumerGroupMemberMetadataKey(group_id, member.member_id),
        member.metadata_value(),
    )


def assignment_record(group_id: str, member: ConsumerMember) -> CoordinatorRecord:
    return CoordinatorRecord(
        rec.CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT,
        ConsumerGroupCurrentMemberAssignmentKey(group_id, member.member_id),
        member.assignment_value(),
    )


def target_record(group_id: str, member_id: str, target: Partitions) -> CoordinatorRecord:
    value = tgt.ConsumerGroupTargetAssignmentMemberValue(
        topic_partitions=[
            tgt.TopicPartition(topic_id=t, partitions=sorted(ps))
            for t, ps in sorted(target.items())
            if ps
        ]
    )
    return CoordinatorRecord(
        rec.CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER,
        ConsumerGroupTargetAssignmentMemberKey(group_id, member_id),
        value,
    )


def target_epoch_record(group_id: str, epoch: int, now_ms: int) -> CoordinatorRecord:
    return CoordinatorRecord(
        rec.CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA,
        ConsumerGroupTargetAssignmentMetadataKey(group_id),
        ConsumerGroupTargetAssignmentMetadataValue(
            assignment_epoch=epoch, assignment_timestamp=now_ms
        ),
    )


def member_tombstones(group_id: str, member_id: str) -> list[CoordinatorRecord]:
    """Kafka's order: current assignment, target, then the member itself."""
    return [
        CoordinatorRecord(
            rec.CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT,
            ConsumerGroupCurrentMemberAssignmentKey(group_id, member_id),
            None,
        ),
        CoordinatorRecord(
            rec.CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER,
            ConsumerGroupTargetAssignmentMemberKey(group_id, member_id),
            None,
        ),
        CoordinatorRecord(
            rec.CONSUMER_GROUP_MEMBER_METADATA,
            ConsumerGroupMemberMetadataKey(group_id, member_id),
            None,
        ),
    ]


def group_tombstones(group: ConsumerGroup) -> list[CoordinatorRecord]:
    """Everything the group wrote, deleted (its offsets are the caller's business)."""
    records = []
    for member_id in group.members:
        records += member_tombstones(group.group_id, member_id)
    records.append(
        CoordinatorRecord(
            rec.CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA,
            ConsumerGroupTargetAssignmentMetadataKey(group.group_id),
            None,
        )
    )
    records.append(
        CoordinatorRecord(
            rec.CONSUMER_GROUP_METADATA, ConsumerGroupMetadataKey(group.group_id), None
        )
    )
    return records
