"""Drive a coordinator shard's KIP-848 consumer groups with a fake clock and well-behaved clients.

`Harness` runs operations on a shard the way the runtime does (append succeeds, records are
replayed, callbacks run) and keeps every appended record, so that a test can replay the log into
a fresh shard. `Client` behaves as a KIP-848 consumer: it owns exactly the partitions of the last
assignment it received (revoking what left it at once) and reports them on every heartbeat.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kbroker.groups import consumer_ops
from kbroker.groups.consumer import ConsumerGroup, TopicMetadata
from kbroker.groups.coordinator import Effects, GroupConfig, GroupCoordinatorShard
from kbroker.groups.records import CoordinatorRecord
from protocol._codec import ApiMessage
from protocol.error_codes import ErrorCode
from protocol.messages.consumer_group_heartbeat_request import (
    ConsumerGroupHeartbeatRequest,
    TopicPartitions,
)
from protocol.messages.consumer_group_heartbeat_response import ConsumerGroupHeartbeatResponse

GROUP = "g"
CONFIG = GroupConfig(consumer_session_timeout_ms=45_000, consumer_heartbeat_interval_ms=5000)


def topic(name: str, partitions: int) -> TopicMetadata:
    return TopicMetadata(name, uuid.uuid5(uuid.NAMESPACE_OID, name), partitions)


class Harness:
    def __init__(self, *topics: TopicMetadata, config: GroupConfig = CONFIG) -> None:
        self.topics = {t.name: t for t in topics}
        self.shard = GroupCoordinatorShard(0, config, lambda: self.topics)
        self.now = 1_000_000
        self.log: list[CoordinatorRecord] = []
        self.fail_appends: ErrorCode | None = None

    def run(self, action: Callable[[], None]) -> list[tuple[object, ApiMessage]]:
        return self.settle(self.shard.run(self.now, action))

    def settle(self, effects: Effects) -> list[tuple[object, ApiMessage]]:
        replies: list[tuple[object, ApiMessage]] = []
        pending: Effects | None = effects
        while pending:
            current, pending = pending, None
            if current.records or current.on_appended:
                error = self.fail_appends if current.records else None
                base_offset = len(self.log)
                if error is None:
                    self.log += current.records
                pending = self.shard.appended(self.now, current, error, base_offset)
            replies += current.replies
        return replies

    def tick(self, ms: int) -> None:
        self.now += ms
        assert not self.settle(self.shard.tick(self.now))

    def heartbeat(self, version: int = 1, **fields: Any) -> ConsumerGroupHeartbeatResponse:
        request = ConsumerGroupHeartbeatRequest(group_id=GROUP, **fields)
        replies = self.run(
            lambda: consumer_ops.heartbeat(
                self.shard, request, version, "client", "/127.0.0.1", "token"
            )
        )
        assert [to for to, _ in replies] == ["token"]
        response = replies[0][1]
        assert isinstance(response, ConsumerGroupHeartbeatResponse)
        return response

    @property
    def group(self) -> ConsumerGroup:
        return self.shard.consumer_groups[GROUP]

    def add_topic(self, t: TopicMetadata) -> None:
        self.topics[t.name] = t

    def client(self, member_id: str, *topics: str, **options: Any) -> Client:
        return Client(self, member_id, list(topics), **options)


@dataclass
class Client:
    harness: Harness
    member_id: str
    topics: list[str]
    regex: str | None = None
    instance_id: str | None = None
    rebalance_timeout_ms: int = 30_000
    assignor: str | None = None
    epoch: int = 0
    owned: dict[uuid.UUID, set[int]] = field(default_factory=dict)

    def join(self) -> ConsumerGroupHeartbeatResponse:
        self.epoch, self.owned = 0, {}
        response = self.harness.heartbeat(
            member_id=self.member_id,
            member_epoch=0,
            instance_id=self.instance_id,
            rebalance_timeout_ms=self.rebalance_timeout_ms,
            subscribed_topic_names=self.topics,
            subscribed_topic_regex=self.regex,
            server_assignor=self.assignor,
            topic_partitions=[],
        )
        return self._apply(response)

    def beat(self) -> ConsumerGroupHeartbeatResponse:
        if self.epoch == 0:  # fenced or never joined: a real client (re)joins
            return self.join()
        response = self.harness.heartbeat(
            member_id=self.member_id,
            member_epoch=self.epoch,
            instance_id=self.instance_id,
            topic_partitions=self.reported(),
        )
        return self._apply(response)

    def leave(self, epoch: int = -1) -> ConsumerGroupHeartbeatResponse:
        response = self.harness.heartbeat(
            member_id=self.member_id, member_epoch=epoch, instance_id=self.instance_id
        )
        assert response.error_code == ErrorCode.NONE, response
        self.owned = {}
        return response

    def reported(self) -> list[TopicPartitions]:
        return [TopicPartitions(t, sorted(ps)) for t, ps in sorted(self.owned.items()) if ps]

    def partitions(self) -> set[tuple[uuid.UUID, int]]:
        return {(t, p) for t, ps in self.owned.items() for p in ps}

    def _apply(self, response: ConsumerGroupHeartbeatResponse) -> ConsumerGroupHeartbeatResponse:
        if response.error_code in (ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.FENCED_MEMBER_EPOCH):
            self.epoch, self.owned = 0, {}  # a real client drops everything and rejoins
        if response.error_code != ErrorCode.NONE:
            return response
        self.epoch = response.member_epoch
        if response.assignment is not None:
            self.owned = {
                tp.topic_id: set(tp.partitions) for tp in response.assignment.topic_partitions
            }
        return response


def assert_exclusive(*clients: Client) -> None:
    """No partition is owned by two clients at once."""
    seen: dict[tuple[uuid.UUID, int], str] = {}
    for c in clients:
        for tp in c.partitions():
            assert tp not in seen, f"{tp} owned by {seen[tp]} and {c.member_id}"
            seen[tp] = c.member_id


def settle(*clients: Client, rounds: int = 4) -> None:
    """Heartbeat round-robin until the group has had time to converge."""
    for _ in range(rounds):
        for c in clients:
            c.beat()
            assert_exclusive(*clients)
