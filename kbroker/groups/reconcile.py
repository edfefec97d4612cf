"""Moving one member of a consumer group towards its target assignment (KIP-848's reconciliation).

Kafka's `CurrentAssignmentBuilder`, as a pure function of the member, its target, the
partitions the member says it still owns, and who holds every partition now:

- Stable at an older epoch (or its subscription changed): compute the next step.
- UnrevokedPartitions: wait until the member no longer reports any partition pending
  revocation (a heartbeat without owned partitions proves nothing: it keeps waiting), then
  compute the next step.
- UnreleasedPartitions: compute the next step (partitions released meanwhile are handed over).

The next step: kept = assigned and still in the target; to revoke = assigned but not in the
target (or of a topic no longer subscribed); to assign = target minus kept, minus partitions
another member still holds. If something must be revoked and the member still owns it, it stays
at its epoch in UnrevokedPartitions (the coordinator arms its rebalance timeout). Otherwise it
moves to the target epoch, gets the free partitions, and is Stable, or UnreleasedPartitions
while some of its target is still held elsewhere. A partition thus changes hands only after
its previous owner has reported it gone.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable

from kbroker.groups.consumer import ConsumerMember, MemberState, Owned, Partitions
from protocol.error_codes import ErrorCode, KafkaError

OwnerOf = Callable[[uuid.UUID, int], str | None]
Reported = dict[uuid.UUID, set[int]] | None  # partitions the member says it owns; None: unsaid


def reconcile(
    member: ConsumerMember,
    target_epoch: int,
    target: Partitions,
    subscribed: set[uuid.UUID],
    owner_of: OwnerOf,
    reported: Reported,
    subscription_changed: bool,
) -> ConsumerMember:
    """The member's next state (the same object when nothing changes)."""
    step = _Step(member, target_epoch, target, subscribed, owner_of, reported)
    if member.state == MemberState.STABLE:
        if member.member_epoch != target_epoch:
            return step.next_assignment()
        return step.drop_unsubscribed() if subscription_changed else member
    if member.state == MemberState.UNREVOKED_PARTITIONS:
        if step.owns_any(member.pending_revocation):
            return step.drop_unsubscribed() if subscription_changed else member
        return step.next_assignment()
    if member.state == MemberState.UNRELEASED_PARTITIONS:
        return step.next_assignment()
    # UNKNOWN: a state this broker does not know; start over from nothing
    if reported is None or reported:
        raise KafkaError(
            ErrorCode.FENCED_MEMBER_EPOCH,
            "The consumer group member is in a unknown state. The member must abandon all its "
            "partitions and rejoin.",
        )
    return step.next_assignment(epoch=target_epoch)


@dataclasses.dataclass(slots=True)
class _Step:
    member: ConsumerMember
    target_epoch: int
    target: Partitions
    subscribed: set[uuid.UUID]
    owner_of: OwnerOf
    reported: Reported

    def owns_any(self, owned: Owned) -> bool:
        if self.reported is None:
            return True  # not told otherwise: it still owns them
        return any(
            p in owned.get(topic_id, {})
            for topic_id, partitions in self.reported.items()
            for p in partitions
        )

    def drop_unsubscribed(self) -> ConsumerMember:
        """Only the subscription changed: revoke what the member no longer subscribes to."""
        member = self.member
        kept = {t: e for t, e in member.assigned.items() if t in self.subscribed}
        if len(kept) == len(member.assigned):
            return member
        revoking = _merge(
            member.pending_revocation,
            {t: e for t, e in member.assigned.items() if t not in self.subscribed},
        )
        if self.owns_any(revoking):
            return dataclasses.replace(
                member,
                state=MemberState.UNREVOKED_PARTITIONS,
                previous_member_epoch=member.member_epoch,
                assigned=kept,
                pending_revocation=revoking,
            )
        return dataclasses.replace(member, previous_member_epoch=member.member_epoch, assigned=kept)

    def next_assignment(self, epoch: int | None = None) -> ConsumerMember:
        member = self.member
        kept: Owned = {}
        revoking: Owned = {}
        adding: dict[uuid.UUID, set[int]] = {}
        unreleased = False
        for topic_id in set(self.target) | set(member.assigned):
            wanted = self.target.get(topic_id, frozenset())
            if topic_id not in self.subscribed:
                wanted = frozenset()
            current = member.assigned.get(topic_id, {})
            keep = {p: e for p, e in current.items() if p in wanted}
            give_up = {p: e for p, e in current.items() if p not in wanted}
            add = {p for p in wanted if p not in keep}
            held = {p for p in add if self._held_elsewhere(topic_id, p)}
            unreleased = unreleased or bool(held)
            _put(kept, topic_id, keep)
            _put(revoking, topic_id, give_up)
            if add - held:
                adding[topic_id] = add - held
        if revoking and self.owns_any(revoking):
            return self._moved(
                MemberState.UNREVOKED_PARTITIONS,
                member.member_epoch if epoch is None else epoch,
                kept,
                revoking,
            )
        for topic_id, partitions in adding.items():
            kept[topic_id] = {
                **kept.get(topic_id, {}),
                **dict.fromkeys(partitions, self.target_epoch),
            }
        state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
        return self._moved(state, self.target_epoch, kept, {})

    def _held_elsewhere(self, topic_id: uuid.UUID, partition: int) -> bool:
        holder = self.owner_of(topic_id, partition)
        return holder is not None and holder != self.member.member_id

    def _moved(
        self, state: MemberState, epoch: int, assigned: Owned, revoking: Owned
    ) -> ConsumerMember:
        member = self.member
        return dataclasses.replace(
            member,
            state=state,
            member_epoch=epoch,
            previous_member_epoch=member.member_epoch,
            assigned=assigned,
            pending_revocation=revoking,
        )


def _put(owned: Owned, topic_id: uuid.UUID, epochs: dict[int, int]) -> None:
    if epochs:
        owned[topic_id] = epochs


def _merge(a: Owned, b: Owned) -> Owned:
    merged = {t: dict(e) for t, e in a.items()}
    for topic_id, epochs in b.items():
        merged.setdefault(topic_id, {}).update(epochs)
    return merged


def reported_partitions(topics: Iterable[tuple[uuid.UUID, Iterable[int]]] | None) -> Reported:
    if topics is None:
        return None
    reported: dict[uuid.UUID, set[int]] = {}
    for topic_id, partitions in topics:
        reported.setdefault(topic_id, set()).update(partitions)
    return reported
