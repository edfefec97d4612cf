"""The server-side assignors, and a stateful check that ownership is exclusive whatever happens."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from kbroker.groups.assignors import MemberSpec, RangeAssignor, Target, UniformAssignor
from tests.kbroker.groups.consumer_harness import Harness, assert_exclusive, settle, topic

T1, T2, T3 = (uuid.UUID(int=i) for i in (1, 2, 3))


def sizes(result: dict[str, Target]) -> dict[str, int]:
    return {m: sum(len(ps) for ps in t.values()) for m, t in result.items()}


def flat(target: Target) -> set[tuple[uuid.UUID, int]]:
    return {(t, p) for t, ps in target.items() for p in ps}


def members(*ids: str, topics: frozenset[uuid.UUID] = frozenset({T1})) -> list[MemberSpec]:
    return [MemberSpec(m, None, topics) for m in ids]


def test_uniform_balances_and_covers_every_partition() -> None:
    result = UniformAssignor().assign(members("a", "b", "c"), {T1: 10})
    assert sorted(sizes(result).values()) == [3, 3, 4]
    everything = set().union(*(flat(t) for t in result.values()))
    assert everything == {(T1, p) for p in range(10)}


def test_uniform_is_sticky_when_a_member_joins() -> None:
    uniform = UniformAssignor()
    before = uniform.assign(members("a", "b", "c"), {T1: 12})
    specs = [MemberSpec(m, None, frozenset({T1}), before[m]) for m in ("a", "b", "c")]
    after = uniform.assign([*specs, MemberSpec("d", None, frozenset({T1}))], {T1: 12})
    assert sizes(after) == {"a": 3, "b": 3, "c": 3, "d": 3}
    for m in ("a", "b", "c"):
        assert flat(after[m]) <= flat(before[m])  # nobody gets a partition it did not have


def test_uniform_is_sticky_when_a_member_leaves() -> None:
    uniform = UniformAssignor()
    before = uniform.assign(members("a", "b", "c"), {T1: 9})
    specs = [MemberSpec(m, None, frozenset({T1}), before[m]) for m in ("a", "b")]
    after = uniform.assign(specs, {T1: 9})
    for m in ("a", "b"):
        assert flat(before[m]) <= flat(after[m])
    assert sorted(sizes(after).values()) == [4, 5]


def test_uniform_with_different_subscriptions_balances_within_them() -> None:
    specs = [
        MemberSpec("a", None, frozenset({T1})),
        MemberSpec("b", None, frozenset({T1, T2})),
        MemberSpec("c", None, frozenset({T2})),
    ]
    result = UniformAssignor().assign(specs, {T1: 4, T2: 4})
    assert sorted(sizes(result).values()) == [2, 3, 3]
    assert all(t == T1 for t, _ in flat(result["a"]))
    assert all(t == T2 for t, _ in flat(result["c"]))
    assert len(set().union(*(flat(t) for t in result.values()))) == 8


def test_uniform_ignores_topics_that_do_not_exist() -> None:
    result = UniformAssignor().assign(members("a", topics=frozenset({T1, T3})), {T1: 2})
    assert result == {"a": {T1: frozenset({0, 1})}}


def test_range_gives_contiguous_ranges_static_members_first() -> None:
    specs = [
        MemberSpec("m-b", None, frozenset({T1, T2})),
        MemberSpec("m-a", None, frozenset({T1, T2})),
        MemberSpec("m-z", "instance-0", frozenset({T1, T2})),
    ]
    result = RangeAssignor().assign(specs, {T1: 7, T2: 3})
    assert result["m-z"] == {T1: frozenset({0, 1, 2}), T2: frozenset({0})}
    assert result["m-a"] == {T1: frozenset({3, 4}), T2: frozenset({1})}
    assert result["m-b"] == {T1: frozenset({5, 6}), T2: frozenset({2})}


def test_range_with_more_members_than_partitions() -> None:
    result = RangeAssignor().assign(members("a", "b", "c"), {T1: 2})
    assert result == {"a": {T1: frozenset({0})}, "b": {T1: frozenset({1})}, "c": {}}


# ---------------------------------------------------------------------- exclusive ownership

OPS = st.lists(
    st.tuples(
        st.sampled_from(["join", "beat", "beat", "beat", "leave", "tick"]), st.integers(0, 3)
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_no_partition_is_ever_owned_twice_and_the_group_converges(
    ops: list[tuple[str, int]],
) -> None:
    a, b = topic("a", 5), topic("b", 3)
    h = Harness(a, b)
    clients = [h.client(f"m{i}", "a", *(["b"] if i % 2 else [])) for i in range(4)]
    joined = [False] * 4
    for op, i in ops:
        c = clients[i]
        if op == "join" or (op == "beat" and not joined[i]):
            c.join()
            joined[i] = True
        elif op == "beat":
            c.beat()
        elif op == "leave" and c.member_id in _members(h):
            c.leave()
            joined[i] = False
        elif op == "tick":
            h.tick(20_000)  # members that did not heartbeat for 45 s are fenced ...
            for other, member_joined in zip(clients, joined, strict=True):
                if member_joined and other.member_id not in _members(h):
                    other.owned = {}  # ... and lose their partitions (commits would fail)
        assert_exclusive(*clients)
        group = h.shard.consumer_groups.get("g")
        if group is not None:  # the coordinator's view agrees: one owner per partition
            for member in group.members.values():
                for tp in member.owned_partitions():
                    assert group.owners[tp] == member.member_id
    active = [c for c, j in zip(clients, joined, strict=True) if j]
    for c in active:
        if c.member_id not in _members(h):
            c.join()
    settle(*active, rounds=5)
    if active:
        owned = set().union(*(c.partitions() for c in active))
        expected = {(a.topic_id, p) for p in range(5)}
        if any(int(c.member_id[1:]) % 2 for c in active):
            expected |= {(b.topic_id, p) for p in range(3)}
        assert owned == expected
        assert h.group.state.value == "Stable"


def _members(h: Harness) -> set[str]:
    group = h.shard.consumer_groups.get("g")
    return set(group.members) if group is not None else set()
