"""Drive a `GroupCoordinatorShard` the way `kbroker/groups/runtime.py` does, with a fake clock.

The harness plays the runtime's part and nothing more: it appends a step's records (encoded, as
the runtime writes them, into an in-memory log) or fails the append with a chosen error, feeds
the follow-up effects back, collects replies per reply token, and fires timers in deadline
order as the fake clock moves. Every reply token must be answered at most once; a second answer
is a coordinator bug and fails the test at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kbroker.groups import classic_ops, group_admin, offsets
from kbroker.groups import records as rec
from kbroker.groups.classic import ClassicGroup
from kbroker.groups.coordinator import Effects, GroupConfig, GroupCoordinatorShard
from protocol._codec import ApiMessage
from protocol.error_codes import ErrorCode
from protocol.messages.consumer_protocol_assignment import ConsumerProtocolAssignment
from protocol.messages.consumer_protocol_assignment import TopicPartition as AssignedPartitions
from protocol.messages.consumer_protocol_subscription import ConsumerProtocolSubscription
from protocol.messages.group_metadata_value import GroupMetadataValue
from protocol.messages.heartbeat_request import HeartbeatRequest
from protocol.messages.heartbeat_response import HeartbeatResponse
from protocol.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from protocol.messages.join_group_response import JoinGroupResponse
from protocol.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from protocol.messages.leave_group_response import LeaveGroupResponse
from protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from protocol.messages.offset_commit_value import OffsetCommitValue
from protocol.messages.sync_group_request import SyncGroupRequest, SyncGroupRequestAssignment
from protocol.messages.sync_group_response import SyncGroupResponse

T = TypeVar("T")
START_MS = 1_700_000_000_000
GROUP = "g"
SESSION_MS = 10_000
REBALANCE_MS = 30_000
Protocols = list[tuple[str, bytes]]


def subscription(*topics: str, version: int = 1) -> bytes:
    """Consumer protocol metadata as clients send it: int16 version, then the body."""
    body = ConsumerProtocolSubscription(topics=list(topics)).encode(version)
    return version.to_bytes(2, "big") + body


def assignment(partitions: dict[str, list[int]], version: int = 1) -> bytes:
    body = ConsumerProtocolAssignment(
        assigned_partitions=[
            AssignedPartitions(t, sorted(ps)) for t, ps in sorted(partitions.items())
        ]
    ).encode(version)
    return version.to_bytes(2, "big") + body


def decode_assignment(data: bytes) -> set[tuple[str, int]]:
    if not data:
        return set()
    version = int.from_bytes(data[:2], "big")
    decoded = ConsumerProtocolAssignment.decode(memoryview(data)[2:], version)
    return {(tp.topic, p) for tp in decoded.assigned_partitions for p in tp.partitions}


RANGE: Protocols = [("range", subscription("t"))]


@dataclass(frozen=True)
class Marker:
    """A transaction marker in the harness's log (the runtime's control batch)."""

    offset: int
    producer_id: int
    commit: bool


@dataclass(frozen=True)
class Appended:
    """A record in the harness's log, with its offset and its batch's producer id."""

    offset: int
    producer_id: int
    key: bytes
    value: bytes | None


@dataclass(frozen=True, eq=False)
class Token:
    """A reply handle, as the runtime's future is one; identity is what matters."""

    label: str

    def __repr__(self) -> str:
        return f"<{self.label}>"


