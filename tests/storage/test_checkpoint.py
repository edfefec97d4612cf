"""Checkpoint files: Kafka's text formats, round trips, and atomic replacement."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from storage import checkpoint as cp
from storage.fs import OS_FS
from tests.storage.conftest import FaultyFS, SimulatedCrash


def test_offset_checkpoint_text_format(tmp_path: Path) -> None:
    path = str(tmp_path / cp.RECOVERY_POINT_CHECKPOINT)
    cp.write_offsets(OS_FS, path, {("b-topic", 1): 7, ("a.topic-x", 0): 1234})
    assert Path(path).read_text() == "0\n2\na.topic-x 0 1234\nb-topic 1 7\n"
    assert cp.read_offsets(path) == {("b-topic", 1): 7, ("a.topic-x", 0): 1234}


def test_offset_checkpoint_reads_kafka_written_files(tmp_path: Path) -> None:
    path = tmp_path / "replication-offset-checkpoint"
    path.write_text("0\n1\nfoo  3   99\n")
    assert cp.read_offsets(str(path)) == {("foo", 3): 99}
    assert cp.read_offsets(str(tmp_path / "absent")) == {}


@pytest.mark.parametrize("text", ["1\n0\n", "0\n2\nfoo 0 1\n", "0\nx\n", "0\n1\nfoo 0\n"])
def test_malformed_checkpoints_raise(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cp"
    path.write_text(text)
    with pytest.raises(cp.CheckpointError):
        cp.read_offsets(str(path))


def test_leader_epoch_checkpoint_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / cp.LEADER_EPOCH_CHECKPOINT)
    cp.write_epochs(OS_FS, path, [(0, 0), (3, 120)])
    assert Path(path).read_text() == "0\n2\n0 0\n3 120\n"
    assert cp.read_epochs(path) == [(0, 0), (3, 120)]
    assert cp.read_epochs(str(tmp_path / "absent")) is None


def test_partition_metadata_uses_kafka_uuid_encoding(tmp_path: Path) -> None:
    topic_id = uuid.UUID("0b0d8a8e-5f4c-4f0e-9a43-1c2d3e4f5a6b")
    path = str(tmp_path / cp.PARTITION_METADATA)
    cp.write_partition_metadata(OS_FS, path, topic_id)
    text = Path(path).read_text()
    assert text == f"version: 0\ntopic_id: {cp.encode_topic_id(topic_id)}"
    assert len(cp.encode_topic_id(topic_id)) == 22
    assert "=" not in text
    assert cp.read_partition_metadata(path) == topic_id


def test_clean_shutdown_marker(tmp_path: Path) -> None:
    assert not cp.has_clean_shutdown_marker(str(tmp_path))
    cp.write_clean_shutdown_marker(OS_FS, str(tmp_path), broker_epoch=5)
    assert cp.has_clean_shutdown_marker(str(tmp_path))
    assert (tmp_path / ".kafka_cleanshutdown").read_text() == '{"version":0,"brokerEpoch":5}'
    cp.remove_clean_shutdown_marker(OS_FS, str(tmp_path))
    assert not cp.has_clean_shutdown_marker(str(tmp_path))
    cp.remove_clean_shutdown_marker(OS_FS, str(tmp_path))  # absent: no error


def test_write_is_atomic_when_interrupted(tmp_path: Path) -> None:
    path = str(tmp_path / cp.LOG_START_OFFSET_CHECKPOINT)
    cp.write_offsets(OS_FS, path, {("t", 0): 1})
    faulty = FaultyFS()
    faulty.fail_replace = True  # crash after the tmp file is written, before the rename
    with pytest.raises(SimulatedCrash):
        cp.write_offsets(faulty, path, {("t", 0): 2})
    assert cp.read_offsets(path) == {("t", 0): 1}
    faulty.fail_replace = False
    faulty.fail_fsync = True  # a failed fsync of the tmp file never replaces the old file
    with pytest.raises(OSError):
        cp.write_offsets(faulty, path, {("t", 0): 3})
    assert cp.read_offsets(path) == {("t", 0): 1}
    cp.write_offsets(OS_FS, path, {("t", 0): 4})
    assert cp.read_offsets(path) == {("t", 0): 4}


def test_epoch_placeholder_is_written_in_place_and_no_prefix_reads_valid(tmp_path: Path) -> None:
    path = str(tmp_path / cp.LEADER_EPOCH_CHECKPOINT)
    cp.create_epoch_placeholder(OS_FS, path)
    assert cp.read_epochs(path) is None  # an empty placeholder is no checkpoint at all
    inode = os.stat(path).st_ino
    entries = [(0, 0), (3, 1200), (7, 123456)]
    cp.write_epochs(OS_FS, path, entries, sync=False)
    assert os.stat(path).st_ino == inode  # in place: no new file created
    assert cp.read_epochs(path) == entries
    cp.create_epoch_placeholder(OS_FS, path)  # never clobbers a written checkpoint
    assert cp.read_epochs(path) == entries
    cp.write_epochs(OS_FS, path, entries[:1])  # over a real checkpoint: atomic replace
    assert os.stat(path).st_ino != inode and cp.read_epochs(path) == entries[:1]

    cp.write_epochs(OS_FS, path, entries)
    full = (tmp_path / cp.LEADER_EPOCH_CHECKPOINT).read_bytes()
    for cut in range(1, len(full)):  # what an interrupted in-place write can leave
        (tmp_path / "torn").write_bytes(full[:cut])
        with pytest.raises(cp.CheckpointError):
            cp.read_epochs(str(tmp_path / "torn"))


def test_failed_in_place_write_leaves_a_placeholder(tmp_path: Path) -> None:
    path = str(tmp_path / cp.LEADER_EPOCH_CHECKPOINT)
    cp.create_epoch_placeholder(OS_FS, path)
    faulty = FaultyFS()
    faulty.enospc_after_bytes = 3
    with pytest.raises(OSError):
        cp.write_epochs(faulty, path, [(0, 0)])
    assert os.path.getsize(path) == 0 and cp.read_epochs(path) is None
