"""LogConfig: Kafka's defaults and topic-config names."""

from __future__ import annotations

import pytest

from storage.config import LONG_MAX, LogConfig


def test_defaults_are_kafkas() -> None:
    c = LogConfig()
    assert c.segment_bytes == 1 << 30
    assert c.segment_ms == 604_800_000
    assert c.segment_index_bytes == 10 << 20
    assert c.index_interval_bytes == 4096
    assert (c.retention_ms, c.retention_bytes) == (604_800_000, -1)
    assert c.flush_interval_messages == c.flush_interval_ms == LONG_MAX
    assert c.max_message_bytes == 1_048_588
    assert c.file_delete_delay_ms == 60_000
    assert c.delete_enabled and not c.compact_enabled and not c.log_append_time


def test_from_properties_maps_topic_config_names() -> None:
    c = LogConfig.from_properties(
        {
            "segment.bytes": "1048576",
            "retention.ms": "-1",
            "flush.messages": "1",
            "message.timestamp.type": "LogAppendTime",
            "cleanup.policy": "compact,delete",
            "unclean.leader.election.enable": "true",  # not storage's: ignored
        }
    )
    assert c.segment_bytes == 1 << 20
    assert c.retention_ms == -1
    assert c.flush_interval_messages == 1
    assert c.log_append_time
    assert c.delete_enabled and c.compact_enabled
    base = LogConfig(retention_bytes=5)
    assert LogConfig.from_properties({"segment.ms": "10"}, base).retention_bytes == 5


def test_invalid_values_are_rejected() -> None:
    with pytest.raises(ValueError):
        LogConfig(segment_bytes=1)
    with pytest.raises(ValueError):
        LogConfig.from_properties({"segment.bytes": "lots"})
