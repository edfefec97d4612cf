"""Which segments retention may delete: Kafka's rules, as pure functions over segments.

A deletion pass walks segments oldest first and stops at the first one the rule keeps; it
never deletes a segment holding offsets at or above the high watermark (the log start offset
must never pass it) and never a final empty segment. The rules:

- log start: a segment whose successor starts at or below the log start offset;
- size (`retention.bytes` >= 0): oldest segments while the log stays at or above the limit;
- time (`retention.ms` >= 0): segments whose largest record timestamp (or file mtime, when
  no batch has one) is more than `retention.ms` old.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from storage.segment import LogSegment

Rule = Callable[[LogSegment, LogSegment | None], bool]


def deletable_segments(
    segments: Sequence[LogSegment], high_watermark: int, log_end_offset: int, rule: Rule
) -> list[LogSegment]:
    result: list[LogSegment] = []
    for i, segment in enumerate(segments):
        nxt = segments[i + 1] if i + 1 < len(segments) else None
        upper = nxt.base_offset if nxt is not None else log_end_offset
        if high_watermark < upper or (nxt is None and segment.size == 0):
            break
        if not rule(segment, nxt):
            break
        result.append(segment)
    return result


def log_start_rule(log_start_offset: int) -> Rule:
    def breached(segment: LogSegment, nxt: LogSegment | None) -> bool:
        return nxt is not None and nxt.base_offset <= log_start_offset

    return breached


def size_rule(log_size: int, retention_bytes: int) -> Rule:
    excess = log_size - retention_bytes if retention_bytes >= 0 else -1

    def breached(segment: LogSegment, nxt: LogSegment | None) -> bool:
        nonlocal excess
        if excess - segment.size < 0:
            return False
        excess -= segment.size
        return True

    return breached


def time_rule(now_ms: int, retention_ms: int) -> Rule:
    def breached(segment: LogSegment, nxt: LogSegment | None) -> bool:
        return retention_ms >= 0 and now_ms - segment.largest_timestamp() > retention_ms

    return breached
