"""Kafka's rules for topic names, and the names of its internal topics.

A legal name is 1 to 249 characters of ASCII letters, digits, '.', '_' and '-', and is neither
"." nor ".." (they would be directory names). The length limit leaves room for the partition
suffix in `<topic>-<partition>` directory names within common file name limits.

Collisions: Kafka's metric names replace '.' with '_', so "a.b" and "a_b" would share metrics.
Kafka therefore refuses to create a topic whose name equals an existing one once '.' is
unified with '_' (INVALID_TOPIC_EXCEPTION), and warns when a name contains either character.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar

GROUP_METADATA_TOPIC_NAME = "__consumer_offsets"
TRANSACTION_STATE_TOPIC_NAME = "__transaction_state"
SHARE_GROUP_STATE_TOPIC_NAME = "__share_group_state"
INTERNAL_TOPICS = frozenset(
    {GROUP_METADATA_TOPIC_NAME, TRANSACTION_STATE_TOPIC_NAME, SHARE_GROUP_STATE_TOPIC_NAME}
)

MAX_NAME_LENGTH = 249
_LEGAL = re.compile(r"[a-zA-Z0-9._-]+")


class InvalidTopicName(ValueError):
    """A topic name Kafka would refuse; on the wire, INVALID_TOPIC_EXCEPTION (error code 17)."""

    error_code: ClassVar[int] = 17  # INVALID_TOPIC_EXCEPTION

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def invalid_reason(name: str) -> str | None:
    """Why `name` is not a legal topic name, or None when it is."""
    if not name:
        return "the empty string is not allowed"
    if name in (".", ".."):
        return f"{name!r} is not allowed"
    if len(name) > MAX_NAME_LENGTH:
        return f"{len(name)} characters is longer than the maximum of {MAX_NAME_LENGTH}"
    if not _LEGAL.fullmatch(name):
        return f"{name!r} contains characters other than ASCII letters, digits, '.', '_' and '-'"
    return None


def validate_topic_name(name: str) -> None:
    """Raise InvalidTopicName when `name` is not a legal topic name."""
    reason = invalid_reason(name)
    if reason is not None:
        raise InvalidTopicName(f"Topic name is invalid: {reason}")


def is_valid_topic_name(name: str) -> bool:
    """True for a legal topic name."""
    return invalid_reason(name) is None


def is_internal(name: str) -> bool:
    """True for Kafka's internal topics (__consumer_offsets, __transaction_state, ...)."""
    return name in INTERNAL_TOPICS


def has_collision_chars(name: str) -> bool:
    """True when the name contains '.' or '_', which metric names cannot tell apart."""
    return "." in name or "_" in name


def unify_collision_chars(name: str) -> str:
    """The name with '.' replaced by '_': two names collide when these are equal."""
    return name.replace(".", "_")


def has_collision(a: str, b: str) -> bool:
    """True when two names are the same once '.' and '_' are unified."""
    return unify_collision_chars(a) == unify_collision_chars(b)


def find_collision(name: str, existing: Iterable[str]) -> str | None:
    """An existing topic, other than `name` itself, that `name` collides with, or None."""
    unified = unify_collision_chars(name)
    for other in existing:
        if other != name and unify_collision_chars(other) == unified:
            return other
    return None


def check_new_topic_name(name: str, existing: Iterable[str]) -> None:
    """Validate a name for CreateTopics: legal, and not colliding with an existing topic.

    Raises InvalidTopicName; the caller answers TOPIC_ALREADY_EXISTS itself when the exact
    name exists, which Kafka checks separately.
    """
    validate_topic_name(name)
    other = find_collision(name, existing)
    if other is not None:
        raise InvalidTopicName(
            f"Topic {name!r} collides with existing topic {other!r}: names that differ only "
            "in '.' versus '_' share metric names"
        )
