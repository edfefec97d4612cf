"""A hypothesis state machine: the classic group coordinator against simulated consumers.

Each client is a small state machine that behaves as a classic consumer does (the Java
client's `AbstractCoordinator`, librdkafka's cgrp): it joins, retries with the id it is given
(MEMBER_ID_REQUIRED), computes a range assignment when it is the leader, syncs, heartbeats,
commits, leaves, and crashes (stops sending anything). Time moves by varying amounts so that
session, rebalance, sync and retention deadlines fire; appends to the log fail now and then.

Invariants, after every step:

(a) in every generation the assignments delivered in SyncGroup answers are disjoint (keyed by
    instance id for static members: a restarted static member gets its old share back);
(b) every commit answered NONE stays visible to OffsetFetch until a later accepted commit of
    that partition replaces it or an explicit action (DeleteGroups, OffsetDelete, letting the
    group expire) removes it, and nothing else is visible;
(c) replaying the log into a fresh shard gives the live shard's committed offsets, and a live
    Stable group's members, generation, leader and assignments.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from kbroker.groups import classic_ops, offsets
from kbroker.groups.classic import GroupState
from kbroker.groups.coordinator import GroupConfig
from protocol.error_codes import ErrorCode
from protocol.messages.consumer_protocol_subscription import ConsumerProtocolSubscription
from protocol.messages.heartbeat_request import HeartbeatRequest
from protocol.messages.heartbeat_response import HeartbeatResponse
from protocol.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from protocol.messages.join_group_response import JoinGroupResponse
from protocol.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from protocol.messages.sync_group_request import SyncGroupRequest, SyncGroupRequestAssignment
from protocol.messages.sync_group_response import SyncGroupResponse
from tests.kbroker.groups.harness import (
    GROUP,
    Harness,
    Token,
    assignment,
    decode_assignment,
    subscription,
)

E = ErrorCode
TOPICS = {"t": 6, "u": 3}  # topic -> partitions
PARTITIONS = [(t, p) for t, n in TOPICS.items() for p in range(n)]
SESSION_MS = 10_000
REBALANCE_MS = 15_000
RETENTION_MS = 24 * 3600_000  # longer than any run: offsets expire only when abandoned
CHECK_MS = 600_000
CONFIG = GroupConfig(
    initial_rebalance_delay_ms=3_000,
    offsets_retention_ms=RETENTION_MS,
    offsets_retention_check_interval_ms=CHECK_MS,
)
APPEND_ERRORS = [E.NOT_LEADER_OR_FOLLOWER, E.REQUEST_TIMED_OUT, E.KAFKA_STORAGE_ERROR]


class Phase(enum.Enum):
    IDLE = "idle"  # not in a generation; joins when polled
    JOINING = "joining"  # a JoinGroup is in flight (maybe parked)
    SYNCING = "syncing"  # a SyncGroup is in flight (maybe parked)
    STABLE = "stable"  # has a generation and an assignment
    DEAD = "dead"  # crashed, or stopped on a fatal error


@dataclass
class Client:
    index: int
    version: int  # JoinGroup version
    instance_id: str | None
    topics: list[str]
    protocols: list[str]  # assignor names, most preferred first (all assign by range here)
    phase: Phase = Phase.IDLE
    member_id: str = ""
    generation: int = -1
    protocol: str = ""  # the group's, from the JoinGroup answer
    pending: Token | None = None
    owned: set[tuple[str, int]] = field(default_factory=set)

    @property
    def client_id(self) -> str:
        return f"c{self.index}"

    @property
    def owner(self) -> str:
        """Who owns an assignment: the instance for a static member, else the member id."""
        return self.instance_id if self.instance_id is not None else self.member_id

    def reset(self) -> None:
        """Forget the member id and generation (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION)."""
        self.member_id, self.generation, self.owned = "", -1, set()
        self.phase = Phase.IDLE


def range_assign(members: dict[str, list[str]]) -> dict[str, dict[str, list[int]]]:
    """The range assignor: per topic, sorted subscribers get contiguous shares."""
    plan: dict[str, dict[str, list[int]]] = {m: {} for m in members}
    for topic, count in TOPICS.items():
        subscribers = sorted(m for m, topics in members.items() if topic in topics)
        if not subscribers:
            continue
        share, extra = divmod(count, len(subscribers))
        start = 0
        for n, member in enumerate(subscribers):
            size = share + (1 if n < extra else 0)
            plan[member][topic] = list(range(start, start + size))
            start += size
    return plan


class GroupMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness(CONFIG)
        self.h.run(lambda: offsets.schedule_expiry(self.h.shard))
        self.clients: list[Client] = []
        self.expected: dict[tuple[str, int], int] = {}  # the model of committed offsets
        # (incarnation, generation) -> owner -> share; a deleted group's id starts again at
        # generation 1 (an empty group with no offsets is deleted by the expiry timer), so the
        # incarnation is the number of group tombstones appended before
        self.delivered: dict[tuple[int, int], dict[str, set[tuple[str, int]]]] = {}
        self.next_offset = 0
        self.reloaded = False  # the coordinator restarted (loaded its shard from the log)

    @initialize(
        delay=st.sampled_from([0, 3_000]),
        max_size=st.sampled_from([100, 100, 2]),  # 2: GROUP_MAX_SIZE_REACHED now and then
        specs=st.lists(
            st.tuples(
                st.sampled_from([3, 4, 5, 7, 8, 9]),
                st.booleans(),
                st.sampled_from([["t"], ["t", "u"]]),
                # every list has range: the group always has a common protocol
                st.sampled_from([["range"], ["range", "roundrobin"], ["roundrobin", "range"]]),
            ),
            min_size=2,
            max_size=4,
        ),
    )
    def make_clients(
        self, delay: int, max_size: int, specs: list[tuple[int, bool, list[str], list[str]]]
    ) -> None:
        self.h = Harness(replace(CONFIG, initial_rebalance_delay_ms=delay, max_size=max_size))
        self.h.run(lambda: offsets.schedule_expiry(self.h.shard))
        for index, (version, static, topics, protocols) in enumerate(specs):
            instance_id = f"i{index}" if static and version >= 5 else None
            self.clients.append(Client(index, version, instance_id, topics, protocols))

    # ------------------------------------------------------------------ client behaviour

    def _join(self, c: Client) -> None:
        c.pending = self.h.token(f"{c.client_id} join")
        c.phase = Phase.JOINING
        request = JoinGroupRequest(
            group_id=GROUP,
            session_timeout_ms=SESSION_MS,
            rebalance_timeout_ms=REBALANCE_MS,
            member_id=c.member_id,
            group_instance_id=c.instance_id,
            protocol_type="consumer",
            protocols=[JoinGroupRequestProtocol(p, subscription(*c.topics)) for p in c.protocols],
        )
        token = c.pending
        self.h.run(
            lambda: classic_ops.join_group(
                self.h.shard, request, c.version, c.client_id, "/10.0.0.1", token
            )
        )

    def _sync(self, c: Client, plan: dict[str, bytes]) -> None:
        c.pending = self.h.token(f"{c.client_id} sync")
        c.phase = Phase.SYNCING
        request = SyncGroupRequest(
            group_id=GROUP,
            generation_id=c.generation,
            member_id=c.member_id,
            group_instance_id=c.instance_id,
            protocol_type="consumer" if c.version >= 5 else None,
            protocol_name=c.protocol if c.version >= 5 else None,
            assignments=[SyncGroupRequestAssignment(m, a) for m, a in plan.items()],
        )
        token = c.pending
        self.h.run(lambda: classic_ops.sync_group(self.h.shard, request, token))

    def _on_error(self, c: Client, code: ErrorCode) -> None:
        """What a consumer does with a group error (the Java client's rules)."""
        event(f"error {code.name}")
        if code in (E.UNKNOWN_MEMBER_ID, E.ILLEGAL_GENERATION):
            c.reset()
        elif code in (E.FENCED_INSTANCE_ID, E.GROUP_MAX_SIZE_REACHED):
            c.reset()
            c.phase = Phase.DEAD  # fatal for the consumer
        elif code == E.INCONSISTENT_GROUP_PROTOCOL:
            # every client supports range, but members loaded from the log keep only the
            # protocol chosen for their generation (as in Kafka): a newcomer without it is
            # refused until they rejoin
            assert self.reloaded, "every client speaks consumer/range"
            c.reset()
            c.phase = Phase.DEAD
        else:  # REBALANCE_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, ...
            c.phase, c.owned = Phase.IDLE, set()

    def _on_join(self, c: Client, response: JoinGroupResponse) -> None:
        if response.error_code == E.MEMBER_ID_REQUIRED:
            assert c.version >= 4 and c.instance_id is None
            c.member_id = response.member_id
            self._join(c)
            return
        if response.error_code != E.NONE:
            self._on_error(c, ErrorCode(response.error_code))
            return
        c.member_id, c.generation = response.member_id, response.generation_id
        c.protocol = response.protocol_name or ""
        incarnation = self.h.deletions.get(GROUP, 0)
        if c.owner in self.delivered.get((incarnation, c.generation), {}):
            event("a static member rejoined its generation (no rebalance)")
        assert c.protocol in c.protocols, (c.protocol, c.protocols)
        plan: dict[str, bytes] = {}
        if response.leader == c.member_id and not response.skip_assignment:
            subscriptions = {}
            for member in response.members:
                version = int.from_bytes(member.metadata[:2], "big")
                decoded = ConsumerProtocolSubscription.decode(member.metadata[2:], version)
                subscriptions[member.member_id] = decoded.topics
            plan = {m: assignment(share) for m, share in range_assign(subscriptions).items()}
        self._sync(c, plan)

    def _on_sync(self, c: Client, response: SyncGroupResponse) -> None:
        if response.error_code != E.NONE:
            self._on_error(c, ErrorCode(response.error_code))
            return
        share = decode_assignment(response.assignment)
        incarnation = self.h.deletions.get(GROUP, 0)
        generation = self.delivered.setdefault((incarnation, c.generation), {})
        previous = generation.get(c.owner)
        assert previous is None or previous == share, (
            f"{c.owner} got {share} and {previous} in generation {c.generation}"
        )
        for owner, other in generation.items():
            assert owner == c.owner or not (other & share), (
                f"generation {c.generation}: {owner} and {c.owner} both own {other & share}"
            )
        generation[c.owner] = share
        c.owned, c.phase = share, Phase.STABLE
        event(f"synced: {len(generation)} owner(s) in the generation")

    def _poll(self, c: Client) -> bool:
        """Handle the answer to the client's request, if it came; True if it did."""
        if c.phase == Phase.DEAD:
            return False
        if c.phase == Phase.IDLE:
            self._join(c)
            return True
        if c.pending is None or self.h.reply(c.pending) is None:
            return False
        response, c.pending = self.h.reply(c.pending), None
        if isinstance(response, JoinGroupResponse):
            self._on_join(c, response)
        else:
            assert isinstance(response, SyncGroupResponse)
            self._on_sync(c, response)
        return True

    def _heartbeat(self, c: Client) -> None:
        token = self.h.token(f"{c.client_id} heartbeat")
        request = HeartbeatRequest(GROUP, c.generation, c.member_id, c.instance_id)
        self.h.run(lambda: classic_ops.heartbeat(self.h.shard, request, token))
        response = self.h.reply(token)
        assert isinstance(response, HeartbeatResponse)
        if response.error_code != E.NONE:
            self._on_error(c, ErrorCode(response.error_code))

    def _live(self) -> list[Client]:
        return [c for c in self.clients if c.phase != Phase.DEAD]

    # ------------------------------------------------------------------ rules

    @rule(data=st.data())
    def poll(self, data: st.DataObject) -> None:
        """One client handles its answer (or, idle, joins)."""
        live = self._live()
        if live:
            self._poll(data.draw(st.sampled_from(live)))

    @rule(ms=st.sampled_from([1, 500, 2_000, 3_000, 5_000, 9_999, 10_000, 15_000, 20_000]))
    def run_clients(self, ms: int) -> None:
        """Time passes while live clients heartbeat and handle answers promptly."""
        step = 1_000
        for _ in range(ms // step + 1):
            self.h.advance(min(step, ms))
            ms -= min(step, ms)
            for _ in range(20):  # each pass answers what the last one sent; 20 is plenty
                if not any([self._poll(c) for c in self._live()]):
                    break
            for c in self._live():
                if c.phase == Phase.STABLE:
                    self._heartbeat(c)
                if c.phase == Phase.STABLE and c.owned:  # auto-commit, as consumers do
                    self._commit(c, min(c.owned))
            if ms <= 0:
                break

    @rule()
    def settle(self) -> None:
        """Faults stop and the live clients run: within a bounded time they all hold the
        same generation and, between them, every partition of every topic they subscribe to."""
        for _ in range(12):
            self.run_clients(10_000)
            if self._settled():
                return
        raise AssertionError(f"no stable generation after 120 s: {self.clients}, {self.h.group()}")

    def _settled(self) -> bool:
        live = self._live()
        if any(c.phase != Phase.STABLE for c in live):
            return False
        if len({c.generation for c in live}) > 1:
            return False
        owned = [p for c in live for p in c.owned]
        wanted = {(t, p) for c in live for t in c.topics for p in range(TOPICS[t])}
        assert len(owned) == len(set(owned)), f"overlap in {live}"
        return set(owned) == wanted

    @rule(ms=st.sampled_from([1, 1_000, 3_000, 6_000, 10_000, 15_000, 30_000]))
    def silence(self, ms: int) -> None:
        """Time passes and nobody says anything (a long GC pause, a network cut)."""
        self.h.advance(ms)

    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        stable = [c for c in self._live() if c.phase == Phase.STABLE]
        if stable:
            self._heartbeat(data.draw(st.sampled_from(stable)))

    @rule(data=st.data(), any_partition=st.booleans())
    def commit(self, data: st.DataObject, any_partition: bool) -> None:
        """A member commits (an owned partition, or any: a stale or misbehaving client)."""
        members = [c for c in self._live() if c.phase == Phase.STABLE]
        members = members or [c for c in self._live() if c.member_id]
        if not members:
            return
        c = data.draw(st.sampled_from(members))
        choices = sorted(c.owned) if c.owned and not any_partition else PARTITIONS
        self._commit(c, data.draw(st.sampled_from(choices)))

    def _commit(self, c: Client, partition: tuple[str, int]) -> None:
        self.next_offset += 1
        results = self.h.commit(
            {partition: self.next_offset},
            member_id=c.member_id,
            generation=c.generation,
            instance_id=c.instance_id,
        )
        code = results[partition]
        event(f"member commit {code.name}")
        if code == E.NONE:
            self.expected[partition] = self.next_offset
        elif code in (E.UNKNOWN_MEMBER_ID, E.ILLEGAL_GENERATION, E.FENCED_INSTANCE_ID):
            self._on_error(c, code)

    @rule(partition=st.sampled_from(PARTITIONS))
    def admin_commit(self, partition: tuple[str, int]) -> None:
        """An admin client resets an offset (generation -1: only while the group is Empty)."""
        self.next_offset += 1
        code = self.h.commit({partition: self.next_offset})[partition]
        if code == E.NONE:
            self.expected[partition] = self.next_offset

    @rule(data=st.data(), version=st.sampled_from([1, 3, 5]))
    def leave(self, data: st.DataObject, version: int) -> None:
        members = [c for c in self._live() if c.member_id]
        if not members:
            return
        c = data.draw(st.sampled_from(members))
        token = self.h.token(f"{c.client_id} leave")
        identity = MemberIdentity(c.member_id, c.instance_id if version >= 3 else None)
        request = LeaveGroupRequest(GROUP, c.member_id, [identity])
        self.h.run(lambda: classic_ops.leave_group(self.h.shard, request, version, token))
        assert self.h.reply(token) is not None
        c.reset()  # a consumer that leaves forgets its id (it is closing or unsubscribing)
        c.pending = None

    @rule(data=st.data())
    def crash_or_restart(self, data: st.DataObject) -> None:
        """A client crashes (stops sending anything), or a crashed one starts again with no
        member id (a static one keeps its instance id)."""
        c = data.draw(st.sampled_from(self.clients))
        dead = c.phase == Phase.DEAD
        c.reset()
        c.pending = None
        if not dead:
            c.phase = Phase.DEAD

    @rule()
    def restart_coordinator(self) -> None:
        """The broker restarts: a fresh shard loads the log; parked requests are lost with
        their connections, and their clients retry (rejoining with the member id they have)."""
        shard = self.h.reload()
        self.h.shard = shard
        self.reloaded = True
        self.h.run(lambda: classic_ops.restart_sessions(shard))
        self.h.run(lambda: offsets.schedule_expiry(shard))
        for c in self._live():
            if c.phase in (Phase.JOINING, Phase.SYNCING):
                c.phase, c.pending = Phase.IDLE, None

    @rule(data=st.data())
    def lose_response(self, data: st.DataObject) -> None:
        """A client gives up on its JoinGroup or SyncGroup (request timeout, reconnect) and
        joins again with its member id; the coordinator may still answer the old request."""
        waiting = [c for c in self._live() if c.phase in (Phase.JOINING, Phase.SYNCING)]
        if waiting:
            c = data.draw(st.sampled_from(waiting))
            c.phase, c.pending = Phase.IDLE, None

    @rule(error=st.sampled_from(APPEND_ERRORS))
    def fail_next_append(self, error: ErrorCode) -> None:
        self.h.fail_appends[:] = [error]

    @rule(action=st.sampled_from(["delete group", "delete offset", "abandon"]), data=st.data())
    def admin(self, action: str, data: st.DataObject) -> None:
        if action == "delete group":
            if self.h.delete_group() == E.NONE:
                self.expected.clear()
        elif action == "delete offset":
            partition = data.draw(st.sampled_from(PARTITIONS))
            code, results = self.h.delete_offsets([partition])
            if code == E.NONE and results[partition] == E.NONE:
                self.expected.pop(partition, None)
        elif not self.h.fail_appends:
            self._abandon()

    def _abandon(self) -> None:
        """Everybody stops; the group empties, its offsets expire and the group goes."""
        for c in self.clients:
            c.reset()
            c.pending = None
            c.phase = Phase.DEAD
        self.h.advance(4 * REBALANCE_MS + 2 * RETENTION_MS + 2 * CHECK_MS)
        assert self.h.shard.group_or_none(GROUP) is None, self.h.shard.groups.get(GROUP)
        self.expected.clear()

    # ------------------------------------------------------------------ invariants

    @invariant()
    def accepted_commits_are_visible(self) -> None:
        assert self.h.committed() == self.expected

    @invariant()
    def the_log_replays_to_the_live_state(self) -> None:
        shard = self.h.reload()
        assert shard.offsets == self.h.shard.offsets
        live = self.h.shard.group_or_none(GROUP)
        if live is None or live.state != GroupState.STABLE:
            return
        loaded = shard.groups[GROUP]
        assert loaded.state == GroupState.STABLE
        assert (loaded.generation_id, loaded.leader_id) == (live.generation_id, live.leader_id)
        assert {m: x.assignment for m, x in loaded.members.items()} == {
            m: x.assignment for m, x in live.members.items()
        }
        assert loaded.static_members == live.static_members


GroupMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestGroupCoordinator = GroupMachine.TestCase
