"""The records of `__consumer_offsets`: Kafka's key and value schemas, so the topic is readable
by Kafka's own tools and a replicated cluster fails group state over with no new mechanism.

Key: int16 record type, then the key fields (type 0 and 1 are offset commits, 2 classic group
metadata, 3-8 KIP-848 consumer groups). Value: int16 version, then the value fields; a null
value is a tombstone (the offset or group is deleted). The declarations live in
`protocol/defs/data/*.kdef`; this module only pairs them with their type numbers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from protocol._codec import ApiMessage
from protocol.messages.consumer_group_current_member_assignment_key import (
    ConsumerGroupCurrentMemberAssignmentKey,
)
from protocol.messages.consumer_group_current_member_assignment_value import (
    ConsumerGroupCurrentMemberAssignmentValue,
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
from protocol.messages.consumer_group_target_assignment_member_value import (
    ConsumerGroupTargetAssignmentMemberValue,
)
from protocol.messages.consumer_group_target_assignment_metadata_key import (
    ConsumerGroupTargetAssignmentMetadataKey,
)
from protocol.messages.consumer_group_target_assignment_metadata_value import (
    ConsumerGroupTargetAssignmentMetadataValue,
)
from protocol.messages.group_metadata_key import GroupMetadataKey
from protocol.messages.group_metadata_value import GroupMetadataValue
from protocol.messages.offset_commit_key import OffsetCommitKey
from protocol.messages.offset_commit_value import OffsetCommitValue

_INT16 = struct.Struct(">h")

LEGACY_OFFSET_COMMIT = 0
OFFSET_COMMIT = 1
GROUP_METADATA = 2
CONSUMER_GROUP_METADATA = 3
CONSUMER_GROUP_MEMBER_METADATA = 5
CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA = 6
CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER = 7
CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT = 8

# record type -> (key class, value class, value version we write)
SCHEMAS: dict[int, tuple[type[ApiMessage], type[ApiMessage], int]] = {
    LEGACY_OFFSET_COMMIT: (OffsetCommitKey, OffsetCommitValue, 3),
    OFFSET_COMMIT: (OffsetCommitKey, OffsetCommitValue, 3),
    GROUP_METADATA: (GroupMetadataKey, GroupMetadataValue, 3),
    CONSUMER_GROUP_METADATA: (ConsumerGroupMetadataKey, ConsumerGroupMetadataValue, 0),
    CONSUMER_GROUP_MEMBER_METADATA: (
        ConsumerGroupMemberMetadataKey,
        ConsumerGroupMemberMetadataValue,
        0,
    ),
    CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA: (
        ConsumerGroupTargetAssignmentMetadataKey,
        ConsumerGroupTargetAssignmentMetadataValue,
        0,
    ),
    CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER: (
        ConsumerGroupTargetAssignmentMemberKey,
        ConsumerGroupTargetAssignmentMemberValue,
        0,
    ),
    CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT: (
        ConsumerGroupCurrentMemberAssignmentKey,
        ConsumerGroupCurrentMemberAssignmentValue,
        0,
    ),
}


class UnknownRecordType(ValueError):
    """A key whose type this broker does not know (a newer Kafka's record): skipped on load."""


@dataclass(slots=True)
class CoordinatorRecord:
    """One record of the coordinator's log: a typed key, and a value or None (tombstone)."""

    type: int
    key: Any
    value: Any | None

    def encode(self) -> tuple[bytes, bytes | None]:
        value_version = SCHEMAS[self.type][2]
        key = _INT16.pack(self.type) + bytes(self.key.encode(0))
        if self.value is None:
            return key, None
        version = value_version
        if self.type == OFFSET_COMMIT and self.value.expire_timestamp != -1:
            version = 1  # the only version that carries an explicit expiry (OffsetCommit v2-4)
        return key, _INT16.pack(version) + bytes(self.value.encode(version))


def decode(key: bytes, value: bytes | None) -> CoordinatorRecord:
    """Parse a record read back from the log; UnknownRecordType for types we do not know."""
    if len(key) < 2:
        raise ValueError("coordinator record key shorter than its type")
    (record_type,) = _INT16.unpack_from(key)
    schema = SCHEMAS.get(record_type)
    if schema is None:
        raise UnknownRecordType(f"record type {record_type}")
    key_cls, value_cls, _ = schema
    parsed_key = key_cls.decode(memoryview(key)[2:], 0)
    if value is None:
        return CoordinatorRecord(record_type, parsed_key, None)
    (version,) = _INT16.unpack_from(value)
    parsed_value = value_cls.decode(memoryview(value)[2:], version)
    return CoordinatorRecord(record_type, parsed_key, parsed_value)


def offset_commit(
    group: str, topic: str, partition: int, value: OffsetCommitValue | None
) -> CoordinatorRecord:
    return CoordinatorRecord(OFFSET_COMMIT, OffsetCommitKey(group, topic, partition), value)


def group_metadata(group: str, value: GroupMetadataValue | None) -> CoordinatorRecord:
    return CoordinatorRecord(GROUP_METADATA, GroupMetadataKey(group), value)
