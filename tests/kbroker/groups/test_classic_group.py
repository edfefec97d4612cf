"""The classic group coordinator, driven directly with a fake clock (no sockets, no sleeps).

Expected outcomes are Kafka's (`GroupMetadataManager`, `ClassicGroup` and their tests in
Apache Kafka's group-coordinator module), checked rule by rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from kbroker.groups import classic_ops, group_admin, offsets
from kbroker.groups import records as rec
from kbroker.groups.classic import GroupState
from kbroker.groups.coordinator import GroupConfig, GroupCoordinatorShard
from protocol.error_codes import ErrorCode
from protocol.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from protocol.messages.join_group_response import JoinGroupResponse
from protocol.messages.leave_group_request import MemberIdentity
from protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from protocol.messages.sync_group_request import SyncGroupRequest, SyncGroupRequestAssignment
from protocol.messages.sync_group_response import SyncGroupResponse
from tests.kbroker.groups.harness import (
    GROUP,
    RANGE,
    REBALANCE_MS,
    SESSION_MS,
    Harness,
    Token,
    assignment,
    joined,
    subscription,
    synced,
)

S = GroupState
E = ErrorCode
DELAY = GroupConfig().initial_rebalance_delay_ms


@dataclass
class Formed:
    members: list[str]  # in join order; members[0] is the leader
    generation: int

    @property
    def leader(self) -> str:
        return self.members[0]


def form(h: Harness, n: int = 2, group: str = GROUP, **join: object) -> Formed:
    """n dynamic members join (v4+ flow), the leader assigns, everybody syncs: Stable."""
    tokens: list[tuple[str, Token]] = [h.join_new(group=group, **join) for _ in range(n)]
    h.advance_until_answered(*(t for _, t in tokens))  # the initial delay, maybe extended
    responses = {member_id: joined(h.reply(t)) for member_id, t in tokens}
    assert all(r.error_code == E.NONE for r in responses.values()), responses
    leader = tokens[0][0]
    generation = responses[leader].generation_id
    assert {r.leader for r in responses.values()} == {leader}
    plan = {m: assignment({"t": [i]}) for i, m in enumerate(responses)}
    syncs = [h.sync(m, generation, plan if m == leader else None, group=group) for m in responses]
    assert all(synced(h.reply(t)).error_code == E.NONE for t in syncs)
    assert h.group(group).state == S.STABLE
    return Formed([m for m, _ in tokens], generation)


def keep_alive(h: Harness, member_id: str, generation: int, ms: int) -> list[ErrorCode]:
    """Advance `ms` while `member_id` heartbeats every half session; the codes it got."""
    codes = []
    step = SESSION_MS // 2
    while ms > 0:
        h.advance(min(step, ms))
        ms -= min(step, ms)
        codes.append(h.heartbeat(member_id, generation))
    return codes


# ---------------------------------------------------------------------- the effects contract


def test_effects_contract_nothing_is_answered_before_its_record_is_appended() -> None:
    """The shard's raw API, without the harness: records come out of a step, and the replies
    that depend on them come out of `appended` (so an answered SyncGroup or OffsetCommit is in
    the log); a failed append turns them into errors."""
    shard = GroupCoordinatorShard(0, GroupConfig(initial_rebalance_delay_ms=0))
    now = 1_000
    join = JoinGroupRequest(
        group_id="raw",
        session_timeout_ms=SESSION_MS,
        rebalance_timeout_ms=REBALANCE_MS,
        protocol_type="consumer",
        protocols=[JoinGroupRequestProtocol("range", RANGE[0][1])],
    )
    effects = shard.run(now, lambda: classic_ops.join_group(shard, join, 3, "c", "h", "j1"))
    assert not effects.records and not effects.replies  # parked for the (zero) delay
    effects = shard.tick(now)
    [(token, response)] = effects.replies
    assert token == "j1" and isinstance(response, JoinGroupResponse)
    member, generation = response.member_id, response.generation_id

    sync = SyncGroupRequest(
        group_id="raw",
        generation_id=generation,
        member_id=member,
        assignments=[SyncGroupRequestAssignment(member, b"mine")],
    )
    effects = shard.run(now, lambda: classic_ops.sync_group(shard, sync, "s1"))
    [record] = effects.records
    assert record.type == rec.GROUP_METADATA and not effects.replies
    assert effects.replay == [False]  # the group's state already reflects it
    follow = shard.appended(now, effects, None, 0)
    [(token, synced_response)] = follow.replies
    assert token == "s1" and isinstance(synced_response, SyncGroupResponse)
    assert (synced_response.error_code, synced_response.assignment) == (E.NONE, b"mine")

    commit = OffsetCommitRequest(
        group_id="raw",
        generation_id_or_member_epoch=generation,
        member_id=member,
        topics=[OffsetCommitRequestTopic("t", partitions=[OffsetCommitRequestPartition(0, 42)])],
    )
    answers: list[offsets.CommitResults] = []
    for error, expected in ((E.NOT_LEADER_OR_FOLLOWER, None), (None, 42)):
        effects = shard.run(now, lambda: offsets.commit_offsets(shard, commit, 8, answers.append))
        assert len(effects.records) == 1 and effects.replay == [True] and not answers
        assert "raw" not in shard.offsets  # visible only once appended
        shard.appended(now, effects, error, 1)
        code = E.NOT_COORDINATOR if error is not None else E.NONE
        assert answers.pop() == [("t", 0, code)]
        value = shard.offsets.get("raw", {}).get(("t", 0))
        assert (value.offset if value else None) == expected


# ---------------------------------------------------------------------- JoinGroup


def test_v4_join_requires_a_member_id_then_completes_after_the_initial_delay() -> None:
    h = Harness()
    first = h.join(client_id="app")
    response = joined(h.reply(first))
    assert response.error_code == E.MEMBER_ID_REQUIRED
    member_id = response.member_id
    assert member_id.startswith("app-")
    group = h.group()
    assert group.state == S.EMPTY and group.pending_members == {member_id}
    assert not group.members

    second = h.join(member_id)
    assert h.reply(second) is None  # parked for the initial rebalance delay
    assert h.group().state == S.PREPARING_REBALANCE and member_id in group.members
    h.advance(DELAY - 1)
    assert h.reply(second) is None
    h.advance(1)
    response = joined(h.reply(second))
    assert response.error_code == E.NONE
    assert (response.generation_id, response.leader, response.member_id) == (
        1,
        member_id,
        member_id,
    )
    assert response.protocol_type == "consumer" and response.protocol_name == "range"
    assert [(m.member_id, m.metadata) for m in response.members] == [(member_id, RANGE[0][1])]
    assert h.group().state == S.COMPLETING_REBALANCE


def test_pending_member_that_never_rejoins_is_dropped_after_its_session_timeout() -> None:
    h = Harness()
    response = joined(h.reply(h.join(session_ms=SESSION_MS)))
    member_id = response.member_id
    h.advance(SESSION_MS)
    assert not h.group().pending_members
    late = joined(h.reply(h.join(member_id)))
    assert late.error_code == E.UNKNOWN_MEMBER_ID


def test_pending_member_holds_a_rebalance_until_it_rejoins_or_expires() -> None:
    h = Harness()
    formed = form(h, 1)
    # a newcomer gets its id; the leader rejoins: the join phase waits for the newcomer
    newcomer = joined(h.reply(h.join())).member_id
    rejoin = h.join(formed.leader)
    assert h.group().state == S.PREPARING_REBALANCE
    assert h.reply(rejoin) is None
    h.advance(SESSION_MS)  # the newcomer never came back: it expires and the phase completes
    response = joined(h.reply(rejoin))
    assert response.error_code == E.NONE
    assert response.generation_id == formed.generation + 1
    assert [m.member_id for m in response.members] == [formed.leader]
    assert newcomer not in h.group().members


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_v0_to_v3_join_is_accepted_without_a_member_id_round_trip(version: int) -> None:
    h = Harness()
    token = h.join(version=version, session_ms=SESSION_MS)
    assert h.reply(token) is None  # accepted at once, parked in the initial rebalance
    h.advance(DELAY)
    response = joined(h.reply(token))
    assert response.error_code == E.NONE and response.generation_id == 1
    member = h.group().members[response.member_id]
    # v0 has no rebalance timeout: the session timeout serves as both
    expected = SESSION_MS if version == 0 else REBALANCE_MS
    assert member.rebalance_timeout_ms == expected


def test_initial_delay_is_extended_while_new_members_arrive() -> None:
    h = Harness()
    _, first = h.join_new(rebalance_ms=3 * DELAY)
    h.advance(DELAY - 1)
    _, second = h.join_new(rebalance_ms=3 * DELAY)
    h.advance(2)  # the first delay ended with a newcomer: extended by another delay
    assert h.reply(first) is None and h.reply(second) is None
    h.advance(DELAY // 2 + 1)
    assert h.reply(first) is None
    h.advance(DELAY // 2)  # 2 x DELAY + 1 after the first join
    assert joined(h.reply(first)).error_code == E.NONE
    assert joined(h.reply(second)).error_code == E.NONE
    assert len(joined(h.reply(first)).members) == 2


def test_initial_delay_never_extends_past_the_rebalance_timeout() -> None:
    h = Harness()
    rebalance = 2 * DELAY
    _, first = h.join_new(rebalance_ms=rebalance)
    _, second = h.join_new(rebalance_ms=rebalance)
    h.advance(DELAY + 1)
    _, third = h.join_new(rebalance_ms=rebalance)
    h.advance(DELAY - 2)  # one ms before the rebalance timeout
    assert all(h.reply(t) is None for t in (first, second, third))
    h.advance(1)
    assert all(joined(h.reply(t)).error_code == E.NONE for t in (first, second, third))


def test_rebalance_completes_as_soon_as_every_member_rejoined() -> None:
    h = Harness()
    formed = form(h, 3)
    tokens = [h.join(m) for m in formed.members]  # the leader's rejoin starts the rebalance
    responses = [joined(h.reply(t)) for t in tokens]
    assert all(r.error_code == E.NONE for r in responses)
    assert {r.generation_id for r in responses} == {formed.generation + 1}
    assert [len(r.members) for r in responses] == [3, 0, 0]  # only the leader learns them


def test_members_that_do_not_rejoin_are_removed_at_the_rebalance_timeout() -> None:
    h = Harness()
    formed = form(h, 3)
    leader_join = h.join(formed.leader)
    follower_join = h.join(formed.members[1])
    # members parked in a JoinGroup need no heartbeat; the third one heartbeats (its
    # application is busy: it does not rejoin) and is removed all the same
    codes = keep_alive(h, formed.members[2], formed.generation, REBALANCE_MS - 1)
    assert set(codes) == {E.REBALANCE_IN_PROGRESS}
    assert h.reply(leader_join) is None
    h.advance(1)
    response = joined(h.reply(leader_join))
    assert response.error_code == E.NONE
    assert {m.member_id for m in response.members} == set(formed.members[:2])
    assert joined(h.reply(follower_join)).error_code == E.NONE
    assert formed.members[2] not in h.group().members
    assert h.heartbeat(formed.members[2], formed.generation) == E.UNKNOWN_MEMBER_ID


def test_leader_that_does_not_rejoin_is_replaced_by_a_member_that_did() -> None:
    h = Harness()
    formed = form(h, 2)
    follower = formed.members[1]
    token = h.join(follower, protocols=[("range", subscription("t", "u"))])  # new metadata
    keep_alive(h, formed.leader, formed.generation, REBALANCE_MS - 1)  # busy, not rejoining
    assert h.reply(token) is None
    h.advance(1)
    response = joined(h.reply(token))
    assert response.error_code == E.NONE
    assert response.leader == follower
    assert [m.member_id for m in response.members] == [follower]
    assert h.group().leader_id == follower


def test_leader_leaving_hands_leadership_to_a_remaining_member() -> None:
    h = Harness()
    formed = form(h, 3)
    left = h.leave(MemberIdentity(formed.leader))
    assert left.members[0].error_code == E.NONE
    group = h.group()
    assert group.state == S.PREPARING_REBALANCE
    assert group.leader_id in formed.members[1:]
    tokens = [h.join(m) for m in formed.members[1:]]
    responses = [joined(h.reply(t)) for t in tokens]
    assert {r.leader for r in responses} == {group.leader_id}
    assert sum(1 for r in responses if r.members) == 1


@pytest.mark.parametrize(
    ("preferences", "chosen"),
    [
        ([["range", "roundrobin"], ["roundrobin", "range"], ["roundrobin", "range"]], "roundrobin"),
        ([["range", "roundrobin"], ["range", "roundrobin"], ["roundrobin", "range"]], "range"),
        # a protocol one member lacks cannot win, however many vote for it
        ([["sticky", "range"], ["sticky", "range"], ["range"]], "range"),
    ],
)
def test_protocol_is_chosen_by_vote_among_those_every_member_supports(
    preferences: list[list[str]], chosen: str
) -> None:
    h = Harness()
    tokens = [
        h.join_new(protocols=[(name, subscription("t")) for name in names])[1]
        for names in preferences
    ]
    h.advance_until_answered(*tokens)
    assert {joined(h.reply(t)).protocol_name for t in tokens} == {chosen}
    assert h.group().protocol_name == chosen


def test_inconsistent_group_protocol() -> None:
    h = Harness()
    form(h, 1)
    other_type = joined(h.reply(h.join(protocol_type="connect")))
    assert other_type.error_code == E.INCONSISTENT_GROUP_PROTOCOL
    no_common = joined(h.reply(h.join(protocols=[("roundrobin", b"")])))
    assert no_common.error_code == E.INCONSISTENT_GROUP_PROTOCOL
    # an empty group accepts anything but an empty protocol type or no protocols at all
    empty = Harness()
    assert joined(empty.reply(empty.join(protocols=[]))).error_code == (
        E.INCONSISTENT_GROUP_PROTOCOL
    )
    assert joined(empty.reply(empty.join(protocol_type=""))).error_code == (
        E.INCONSISTENT_GROUP_PROTOCOL
    )


@pytest.mark.parametrize("session_ms", [5_999, 1_800_001])
def test_invalid_session_timeout(session_ms: int) -> None:
    h = Harness()
    response = joined(h.reply(h.join(session_ms=session_ms)))
    assert response.error_code == E.INVALID_SESSION_TIMEOUT
    assert h.shard.group_or_none(GROUP) is None


def test_group_max_size_in_stable_and_during_a_rebalance() -> None:
    h = Harness(GroupConfig(max_size=2))
    formed = form(h, 2)
    refused = joined(h.reply(h.join()))
    assert refused.error_code == E.GROUP_MAX_SIZE_REACHED
    assert refused.member_id == ""
    assert not h.group().pending_members
    # during a rebalance the members already waiting count: a third v3 member is refused
    h.join(formed.leader)
    assert h.group().state == S.PREPARING_REBALANCE
    assert h.reply(h.join(formed.members[1])) is not None  # both rejoined: completed
    v3 = Harness(GroupConfig(max_size=2))
    tokens = [v3.join(version=3) for _ in range(3)]
    assert v3.reply(tokens[0]) is None and v3.reply(tokens[1]) is None
    assert joined(v3.reply(tokens[2])).error_code == E.GROUP_MAX_SIZE_REACHED
    assert len(v3.group().members) == 2


def test_rejoin_in_completing_rebalance_with_same_metadata_gets_the_current_generation() -> None:
    h = Harness()
    tokens = [h.join_new() for _ in range(2)]
    h.advance_until_answered(*(t for _, t in tokens))
    (leader, _), (follower, _) = tokens
    generation = h.group().generation_id
    assert h.group().state == S.COMPLETING_REBALANCE
    again = joined(h.reply(h.join(leader)))  # lost its JoinGroup response
    assert again.error_code == E.NONE and again.generation_id == generation
    assert {m.member_id for m in again.members} == {leader, follower}
    follower_again = joined(h.reply(h.join(follower)))
    assert follower_again.generation_id == generation and not follower_again.members
    assert h.group().state == S.COMPLETING_REBALANCE


def test_rejoin_in_completing_rebalance_with_new_metadata_starts_a_rebalance() -> None:
    h = Harness()
    tokens = [h.join_new() for _ in range(2)]
    h.advance_until_answered(*(t for _, t in tokens))
    (leader, _), (follower, _) = tokens
    generation = h.group().generation_id
    parked = h.sync(follower, generation)
    assert h.reply(parked) is None
    changed = h.join(follower, protocols=[("range", subscription("t", "u"))])
    # the parked SyncGroup learns about the rebalance
    assert synced(h.reply(parked)).error_code == E.REBALANCE_IN_PROGRESS
    assert h.group().state == S.PREPARING_REBALANCE
    assert h.reply(changed) is None
    leader_join = h.join(leader)
    assert joined(h.reply(leader_join)).generation_id == generation + 1
    assert joined(h.reply(changed)).generation_id == generation + 1


def test_follower_rejoining_a_stable_group_unchanged_causes_no_rebalance() -> None:
    h = Harness()
    formed = form(h, 2)
    follower = formed.members[1]
    response = joined(h.reply(h.join(follower)))
    assert response.error_code == E.NONE
    assert (response.generation_id, response.leader) == (formed.generation, formed.leader)
    assert not response.members
    assert h.group().state == S.STABLE
    again = synced(h.reply(h.sync(follower, formed.generation)))
    assert again.assignment == assignment({"t": [1]})
    # the leader rejoining does force a rebalance (its topics' metadata may have changed)
    assert h.reply(h.join(formed.leader)) is None
    assert h.group().state == S.PREPARING_REBALANCE


def test_join_with_a_member_id_to_an_unknown_group() -> None:
    h = Harness()
    response = joined(h.reply(h.join("someone-1")))
    assert response.error_code == E.UNKNOWN_MEMBER_ID
    assert h.shard.group_or_none(GROUP) is None


# ---------------------------------------------------------------------- SyncGroup


def test_followers_sync_is_parked_until_the_leader_sends_the_assignment() -> None:
    h = Harness()
    tokens = [h.join_new() for _ in range(3)]
    h.advance_until_answered(*(t for _, t in tokens))
    leader, second, third = (m for m, _ in tokens)
    generation = h.group().generation_id
    parked = [h.sync(second, generation), h.sync(third, generation)]
    assert all(h.reply(t) is None for t in parked)
    appends = h.appends
    # the leader leaves `third` out: it gets an empty assignment, not silence
    leader_sync = h.sync(
        leader, generation, {leader: assignment({"t": [0]}), second: assignment({"t": [1]})}
    )
    assert h.appends == appends + 1  # the group record was written before anybody heard
    results = [synced(h.reply(t)) for t in [leader_sync, *parked]]
    assert [r.error_code for r in results] == [E.NONE] * 3
    assert [r.assignment for r in results] == [
        assignment({"t": [0]}),
        assignment({"t": [1]}),
        b"",
    ]
    assert {(r.protocol_type, r.protocol_name) for r in results} == {("consumer", "range")}
    assert h.group().state == S.STABLE
    written = h.last_group_value()
    assert {m.member_id: m.assignment for m in written.members} == {
        leader: assignment({"t": [0]}),
        second: assignment({"t": [1]}),
        third: b"",
    }


def test_sync_errors() -> None:
    h = Harness()
    formed = form(h, 2)
    leader, generation = formed.leader, formed.generation
    assert synced(h.reply(h.sync("nobody", generation))).error_code == E.UNKNOWN_MEMBER_ID
    assert synced(h.reply(h.sync(leader, generation + 1))).error_code == E.ILLEGAL_GENERATION
    wrong_type = h.sync(leader, generation, protocol_type="connect")
    assert synced(h.reply(wrong_type)).error_code == E.INCONSISTENT_GROUP_PROTOCOL
    wrong_name = h.sync(leader, generation, protocol_type="consumer", protocol_name="sticky")
    assert synced(h.reply(wrong_name)).error_code == E.INCONSISTENT_GROUP_PROTOCOL
    right = h.sync(leader, generation, protocol_type="consumer", protocol_name="range")
    assert synced(h.reply(right)).error_code == E.NONE
    unknown_group = h.sync(leader, generation, group="other")
    assert synced(h.reply(unknown_group)).error_code == E.UNKNOWN_MEMBER_ID
    h.join(leader)  # a rebalance begins
    during = h.sync(formed.members[1], generation)
    assert synced(h.reply(during)).error_code == E.REBALANCE_IN_PROGRESS


def test_members_that_do_not_sync_in_time_are_removed_and_the_group_rebalances() -> None:
    h = Harness()
    rebalance_ms = SESSION_MS // 2  # the sync deadline comes before any session expires
    tokens = [h.join_new(rebalance_ms=rebalance_ms) for _ in range(3)]
    h.advance_until_answered(*(t for _, t in tokens))
    leader, second, third = (m for m, _ in tokens)
    generation = h.group().generation_id
    h.sync(leader, generation, {leader: b"a", second: b"b", third: b"c"})
    h.sync(second, generation)
    assert h.group().state == S.STABLE and h.group().pending_sync == {third}
    h.advance(rebalance_ms - 1)
    assert third in h.group().members
    h.advance(1)
    group = h.group()
    assert third not in group.members
    assert group.state == S.PREPARING_REBALANCE
    assert h.heartbeat(leader, generation) == E.REBALANCE_IN_PROGRESS


# ---------------------------------------------------------------------- Heartbeat


def test_session_expiry_removes_a_silent_member_and_rebalances() -> None:
    h = Harness()
    formed = form(h, 2)
    leader, follower = formed.members
    assert keep_alive(h, leader, formed.generation, SESSION_MS - 1) == [E.NONE, E.NONE]
    assert follower in h.group().members
    h.advance(1)  # the follower never heartbeat: its session is over
    group = h.group()
    assert follower not in group.members
    assert group.state == S.PREPARING_REBALANCE
    assert h.heartbeat(follower, formed.generation) == E.UNKNOWN_MEMBER_ID
    assert h.heartbeat(leader, formed.generation) == E.REBALANCE_IN_PROGRESS
    rejoin = joined(h.reply(h.join(leader)))
    assert rejoin.generation_id == formed.generation + 1
    assert [m.member_id for m in rejoin.members] == [leader]


def test_heartbeat_error_codes_by_state() -> None:
    h = Harness()
    assert h.heartbeat("x", 0) == E.UNKNOWN_MEMBER_ID  # no such group
    pending = joined(h.reply(h.join())).member_id
    assert h.heartbeat(pending, 0) == E.UNKNOWN_MEMBER_ID  # still pending: not a member
    h.join(pending)
    assert h.group().state == S.PREPARING_REBALANCE
    assert h.heartbeat(pending, 0) == E.REBALANCE_IN_PROGRESS
    h.advance(DELAY)
    assert h.group().state == S.COMPLETING_REBALANCE
    assert h.heartbeat(pending, 1) == E.NONE
    assert h.heartbeat(pending, 0) == E.ILLEGAL_GENERATION
    h.sync(pending, 1, {pending: b""})
    assert h.group().state == S.STABLE
    assert h.heartbeat(pending, 1) == E.NONE
    assert h.heartbeat(pending, 2) == E.ILLEGAL_GENERATION
    assert h.heartbeat("stranger", 1) == E.UNKNOWN_MEMBER_ID


# ---------------------------------------------------------------------- LeaveGroup


@pytest.mark.parametrize("version", [0, 1, 2])
def test_leave_group_v0_to_v2_names_one_member(version: int) -> None:
    h = Harness()
    formed = form(h, 2)
    response = h.leave(version=version, member_id=formed.members[1])
    assert response.error_code == E.NONE and not response.members
    assert formed.members[1] not in h.group().members
    assert h.group().state == S.PREPARING_REBALANCE
    unknown = h.leave(version=version, member_id="nobody")
    assert unknown.error_code == E.UNKNOWN_MEMBER_ID
    assert h.leave(version=version, member_id="x", group="other").error_code == (
        E.UNKNOWN_MEMBER_ID
    )


def test_leave_group_v3_batch_with_per_member_errors() -> None:
    h = Harness()
    formed = form(h, 2)
    static_token = h.join(instance_id="i-1")
    h.join(formed.leader)
    h.join(formed.members[1])
    static = joined(h.reply(static_token))
    assert static.error_code == E.NONE
    pending = joined(h.reply(h.join())).member_id
    response = h.leave(
        MemberIdentity(formed.members[1]),
        MemberIdentity("nobody"),
        MemberIdentity(formed.leader, "i-1"),  # the instance id belongs to somebody else
        MemberIdentity("", "i-1"),  # administrative removal by instance id
        MemberIdentity("", "i-unknown"),
        MemberIdentity(pending),
    )
    assert response.error_code == E.NONE
    assert [m.error_code for m in response.members] == [
        E.NONE,
        E.UNKNOWN_MEMBER_ID,
        E.FENCED_INSTANCE_ID,
        E.NONE,
        E.UNKNOWN_MEMBER_ID,
        E.NONE,
    ]
    group = h.group()
    assert set(group.members) == {formed.leader}
    assert not group.pending_members and not group.static_members
    assert group.state == S.PREPARING_REBALANCE


def test_a_member_leaving_during_the_initial_rebalance_does_not_cut_the_delay_short() -> None:
    # Kafka: LeaveGroup in PreparingRebalance tries to complete the join phase, except for a
    # new group's first one, which only its delay timer ends (more members may be coming).
    h = Harness()
    _, staying = h.join_new()
    leaving, _ = h.join_new()
    h.advance(DELAY // 2)
    assert h.leave(MemberIdentity(leaving)).members[0].error_code == E.NONE
    assert h.reply(staying) is None
    assert h.group().state == S.PREPARING_REBALANCE
    h.advance_until_answered(staying)
    response = joined(h.reply(staying))
    assert response.error_code == E.NONE and len(response.members) == 1


def test_a_group_whose_members_all_left_mid_rebalance_accepts_new_members() -> None:
    # Kafka's supportsProtocols counts, per protocol, the members supporting it against the
    # member count: with no member left, any protocol of the group's type is acceptable.
    h = Harness()
    _, first = h.join_new()
    pending = joined(h.reply(h.join())).member_id  # MEMBER_ID_REQUIRED: not a member yet
    assert h.leave(MemberIdentity(h.group().leader_id or "")).members[0].error_code == E.NONE
    group = h.group()
    assert group.state == S.PREPARING_REBALANCE and not group.members
    back = h.join(pending, protocols=[("roundrobin", subscription("t"))])
    assert h.reply(back) is None  # accepted and parked
    newcomer = h.join(version=3, protocols=[("roundrobin", subscription("t"))])
    assert h.reply(newcomer) is None
    h.advance_until_answered(back, newcomer)
    response = joined(h.reply(back))
    assert response.error_code == E.NONE and response.protocol_name == "roundrobin"
    assert len(response.members) == 2
    assert joined(h.reply(first)).error_code == E.UNKNOWN_MEMBER_ID  # it left: told so


# ---------------------------------------------------------------------- static membership


def form_static(h: Harness, instances: list[str], version: int = 9) -> Formed:
    tokens = [h.join(instance_id=i, version=version) for i in instances]
    h.advance_until_answered(*tokens)
    responses = [joined(h.reply(t)) for t in tokens]
    ids = [r.member_id for r in responses]
    generation = responses[0].generation_id
    leader = responses[0].leader
    plan = {m: assignment({"t": [n]}) for n, m in enumerate(ids)}
    for m in ids:
        h.sync(m, generation, plan if m == leader else None, instance_id=instances[ids.index(m)])
    assert h.group().state == S.STABLE
    assert leader == ids[0]
    return Formed(ids, generation)


def test_static_member_rejoining_a_stable_group_keeps_the_generation_and_fences_the_old_id() -> (
    None
):
    h = Harness()
    formed = form_static(h, ["i-0", "i-1"])
    old = formed.members[1]
    appends = h.appends
    response = joined(h.reply(h.join(instance_id="i-1")))  # a restart: no member id
    assert response.error_code == E.NONE
    new = response.member_id
    assert new != old and new.startswith("i-1-")
    assert response.generation_id == formed.generation
    assert response.leader == formed.leader and not response.skip_assignment
    assert h.group().state == S.STABLE  # no rebalance
    assert h.appends == appends + 1  # the new member id was persisted
    assert [m.member_id for m in h.last_group_value().members] == [formed.leader, new]
    # the old incarnation is fenced everywhere
    assert h.heartbeat(old, formed.generation, instance_id="i-1") == E.FENCED_INSTANCE_ID
    old_sync = h.sync(old, formed.generation, instance_id="i-1")
    assert synced(h.reply(old_sync)).error_code == E.FENCED_INSTANCE_ID
    old_join = h.join(old, instance_id="i-1")
    assert joined(h.reply(old_join)).error_code == E.FENCED_INSTANCE_ID
    # the new one keeps its assignment
    new_sync = synced(h.reply(h.sync(new, formed.generation, instance_id="i-1")))
    assert new_sync.assignment == assignment({"t": [1]})
    assert h.heartbeat(new, formed.generation, instance_id="i-1") == E.NONE


def test_static_leader_rejoining_at_v9_is_told_to_skip_the_assignment() -> None:
    h = Harness()
    formed = form_static(h, ["i-0", "i-1"])
    response = joined(h.reply(h.join(instance_id="i-0", version=9)))
    assert response.error_code == E.NONE
    assert response.skip_assignment
    assert response.leader == response.member_id != formed.leader
    assert {m.member_id for m in response.members} == {response.member_id, formed.members[1]}
    assert response.generation_id == formed.generation
    assert h.group().state == S.STABLE


@pytest.mark.parametrize("version", [5, 8])
def test_static_leader_rejoining_before_v9_is_named_by_its_old_id(version: int) -> None:
    h = Harness()
    formed = form_static(h, ["i-0", "i-1"], version=version)
    response = joined(h.reply(h.join(instance_id="i-0", version=version)))
    assert response.error_code == E.NONE
    # it must act as a follower: the leader named is its old id, not its new one
    assert response.leader == formed.leader != response.member_id
    assert not response.members and not response.skip_assignment
    assert h.group().leader_id == response.member_id
    again = synced(h.reply(h.sync(response.member_id, formed.generation, instance_id="i-0")))
    assert again.assignment == assignment({"t": [0]})


def test_static_member_replacing_a_parked_join_fences_the_old_request() -> None:
    h = Harness()
    formed = form_static(h, ["i-0", "i-1"])
    old = formed.members[1]
    # the old i-1 rejoins with new metadata: a rebalance, and its JoinGroup is parked
    old_join = h.join(old, instance_id="i-1", protocols=[("range", subscription("t", "u"))])
    assert h.reply(old_join) is None
    replacement = h.join(instance_id="i-1")  # i-1 restarted meanwhile
    assert joined(h.reply(old_join)).error_code == E.FENCED_INSTANCE_ID
    assert h.reply(replacement) is None
    parked = h.join(formed.leader, instance_id="i-0")  # everybody is in: the phase completes
    response = joined(h.reply(replacement))
    assert response.error_code == E.NONE
    assert response.generation_id == formed.generation + 1
    assert joined(h.reply(parked)).generation_id == formed.generation + 1


def test_static_member_rejoining_during_completing_rebalance_triggers_a_new_rebalance() -> None:
    h = Harness()
    formed = form_static(h, ["i-0", "i-1"])
    tokens = [h.join(m, instance_id=i) for m, i in zip(formed.members, ["i-0", "i-1"], strict=True)]
    assert all(joined(h.reply(t)).error_code == E.NONE for t in tokens)
    generation = h.group().generation_id
    assert h.group().state == S.COMPLETING_REBALANCE
    follower_sync = h.sync(formed.members[1], generation, instance_id="i-1")
    replacement = h.join(instance_id="i-0")
    assert h.group().state == S.PREPARING_REBALANCE
    assert synced(h.reply(follower_sync)).error_code == E.REBALANCE_IN_PROGRESS
    assert h.reply(replacement) is None


def test_static_member_with_a_new_protocol_choice_triggers_a_rebalance() -> None:
    h = Harness()
    both = [("range", subscription("t")), ("roundrobin", subscription("t"))]
    tokens = [h.join(instance_id=i, protocols=both) for i in ("i-0", "i-1")]
    h.advance_until_answered(*tokens)
    ids = [joined(h.reply(t)).member_id for t in tokens]
    generation = h.group().generation_id
    h.sync(ids[0], generation, {}, instance_id="i-0")
    h.sync(ids[1], generation, instance_id="i-1")
    assert h.group().state == S.STABLE
    # i-1 restarts preferring roundrobin: the vote ties, the group's choice may change
    roundrobin_only = [("roundrobin", subscription("t"))]
    token = h.join(instance_id="i-1", protocols=roundrobin_only)
    assert h.reply(token) is None
    assert h.group().state == S.PREPARING_REBALANCE


def test_failed_append_of_a_static_rejoin_reverts_to_the_old_member_id() -> None:
    h = Harness()
    formed = form_static(h, ["i-0", "i-1"])
    old = formed.members[1]
    h.fail_appends.append(E.REQUEST_TIMED_OUT)
    response = joined(h.reply(h.join(instance_id="i-1")))
    assert response.error_code == E.COORDINATOR_NOT_AVAILABLE
    assert response.member_id == ""
    group = h.group()
    assert group.static_members["i-1"] == old and old in group.members
    assert h.heartbeat(old, formed.generation, instance_id="i-1") == E.NONE
    assert group.state == S.STABLE


# ---------------------------------------------------------------------- failed appends


@pytest.mark.parametrize(
    ("append_error", "told"),
    [
        (E.NOT_LEADER_OR_FOLLOWER, E.NOT_COORDINATOR),
        (E.NOT_ENOUGH_REPLICAS, E.COORDINATOR_NOT_AVAILABLE),
        (E.MESSAGE_TOO_LARGE, E.UNKNOWN_SERVER_ERROR),
        (E.KAFKA_STORAGE_ERROR, E.NOT_COORDINATOR),
    ],
)
def test_failed_append_of_the_assignment_fails_every_sync_and_rebalances(
    append_error: ErrorCode, told: ErrorCode
) -> None:
    h = Harness()
    tokens = [h.join_new() for _ in range(2)]
    h.advance_until_answered(*(t for _, t in tokens))
    leader, follower = (m for m, _ in tokens)
    generation = h.group().generation_id
    follower_sync = h.sync(follower, generation)
    h.fail_appends.append(append_error)
    leader_sync = h.sync(leader, generation, {leader: b"a", follower: b"b"})
    assert synced(h.reply(leader_sync)).error_code == told
    assert synced(h.reply(follower_sync)).error_code == told
    group = h.group()
    assert group.state == S.PREPARING_REBALANCE
    assert all(m.assignment == b"" for m in group.members.values())
    rejoins = [h.join(m) for m in (leader, follower)]
    assert {joined(h.reply(t)).generation_id for t in rejoins} == {generation + 1}


# ---------------------------------------------------------------------- OffsetCommit


def test_simple_consumer_commits_with_generation_minus_one_to_a_new_or_empty_group() -> None:
    h = Harness()
    assert h.commit({("t", 0): 5, ("t", 1): 7}) == {("t", 0): E.NONE, ("t", 1): E.NONE}
    assert h.committed() == {("t", 0): 5, ("t", 1): 7}
    group = h.group()
    assert group.state == S.EMPTY and group.protocol_type is None
    # the commit is an OffsetCommit record in the log, visible once appended
    written = h.records()
    assert [
        (r.type, r.key.topic, r.key.partition, r.value and r.value.offset) for r in written
    ] == [
        (rec.OFFSET_COMMIT, "t", 0, 5),
        (rec.OFFSET_COMMIT, "t", 1, 7),
    ]
    # an admin client sending a member id with generation -1 is fine too while Empty
    assert h.commit({("t", 0): 6}, member_id="whoever") == {("t", 0): E.NONE}
    assert h.committed()[("t", 0)] == 6


def test_member_commits_with_its_generation() -> None:
    h = Harness()
    formed = form(h, 2)
    leader, follower = formed.members
    ok = h.commit({("t", 0): 10}, member_id=leader, generation=formed.generation)
    assert ok == {("t", 0): E.NONE}
    stale = h.commit({("t", 0): 11}, member_id=leader, generation=formed.generation - 1)
    assert stale == {("t", 0): E.ILLEGAL_GENERATION}
    stranger = h.commit({("t", 0): 12}, member_id="x", generation=formed.generation)
    assert stranger == {("t", 0): E.UNKNOWN_MEMBER_ID}
    simple = h.commit({("t", 0): 13})  # generation -1 while the group has members
    assert simple == {("t", 0): E.UNKNOWN_MEMBER_ID}
    assert h.committed() == {("t", 0): 10}
    # PreparingRebalance: the current generation may still commit (before it rejoins)
    h.join(leader)
    assert h.group().state == S.PREPARING_REBALANCE
    during = h.commit({("t", 1): 20}, member_id=follower, generation=formed.generation)
    assert during == {("t", 1): E.NONE}


def test_commit_during_completing_rebalance_is_refused_with_rebalance_in_progress() -> None:
    h = Harness()
    formed = form(h, 2)
    for m in formed.members:
        h.join(m)
    group = h.group()
    assert group.state == S.COMPLETING_REBALANCE
    refused = h.commit({("t", 0): 1}, member_id=formed.leader, generation=group.generation_id)
    assert refused == {("t", 0): E.REBALANCE_IN_PROGRESS}
    assert h.committed() == {}


def test_commit_to_an_unknown_group_with_a_generation() -> None:
    h = Harness()
    old = h.commit({("t", 0): 1}, member_id="m", generation=3, version=8)
    assert old == {("t", 0): E.ILLEGAL_GENERATION}
    new = h.commit({("t", 0): 1}, member_id="m", generation=3, version=9)
    assert new == {("t", 0): E.GROUP_ID_NOT_FOUND}
    assert h.shard.group_or_none(GROUP) is None


def test_offset_metadata_too_large_fails_only_its_partition() -> None:
    h = Harness(GroupConfig(offset_metadata_max_bytes=10))
    results = h.commit({("t", 0): 1}, metadata="x" * 11)
    assert results == {("t", 0): E.OFFSET_METADATA_TOO_LARGE}
    assert h.commit({("t", 1): 2}, metadata="x" * 10) == {("t", 1): E.NONE}
    [(_, _, value)] = h.fetch([("t", 1)])
    assert value is not None and value.metadata == "x" * 10
    assert h.committed() == {("t", 1): 2}


def test_offset_metadata_size_counts_characters_as_kafka_does() -> None:
    # Kafka compares String.length() (UTF-16 code units) with offset.metadata.max.bytes
    h = Harness(GroupConfig(offset_metadata_max_bytes=10))
    assert h.commit({("t", 0): 1}, metadata="é" * 10) == {("t", 0): E.NONE}  # 20 UTF-8 bytes
    assert h.commit({("t", 1): 1}, metadata="é" * 11) == {("t", 1): E.OFFSET_METADATA_TOO_LARGE}
    # a character outside the BMP is two UTF-16 code units
    assert h.commit({("t", 2): 1}, metadata="\U0001f600" * 5) == {("t", 2): E.NONE}
    six = h.commit({("t", 3): 1}, metadata="\U0001f600" * 6)
    assert six == {("t", 3): E.OFFSET_METADATA_TOO_LARGE}


def test_a_commit_keeps_the_member_alive_as_a_heartbeat_does() -> None:
    h = Harness()
    formed = form(h, 1)
    for _ in range(4):
        h.advance(SESSION_MS - 1)
        done = h.commit({("t", 0): 1}, member_id=formed.leader, generation=formed.generation)
        assert done == {("t", 0): E.NONE}
    assert h.group().state == S.STABLE


def test_failed_append_of_a_commit_reports_the_error_and_commits_nothing() -> None:
    h = Harness()
    h.commit({("t", 0): 1})
    h.fail_appends.append(E.NOT_LEADER_OR_FOLLOWER)
    assert h.commit({("t", 0): 2, ("t", 1): 2}) == {
        ("t", 0): E.NOT_COORDINATOR,
        ("t", 1): E.NOT_COORDINATOR,
    }
    assert h.committed() == {("t", 0): 1}


# ---------------------------------------------------------------------- OffsetFetch


def test_offset_fetch_of_named_partitions_and_of_all() -> None:
    h = Harness()
    h.commit({("t", 1): 11, ("t", 0): 10, ("u", 0): 3})
    found = h.fetch([("t", 0), ("t", 9), ("v", 0)])
    assert [(t, p, v.offset if v else None) for t, p, v in found] == [
        ("t", 0, 10),
        ("t", 9, None),
        ("v", 0, None),
    ]
    assert h.committed() == {("t", 0): 10, ("t", 1): 11, ("u", 0): 3}
    assert h.fetch([("t", 0)], group="other") == [("t", 0, None)]


# ---------------------------------------------------------------------- OffsetDelete


def test_offset_delete_of_an_empty_group() -> None:
    h = Harness()
    h.commit({("t", 0): 1, ("t", 1): 2})
    code, results = h.delete_offsets([("t", 0), ("t", 5)])
    assert code == E.NONE and results == {("t", 0): E.NONE, ("t", 5): E.NONE}
    assert h.committed() == {("t", 1): 2}
    last = h.records()[-1]
    assert (last.key.topic, last.key.partition, last.value) == ("t", 0, None)
    assert h.delete_offsets([("t", 0)], group="unknown") == (E.GROUP_ID_NOT_FOUND, {})


def test_offset_delete_refuses_topics_an_active_consumer_group_subscribes_to() -> None:
    h = Harness()
    formed = form(h, 1, protocols=[("range", subscription("t", "u"))])
    h.commit({("t", 0): 1, ("x", 0): 2}, member_id=formed.leader, generation=formed.generation)
    code, results = h.delete_offsets([("t", 0), ("x", 0)])
    assert code == E.NONE
    assert results == {("t", 0): E.GROUP_SUBSCRIBED_TO_TOPIC, ("x", 0): E.NONE}
    assert h.committed() == {("t", 0): 1}


def test_offset_delete_of_an_active_group_of_another_protocol_type() -> None:
    h = Harness()
    token = h.join(version=3, protocol_type="connect", protocols=[("v1", b"\x00")])
    h.advance_until_answered(token)
    member = joined(h.reply(token)).member_id
    h.sync(member, 1, {member: b""})
    h.commit({("t", 0): 1}, member_id=member, generation=1)
    assert h.delete_offsets([("t", 0)]) == (E.NON_EMPTY_GROUP, {})
    assert h.committed() == {("t", 0): 1}


# ---------------------------------------------------------------------- expiry and deletion

RETENTION_MS = 60_000
CHECK_MS = 1_000


def expiring() -> Harness:
    h = Harness(
        GroupConfig(offsets_retention_ms=RETENTION_MS, offsets_retention_check_interval_ms=CHECK_MS)
    )
    h.run(lambda: offsets.schedule_expiry(h.shard))
    return h


def test_offsets_of_an_empty_group_expire_after_retention_counted_from_when_it_emptied() -> None:
    h = expiring()
    formed = form(h, 1)
    h.commit({("t", 0): 1}, member_id=formed.leader, generation=formed.generation)
    # a Stable group's offsets do not expire, however old
    keep_alive(h, formed.leader, formed.generation, 2 * RETENTION_MS)
    assert h.committed() == {("t", 0): 1}
    h.leave(MemberIdentity(formed.leader))
    assert h.group().state == S.EMPTY
    h.advance(RETENTION_MS - CHECK_MS)
    assert h.committed() == {("t", 0): 1}
    h.advance(2 * CHECK_MS)
    assert h.committed() == {}
    assert h.shard.group_or_none(GROUP) is None  # nothing left: the group went too
    assert h.records()[-1].type == rec.GROUP_METADATA and h.records()[-1].value is None


def test_simple_consumer_offsets_expire_from_their_commit_time() -> None:
    h = expiring()
    h.commit({("t", 0): 1})
    h.advance(RETENTION_MS // 2)
    h.commit({("t", 1): 2})
    h.advance(RETENTION_MS // 2 + CHECK_MS)
    assert h.committed() == {("t", 1): 2}
    h.advance(RETENTION_MS // 2)
    assert h.committed() == {}
    assert h.shard.group_or_none(GROUP) is None


def test_explicit_retention_of_offset_commit_v2_to_v4_wins() -> None:
    h = expiring()
    h.commit({("t", 0): 1}, version=2, retention_ms=5 * CHECK_MS)
    h.commit({("t", 1): 1}, version=5)
    h.advance(6 * CHECK_MS)
    assert h.committed() == {("t", 1): 1}
    # the expiry time survives a reload: version 1 of the value carries it
    reloaded = h.reload()
    assert set(reloaded.offsets[GROUP]) == {("t", 1)}


def test_delete_groups() -> None:
    h = Harness()
    assert h.delete_group("unknown") == E.GROUP_ID_NOT_FOUND
    formed = form(h, 1)
    h.commit({("t", 0): 1}, member_id=formed.leader, generation=formed.generation)
    assert h.delete_group() == E.NON_EMPTY_GROUP
    h.leave(MemberIdentity(formed.leader))
    assert h.delete_group() == E.NONE
    assert h.shard.group_or_none(GROUP) is None
    assert h.committed() == {}
    tail = h.records()[-2:]
    assert [(r.type, r.value) for r in tail] == [
        (rec.OFFSET_COMMIT, None),
        (rec.GROUP_METADATA, None),
    ]
    assert GROUP not in h.reload().groups
    # the id is free again: a new group starts at generation 1
    again = form(h, 1)
    assert again.generation == 1


@pytest.mark.parametrize(
    ("append_error", "told"),
    [
        (E.NOT_LEADER_OR_FOLLOWER, E.NOT_COORDINATOR),
        (E.REQUEST_TIMED_OUT, E.COORDINATOR_NOT_AVAILABLE),
    ],
)
def test_failed_append_of_delete_groups_reports_the_error_and_keeps_the_group(
    append_error: ErrorCode, told: ErrorCode
) -> None:
    h = Harness()
    h.commit({("t", 0): 1})
    h.fail_appends.append(append_error)
    assert h.delete_group() == told
    assert h.group().state == S.EMPTY
    assert h.committed() == {("t", 0): 1}
    assert h.delete_group() == E.NONE  # and it can be deleted once the log takes it
    assert h.shard.group_or_none(GROUP) is None and h.committed() == {}


def test_failed_append_of_offset_delete_reports_the_error() -> None:
    h = Harness()
    h.commit({("t", 0): 1, ("t", 1): 2})
    h.fail_appends.append(E.NOT_LEADER_OR_FOLLOWER)
    assert h.delete_offsets([("t", 0)]) == (E.NOT_COORDINATOR, {})
    assert h.committed() == {("t", 0): 1, ("t", 1): 2}


# ---------------------------------------------------------------------- Describe / List


def test_describe_groups() -> None:
    h = Harness()
    formed = form(h, 2)
    described = group_admin.describe_group(h.shard, GROUP, 5)
    assert (described.error_code, described.group_state) == (E.NONE, "Stable")
    assert (described.protocol_type, described.protocol_data) == ("consumer", "range")
    assert [(m.member_id, m.member_metadata, m.member_assignment) for m in described.members] == [
        (formed.leader, RANGE[0][1], assignment({"t": [0]})),
        (formed.members[1], RANGE[0][1], assignment({"t": [1]})),
    ]
    assert {m.client_id for m in described.members} == {"client"}
    h.join(formed.leader)
    rebalancing = group_admin.describe_group(h.shard, GROUP, 5)
    assert rebalancing.group_state == "PreparingRebalance" and rebalancing.protocol_data == ""
    assert all(not m.member_metadata and not m.member_assignment for m in rebalancing.members)
    old = group_admin.describe_group(h.shard, "nope", 5)
    assert (old.error_code, old.group_state) == (E.NONE, "Dead")
    new = group_admin.describe_group(h.shard, "nope", 6)
    assert (new.error_code, new.group_state) == (E.GROUP_ID_NOT_FOUND, "Dead")


def test_list_groups_filters_by_state_and_type() -> None:
    h = Harness()
    form(h, 1, group="stable")
    h.commit({("t", 0): 1}, group="simple")
    h.join(group="pending-only")  # MEMBER_ID_REQUIRED: an Empty group exists

    def listed(states: set[str], types: set[str]) -> set[str]:
        return {g for g, *_ in group_admin.list_groups(h.shard, states, types)}

    assert listed(set(), set()) == {"stable", "simple", "pending-only"}
    assert listed({"stable"}, set()) == {"stable"}
    assert listed({"empty"}, set()) == {"simple", "pending-only"}
    assert listed(set(), {"classic"}) == {"stable", "simple", "pending-only"}
    assert listed(set(), {"consumer"}) == set()
    entry = next(e for e in group_admin.list_groups(h.shard, set(), set()) if e[0] == "stable")
    assert entry == ("stable", "consumer", "Stable", "classic")


# ---------------------------------------------------------------------- load


def test_replaying_the_log_restores_groups_and_offsets() -> None:
    h = Harness()
    formed = form(h, 3)
    h.commit({("t", 0): 5, ("t", 1): 6}, member_id=formed.leader, generation=formed.generation)
    static = form_static_in(h, "s")
    h.commit({("t", 0): 1}, group="simple")
    h.commit({("t", 0): 1}, group="deleted")
    assert h.delete_group("deleted") == E.NONE
    emptied = form(h, 1, group="emptied")
    h.leave(MemberIdentity(emptied.leader), group="emptied")

    shard = h.reload()
    assert shard.offsets == h.shard.offsets
    assert set(shard.groups) == {GROUP, "s", "simple", "emptied"}
    for group_id in (GROUP, "s"):
        live, loaded = h.group(group_id), shard.groups[group_id]
        assert loaded.state == S.STABLE
        assert (loaded.generation_id, loaded.leader_id) == (live.generation_id, live.leader_id)
        assert (loaded.protocol_type, loaded.protocol_name) == ("consumer", "range")
        assert list(loaded.members) == list(live.members)
        assert loaded.static_members == live.static_members
        for member_id, member in loaded.members.items():
            original = live.members[member_id]
            assert member.assignment == original.assignment
            assert member.metadata("range") == original.metadata("range")
            assert (member.session_timeout_ms, member.rebalance_timeout_ms) == (
                original.session_timeout_ms,
                original.rebalance_timeout_ms,
            )
            assert member.group_instance_id == original.group_instance_id
    assert static.members == list(shard.groups["s"].members)
    emptied_loaded = shard.groups["emptied"]
    assert emptied_loaded.state == S.EMPTY and not emptied_loaded.members
    assert emptied_loaded.generation_id == emptied.generation + 1
    assert emptied_loaded.protocol_type == "consumer"
    assert shard.groups["simple"].state == S.EMPTY


def test_loaded_members_keep_their_place_if_they_heartbeat_in_time() -> None:
    h = Harness()
    formed = form(h, 2)
    shard = h.reload()
    reloaded = Harness()
    reloaded.shard, reloaded.now, reloaded.log = shard, h.now, list(h.log)
    reloaded.entries, reloaded.next_offset = list(h.entries), h.next_offset
    reloaded.run(lambda: classic_ops.restart_sessions(shard))
    assert reloaded.heartbeat(formed.leader, formed.generation) == E.NONE
    member = formed.members[1]
    again = synced(reloaded.reply(reloaded.sync(member, formed.generation)))
    assert again.assignment == assignment({"t": [1]})
    keep_alive(reloaded, formed.leader, formed.generation, SESSION_MS - 1)
    assert member in reloaded.group().members
    reloaded.advance(1)  # the follower did not heartbeat since the restart: it is removed
    assert member not in reloaded.group().members
    assert reloaded.group().state == S.PREPARING_REBALANCE


def form_static_in(h: Harness, group: str) -> Formed:
    tokens = [h.join(group=group, instance_id=f"{group}-{i}") for i in range(2)]
    h.advance_until_answered(*tokens)
    ids = [joined(h.reply(t)).member_id for t in tokens]
    generation = joined(h.reply(tokens[0])).generation_id
    h.sync(ids[0], generation, {ids[0]: b"a", ids[1]: b"b"}, group=group, instance_id=f"{group}-0")
    h.sync(ids[1], generation, group=group, instance_id=f"{group}-1")
    assert h.group(group).state == S.STABLE
    return Formed(ids, generation)
