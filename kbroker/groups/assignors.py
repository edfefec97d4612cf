"""Server-side assignors of KIP-848 consumer groups: `uniform` (the default) and `range`.

An assignor sees each member's subscribed topic ids and its previous target, and the partition
count of every subscribed topic; it returns every member's new target. It is a pure function:
the coordinator turns its result into target-assignment records.

- `uniform` (Kafka's UniformAssignor): balance first, then stickiness. Partitions stay with
  their previous target owner while it is still subscribed; partitions without an owner go,
  topic by topic (topics with the fewest subscribers first), to the least loaded subscribed
  member; then partitions move from the most to the least loaded subscribed members until no
  move would narrow a gap wider than one. With identical subscriptions this gives Kafka's result
  for counts (every member within one partition of the others) and moves only what balance
  requires; with different subscriptions it is a greedy approximation of Kafka's heterogeneous
  builder. Racks are not considered (kbroker has no rack-aware replicas yet).
- `range` (Kafka's RangeAssignor): per topic, its subscribers in order (static members by
  instance id first, then dynamic ones by member id) get contiguous ranges, the first
  `partitions % members` of them one extra. It is not sticky, as in Kafka.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

Target = dict[uuid.UUID, frozenset[int]]


@dataclass(frozen=True, slots=True)
class MemberSpec:
    member_id: str
    instance_id: str | None
    topics: frozenset[uuid.UUID]  # subscribed topic ids that exist
    previous: Mapping[uuid.UUID, frozenset[int]] = field(default_factory=dict)


class Assignor(Protocol):
    name: str

    def assign(
        self, members: Sequence[MemberSpec], partitions: Mapping[uuid.UUID, int]
    ) -> dict[str, Target]: ...


def _freeze(assignment: dict[str, dict[uuid.UUID, set[int]]]) -> dict[str, Target]:
    return {
        member_id: {t: frozenset(ps) for t, ps in topics.items() if ps}
        for member_id, topics in assignment.items()
    }


class UniformAssignor:
    name = "uniform"

    def assign(
        self, members: Sequence[MemberSpec], partitions: Mapping[uuid.UUID, int]
    ) -> dict[str, Target]:
        specs = {m.member_id: m for m in sorted(members, key=lambda m: m.member_id)}
        result: dict[str, dict[uuid.UUID, set[int]]] = {m: {} for m in specs}
        load = dict.fromkeys(specs, 0)
        subscribers: dict[uuid.UUID, list[str]] = {}
        for member_id, spec in specs.items():
            for topic_id in spec.topics:
                if topic_id in partitions:
                    subscribers.setdefault(topic_id, []).append(member_id)
        owned: set[tuple[uuid.UUID, int]] = set()
        for member_id, spec in specs.items():  # stickiness: keep what is still valid
            for topic_id, previous in spec.previous.items():
                if topic_id not in spec.topics or topic_id not in partitions:
                    continue
                for p in sorted(previous):
                    if p < partitions[topic_id] and (topic_id, p) not in owned:
                        owned.add((topic_id, p))
                        result[member_id].setdefault(topic_id, set()).add(p)
                        load[member_id] += 1
        by_fewest_subscribers = sorted(subscribers, key=lambda t: (len(subscribers[t]), str(t)))
        for topic_id in by_fewest_subscribers:
            candidates = subscribers[topic_id]
            for p in range(partitions[topic_id]):
                if (topic_id, p) in owned:
                    continue
                chosen = min(candidates, key=lambda m: load[m])
                result[chosen].setdefault(topic_id, set()).add(p)
                load[chosen] += 1
        _balance(result, load, subscribers)
        return _freeze(result)


def _balance(
    result: dict[str, dict[uuid.UUID, set[int]]],
    load: dict[str, int],
    subscribers: Mapping[uuid.UUID, list[str]],
) -> None:
    """Move one partition at a time from the most loaded member that can give one to a member
    at least two partitions lighter. Every move lowers the sum of squared loads: the loop ends."""
    while _move_one(result, load, subscribers):
        pass


def _move_one(
    result: dict[str, dict[uuid.UUID, set[int]]],
    load: dict[str, int],
    subscribers: Mapping[uuid.UUID, list[str]],
) -> bool:
    for donor in sorted(load, key=lambda m: (-load[m], m)):
        for topic_id in sorted(result[donor], key=str):
            taker = min(subscribers[topic_id], key=lambda m: load[m])
            if not result[donor][topic_id] or load[donor] - load[taker] <= 1:
                continue
            partition = max(result[donor][topic_id])
            result[donor][topic_id].discard(partition)
            result[taker].setdefault(topic_id, set()).add(partition)
            load[donor] -= 1
            load[taker] += 1
            return True
    return False


def _range_order(member: MemberSpec) -> tuple[int, str]:
    if member.instance_id is not None:
        return 0, member.instance_id
    return 1, member.member_id


class RangeAssignor:
    name = "range"

    def assign(
        self, members: Sequence[MemberSpec], partitions: Mapping[uuid.UUID, int]
    ) -> dict[str, Target]:
        ordered = sorted(members, key=_range_order)
        result: dict[str, dict[uuid.UUID, set[int]]] = {m.member_id: {} for m in ordered}
        topic_ids = {t for m in ordered for t in m.topics if t in partitions}
        for topic_id in topic_ids:
            subscribed = [m.member_id for m in ordered if topic_id in m.topics]
            quota, extra = divmod(partitions[topic_id], len(subscribed))
            start = 0
            for index, member_id in enumerate(subscribed):
                end = start + quota + (1 if index < extra else 0)
                if end > start:
                    result[member_id][topic_id] = set(range(start, end))
                start = end
        return _freeze(result)


BUILTIN: dict[str, Assignor] = {a.name: a for a in (UniformAssignor(), RangeAssignor())}
