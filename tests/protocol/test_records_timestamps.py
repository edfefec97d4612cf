"""repair_max_timestamp: the header max_timestamp Kafka's broker recomputes from the records."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.records import (
    Compression,
    ControlType,
    InvalidRecordError,
    RecordTuple,
    TimestampType,
    _write_crc,  # to forge a valid CRC over malformed records
    build_batch,
    build_control_batch,
    check_batch,
    decode_batch,
    read_batch_header,
    repair_max_timestamp,
)

T0 = 1_700_000_000_000


def sarama_like(
    timestamps: list[int], compression: Compression = Compression.NONE, **kwargs: Any
) -> bytearray:
    """A batch as sarama 1.22 writes it: base_timestamp is the first record's, max is -1."""
    records: list[RecordTuple] = [(b"k", b"v%d" % i, [], ts) for i, ts in enumerate(timestamps)]
    return bytearray(build_batch(records, compression=compression, max_timestamp=-1, **kwargs))


@pytest.mark.parametrize("compression", list(Compression))
def test_minus_one_is_replaced_by_the_largest_record_timestamp(compression: Compression) -> None:
    batch = bytearray(b"xx") + sarama_like([T0 + 5, T0 + 9, T0 + 2], compression)
    before = check_batch(batch, 2)
    assert before.max_timestamp == -1
    header = repair_max_timestamp(batch, 2, before)
    assert header.max_timestamp == T0 + 9
    assert check_batch(batch, 2) == header  # CRC rewritten and correct; header read back
    assert header._replace(max_timestamp=-1, crc=before.crc) == before  # nothing else moved
    assert [r.timestamp for r in decode_batch(batch, 2)[1]] == [T0 + 5, T0 + 9, T0 + 2]


def test_max_below_base_timestamp_is_repaired() -> None:
    records: list[RecordTuple] = [(None, b"a", [], T0), (None, b"b", [], T0 + 40)]
    batch = bytearray(build_batch(records, max_timestamp=T0 - 1000))
    header = repair_max_timestamp(batch, 0, check_batch(batch))
    assert header.max_timestamp == T0 + 40
    assert check_batch(batch).max_timestamp == T0 + 40


def test_a_consistent_header_is_not_touched_nor_decoded() -> None:
    # The records are garbage behind a valid CRC: decoding would raise, so not raising
    # proves the common path reads the header only.
    good = bytearray(build_batch([(None, b"v", [], T0)]))
    header = check_batch(good)
    garbage = bytearray(good)
    garbage[61:] = b"\xff" * (len(good) - 61)
    assert repair_max_timestamp(garbage, 0, header) is header
    assert garbage[61:] == b"\xff" * (len(good) - 61)


@pytest.mark.parametrize(
    "kwargs",
    [{"timestamp_type": TimestampType.LOG_APPEND_TIME}, {"delete_horizon_ms": T0}],
)
def test_log_append_time_and_delete_horizon_batches_are_left_alone(
    kwargs: dict[str, Any],
) -> None:
    batch = sarama_like([T0 + 1, T0 + 2], **kwargs)
    before = bytes(batch)
    header = check_batch(batch)
    assert repair_max_timestamp(batch, 0, header) is header
    assert bytes(batch) == before


def test_control_batches_are_left_alone() -> None:
    batch = bytearray(
        build_control_batch(
            ControlType.ABORT, producer_id=1, producer_epoch=0, coordinator_epoch=0, timestamp_ms=T0
        )
    )
    batch[35:43] = (-1).to_bytes(8, "big", signed=True)
    header = read_batch_header(batch)  # max -1 below base: would be repaired if not control
    assert repair_max_timestamp(batch, 0, header) is header


def test_records_without_timestamps_keep_minus_one() -> None:
    # Kafka's maximum starts at -1 (NO_TIMESTAMP), so -1 stays -1.
    batch = sarama_like([-1, -3])
    header = check_batch(batch)
    assert header.base_timestamp == -1
    assert repair_max_timestamp(batch, 0, header) is header  # -1 >= -1: consistent


def test_a_malformed_record_behind_a_wrong_header_is_invalid() -> None:
    batch = sarama_like([T0, T0 + 1])
    batch[61:] = b"\x7f" * (len(batch) - 61)  # record length overruns the batch
    _write_crc(batch, 0, len(batch))
    with pytest.raises(InvalidRecordError):
        repair_max_timestamp(batch, 0, check_batch(batch))


@settings(max_examples=40, deadline=None, database=None)
@given(
    timestamps=st.lists(st.integers(0, 2**45), min_size=1, max_size=10),
    compression=st.sampled_from(list(Compression)),
)
def test_repair_matches_the_records(timestamps: list[int], compression: Compression) -> None:
    batch = sarama_like(timestamps, compression)
    header = repair_max_timestamp(batch, 0, check_batch(batch))
    assert header.max_timestamp == max(timestamps) == check_batch(batch).max_timestamp
    assert [r.timestamp for r in decode_batch(batch)[1]] == timestamps
