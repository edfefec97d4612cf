"""`LogConfig`: the topic-level configs the log itself obeys, with Kafka's defaults.

The broker builds one per topic from `log.*` server defaults and the topic's overrides
(`from_properties`). Names map one to one onto Kafka's topic configs: `segment.bytes` is
`segment_bytes`, `flush.messages` is `flush_interval_messages`, and so on. A LogConfig is
immutable; a config change swaps the Log's config object (`Log.update_config`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1

# Topic config name -> (LogConfig field, parser).
_TOPIC_CONFIGS: dict[str, tuple[str, type]] = {
    "segment.bytes": ("segment_bytes", int),
    "segment.ms": ("segment_ms", int),
    "segment.jitter.ms": ("segment_jitter_ms", int),
    "segment.index.bytes": ("segment_index_bytes", int),
    "index.interval.bytes": ("index_interval_bytes", int),
    "retention.ms": ("retention_ms", int),
    "retention.bytes": ("retention_bytes", int),
    "flush.messages": ("flush_interval_messages", int),
    "flush.ms": ("flush_interval_ms", int),
    "max.message.bytes": ("max_message_bytes", int),
    "message.timestamp.type": ("message_timestamp_type", str),
    "message.timestamp.before.max.ms": ("message_timestamp_before_max_ms", int),
    "message.timestamp.after.max.ms": ("message_timestamp_after_max_ms", int),
    "cleanup.policy": ("cleanup_policy", str),
    "file.delete.delay.ms": ("file_delete_delay_ms", int),
    "min.insync.replicas": ("min_insync_replicas", int),
    "compression.type": ("compression_type", str),
}


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Per-topic storage settings; every default is Apache Kafka's."""

    segment_bytes: int = 1024 * 1024 * 1024
    segment_ms: int = 7 * 24 * 60 * 60 * 1000
    segment_jitter_ms: int = 0
    segment_index_bytes: int = 10 * 1024 * 1024
    index_interval_bytes: int = 4096
    retention_ms: int = 7 * 24 * 60 * 60 * 1000
    retention_bytes: int = -1
    flush_interval_messages: int = LONG_MAX
    flush_interval_ms: int = LONG_MAX
    max_message_bytes: int = 1024 * 1024 + 12
    message_timestamp_type: str = "CreateTime"
    message_timestamp_before_max_ms: int = LONG_MAX
    message_timestamp_after_max_ms: int = 60 * 60 * 1000
    cleanup_policy: str = "delete"
    file_delete_delay_ms: int = 60_000
    min_insync_replicas: int = 1
    compression_type: str = "producer"
    # Not a Kafka topic config: whether `.log` files are preallocated. Kept False (Kafka's
    # default); the loader would otherwise have to trim zero tails.
    preallocate: bool = False

    def __post_init__(self) -> None:
        if self.segment_bytes < 14:
            raise ValueError(f"segment.bytes must be at least 14, got {self.segment_bytes}")
        if self.segment_index_bytes < 12:
            raise ValueError("segment.index.bytes must hold at least one time index entry")
        if self.index_interval_bytes < 0:
            raise ValueError("index.interval.bytes must be >= 0")
        if self.segment_ms < 1:
            raise ValueError("segment.ms must be >= 1")

    @property
    def log_append_time(self) -> bool:
        """Whether the broker stamps batches with its own clock (LogAppendTime topics)."""
        return self.message_timestamp_type == "LogAppendTime"

    @property
    def delete_enabled(self) -> bool:
        """Time and size retention apply (cleanup.policy contains `delete`)."""
        return "delete" in _policies(self.cleanup_policy)

    @property
    def compact_enabled(self) -> bool:
        return "compact" in _policies(self.cleanup_policy)

    def with_overrides(self, **changes: Any) -> LogConfig:
        """A copy with some fields replaced (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_properties(cls, props: Mapping[str, str], base: LogConfig | None = None) -> LogConfig:
        """Apply Kafka topic configs (`segment.bytes` -> ...) over `base` (or the defaults).

        Unknown names are ignored here: topic configs that storage does not use (e.g.
        `unclean.leader.election.enable`) belong to the broker.
        """
        changes: dict[str, Any] = {}
        for name, raw in props.items():
            entry = _TOPIC_CONFIGS.get(name)
            if entry is None:
                continue
            field_name, parse = entry
            changes[field_name] = parse(raw.strip()) if parse is int else raw.strip()
        return dataclasses.replace(base or cls(), **changes)


def _policies(value: str) -> set[str]:
    return {p.strip() for p in value.split(",") if p.strip()}
