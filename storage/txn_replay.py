"""Replaying a log's batch headers with their transaction markers (producer-state recovery).

A control batch's header says only that it is a control batch; whether it commits or aborts,
and the coordinator epoch, are in its one control record. Producer-state replay (start-up, after
a kill -9) needs both, so for each control batch this reads the batch (tens of bytes) and parses
the record; data batches cost their 61-byte header only, as before.

Threads: the log's owner thread, before the partition serves anything.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from protocol.errors import ProtocolError
from protocol.records import BatchHeader, ControlType, decode_batch, parse_control_record
from storage.producer_state import EndTxnMarker
from storage.segment import LogSegment

_log = logging.getLogger(__name__)


def replay_batches(
    segments: Sequence[LogSegment], from_offset: int
) -> Iterator[tuple[BatchHeader, EndTxnMarker | None]]:
    """Every batch ending at or after `from_offset`, in offset order, with its marker.

    The marker is None for a data batch, an emptied control batch (compaction removed its
    transaction) and a control batch whose record cannot be read (logged; it ends nothing).
    """
    for i, segment in enumerate(segments):
        if i + 1 < len(segments) and segments[i + 1].base_offset <= from_offset:
            continue
        for position, header in segment.locations_from(0):
            if header.last_offset < from_offset:
                continue
            marker = None
            if header.is_control and header.records_count > 0:
                marker = _read_marker(segment, position, header)
            yield header, marker


def _read_marker(segment: LogSegment, position: int, header: BatchHeader) -> EndTxnMarker | None:
    try:
        _, records = decode_batch(segment.read_batch(position, header))
        control, coordinator_epoch = parse_control_record(records[0])
    except ProtocolError as exc:
        _log.warning("%s: unreadable control batch at %d: %s", segment, header.base_offset, exc)
        return None
    return EndTxnMarker(control == ControlType.COMMIT, coordinator_epoch)