class Harness:
    def __init__(self, config: GroupConfig | None = None, start_ms: int = START_MS) -> None:
        self.config = config or GroupConfig()
        self.shard = GroupCoordinatorShard(0, self.config)
        self.now = start_ms
        self.log: list[tuple[bytes, bytes | None]] = []  # every record appended, encoded
        self.entries: list[Appended | Marker] = []  # the log with offsets, markers included
        self.next_offset = 0
        self.appends = 0  # batches appended
        self.deletions: dict[str, int] = {}  # group -> group tombstones appended
        self.fail_appends: list[ErrorCode] = []  # the next appends fail with these, in order
        self.replies: dict[Token, ApiMessage] = {}
        self._count = 0

    # ------------------------------------------------------------------ the runtime's part

    def drive(self, effects: Effects) -> None:
        pending: Effects | None = effects
        while pending:
            current, pending = pending, None
            if current.records or current.on_appended:
                error: ErrorCode | None = None
                base_offset = self.next_offset
                if current.records:
                    if self.fail_appends:
                        error = self.fail_appends.pop(0)
                    else:
                        self._append(current)
                pending = self.shard.appended(self.now, current, error, base_offset)
            for token, message in current.replies:
                assert isinstance(token, Token), f"reply to a foreign handle {token!r}"
                assert token not in self.replies, (
                    f"{token} answered twice: {self.replies[token]} then {message}"
                )
                self.replies[token] = message

    def _append(self, effects: Effects) -> None:
        encoded = [r.encode() for r in effects.records]
        self.log += encoded
        for key, value in encoded:
            self.entries.append(Appended(self.next_offset, effects.producer_id, key, value))
            self.next_offset += 1
        self.appends += 1
        for r in effects.records:
            if r.type == rec.GROUP_METADATA and r.value is None:
                self.deletions[r.key.group] = self.deletions.get(r.key.group, 0) + 1

    def marker(self, producer_id: int, commit: bool) -> None:
        """Append a transaction marker and tell the shard, as `Broker.write_txn_marker` does."""
        self.entries.append(Marker(self.next_offset, producer_id, commit))
        self.next_offset += 1
        shard = self.shard
        self.drive(
            shard.run(self.now, lambda: shard.replay_end_transaction_marker(producer_id, commit))
        )

    def run(self, action: Callable[[], T]) -> T:
        out: list[T] = []
        self.drive(self.shard.run(self.now, lambda: out.append(action())))
        return out[0]

    def advance(self, ms: int) -> None:
        """Move the clock by `ms`, firing each timer at its own deadline, in order."""
        target = self.now + ms
        while (deadline := self.shard.next_deadline()) is not None and deadline <= target:
            self.now = max(self.now, deadline)
            self.drive(self.shard.tick(self.now))
        self.now = target

    def advance_until_answered(self, *tokens: Token, limit_ms: int = 600_000) -> None:
        """Fire timers one deadline at a time until every token has its answer."""
        end = self.now + limit_ms
        while any(t not in self.replies for t in tokens):
            deadline = self.shard.next_deadline()
            assert deadline is not None and deadline <= end, f"{tokens} still parked"
            self.advance(max(deadline - self.now, 0))

    def token(self, label: str) -> Token:
        self._count += 1
        return Token(f"{label}#{self._count}")

    def reply(self, token: Token) -> Any:
        """The answer to `token`, or None while its request is parked."""
        return self.replies.get(token)

    # ------------------------------------------------------------------ requests

    def join(
        self,
        member_id: str = "",
        *,
        group: str = GROUP,
        version: int = 9,
        instance_id: str | None = None,
        protocols: Protocols | None = None,
        protocol_type: str = "consumer",
        session_ms: int = SESSION_MS,
        rebalance_ms: int = REBALANCE_MS,
        client_id: str = "client",
    ) -> Token:
        token = self.token(f"join {member_id or instance_id or 'new'}")
        request = JoinGroupRequest(
            group_id=group,
            session_timeout_ms=session_ms,
            rebalance_timeout_ms=rebalance_ms if version >= 1 else -1,
            member_id=member_id,
            group_instance_id=instance_id,
            protocol_type=protocol_type,
            protocols=[
                JoinGroupRequestProtocol(n, m)
                for n, m in (RANGE if protocols is None else protocols)
            ],
        )
        self.run(
            lambda: classic_ops.join_group(
                self.shard, request, version, client_id, "/127.0.0.1", token
            )
        )
        return token

    def join_new(self, **kwargs: Any) -> tuple[str, Token]:
        """A v4+ dynamic member's two JoinGroups: MEMBER_ID_REQUIRED, then with its id."""
        first = self.join(**kwargs)
        response = self.reply(first)
        assert isinstance(response, JoinGroupResponse)
        assert response.error_code == ErrorCode.MEMBER_ID_REQUIRED, response
        return response.member_id, self.join(response.member_id, **kwargs)

    def sync(
        self,
        member_id: str,
        generation: int,
        assignments: dict[str, bytes] | None = None,
        *,
        group: str = GROUP,
        instance_id: str | None = None,
        protocol_type: str | None = None,
        protocol_name: str | None = None,
    ) -> Token:
        token = self.token(f"sync {member_id}")
        request = SyncGroupRequest(
            group_id=group,
            generation_id=generation,
            member_id=member_id,
            group_instance_id=instance_id,
            protocol_type=protocol_type,
            protocol_name=protocol_name,
            assignments=[SyncGroupRequestAssignment(m, a) for m, a in (assignments or {}).items()],
        )
        self.run(lambda: classic_ops.sync_group(self.shard, request, token))
        return token

    def heartbeat(
        self,
        member_id: str,
        generation: int,
        *,
        group: str = GROUP,
        instance_id: str | None = None,
    ) -> ErrorCode:
        token = self.token(f"heartbeat {member_id}")
        request = HeartbeatRequest(group, generation, member_id, instance_id)
        self.run(lambda: classic_ops.heartbeat(self.shard, request, token))
        response = self.reply(token)
        assert isinstance(response, HeartbeatResponse)
        return ErrorCode(response.error_code)

    def leave(
        self,
        *members: MemberIdentity,
        group: str = GROUP,
        version: int = 5,
        member_id: str = "",
    ) -> LeaveGroupResponse:
        token = self.token("leave")
        request = LeaveGroupRequest(group, member_id, list(members))
        self.run(lambda: classic_ops.leave_group(self.shard, request, version, token))
        response = self.reply(token)
        assert isinstance(response, LeaveGroupResponse)
        return response

    def commit(
        self,
        partitions: dict[tuple[str, int], int],
        *,
        group: str = GROUP,
        member_id: str = "",
        generation: int = -1,
        instance_id: str | None = None,
        version: int = 9,
        metadata: str | None = "",
        retention_ms: int = -1,
    ) -> dict[tuple[str, int], ErrorCode]:
        topics: dict[str, list[OffsetCommitRequestPartition]] = {}
        for (topic, partition), offset in partitions.items():
            topics.setdefault(topic, []).append(
                OffsetCommitRequestPartition(partition, offset, committed_metadata=metadata)
            )
        request = OffsetCommitRequest(
            group_id=group,
            generation_id_or_member_epoch=generation,
            member_id=member_id,
            group_instance_id=instance_id,
            retention_time_ms=retention_ms,
            topics=[OffsetCommitRequestTopic(name=t, partitions=ps) for t, ps in topics.items()],
        )
        results: list[offsets.CommitResults] = []
        self.run(lambda: offsets.commit_offsets(self.shard, request, version, results.append))
        assert len(results) == 1, f"OffsetCommit answered {len(results)} times"
        return {(t, p): ErrorCode(code) for t, p, code in results[0]}

    def committed(self, group: str = GROUP) -> dict[tuple[str, int], int]:
        found = self.run(lambda: offsets.fetch_offsets(self.shard, group, None))
        return {(t, p): v.offset for t, p, v in found if v is not None}

    def fetch(
        self, partitions: list[tuple[str, int]], group: str = GROUP
    ) -> list[tuple[str, int, OffsetCommitValue | None]]:
        return self.run(lambda: offsets.fetch_offsets(self.shard, group, partitions))

    def delete_offsets(
        self, partitions: list[tuple[str, int]], group: str = GROUP
    ) -> tuple[ErrorCode, dict[tuple[str, int], ErrorCode]]:
        out: list[tuple[ErrorCode, list[tuple[str, int, ErrorCode]]]] = []
        self.run(
            lambda: offsets.delete_offsets(
                self.shard, group, partitions, lambda code, r: out.append((code, r))
            )
        )
        assert len(out) == 1
        code, results = out[0]
        return code, {(t, p): e for t, p, e in results}

    def delete_group(self, group: str = GROUP) -> ErrorCode:
        out: list[ErrorCode] = []
        self.run(lambda: group_admin.delete_group(self.shard, group, out.append))
        assert len(out) == 1, f"DeleteGroups answered {len(out)} times"
        return out[0]

    # ------------------------------------------------------------------ inspection

    def group(self, group: str = GROUP) -> ClassicGroup:
        found = self.shard.group_or_none(group)
        assert found is not None, f"no group {group}"
        return found

    def reload(self) -> GroupCoordinatorShard:
        """A fresh shard that replays the log, as the runtime does when the broker starts."""
        shard = GroupCoordinatorShard(0, self.config)
        shard.now = self.now
        for entry in self.entries:
            if isinstance(entry, Marker):
                shard.replay_end_transaction_marker(entry.producer_id, entry.commit)
                continue
            shard.replay(
                rec.decode(entry.key, entry.value),
                loading=True,
                offset=entry.offset,
                producer_id=entry.producer_id,
            )
        return shard

    def records(self) -> list[rec.CoordinatorRecord]:
        return [rec.decode(key, value) for key, value in self.log]

    def last_group_value(self) -> GroupMetadataValue:
        """The value of the last GroupMetadata record appended (not a tombstone)."""
        record = next(r for r in reversed(self.records()) if r.type == rec.GROUP_METADATA)
        assert isinstance(record.value, GroupMetadataValue), record
        return record.value


def joined(response: object) -> JoinGroupResponse:
    assert isinstance(response, JoinGroupResponse), f"expected a JoinGroup answer, got {response}"
    return response


def synced(response: object) -> SyncGroupResponse:
    assert isinstance(response, SyncGroupResponse), f"expected a SyncGroup answer, got {response}"
    return response
