"""Checkpoint files, in Apache Kafka's text formats, written atomically.

Formats (UTF-8, `\\n` line ends; byte-compatible with Kafka's, so a log dir moves both ways):

- offset checkpoints, one per log dir: `recovery-point-offset-checkpoint`,
  `replication-offset-checkpoint` (high watermarks), `log-start-offset-checkpoint`:

      0                      <- version
      2                      <- number of entries
      my-topic 0 1234        <- topic, partition, offset (whitespace separated)
      my-topic 1 99

- `leader-epoch-checkpoint`, one per partition dir: version 0, count, then `epoch
  start_offset` lines in increasing epoch order.
- `partition.metadata`, one per partition dir: `version: 0\\ntopic_id: <uuid>`, the uuid in
  Kafka's form (URL-safe base64 of its 16 bytes, no padding).
- `.kafka_cleanshutdown`, one per log dir: present only between a clean close and the next
  start; its JSON body (`{"version":0,"brokerEpoch":N}`) is informational.

Kafka's files carry a version and an entry count but no checksum; we keep the format and get
integrity from the atomic replace (`FileSystem.write_atomically`: tmp, fsync, rename, fsync
dir): after a crash a checkpoint is either the old file or the new one, never a torn mix. A
file that still fails to parse raises `CheckpointError`; callers decide (the loader falls back
to full recovery). Two writes skip the fsyncs (`sync=False`): `partition.metadata`, whose topic
id the broker's own topic store holds durably (a file a crash left unreadable is ignored and
written again), and the leader-epoch checkpoints of a clean shutdown, which one `syncfs` makes
durable before the clean-shutdown marker is written (an unreadable one is rebuilt from batch
headers). A new log's first leader-epoch checkpoint is written in place over an empty
placeholder (see `write_epochs`).

Thread safety: these functions hold no state; the caller snapshots the entries on the owner
thread and may write on a worker thread.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import uuid
from collections.abc import Iterable, Mapping

from storage.fs import FileSystem

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
HIGH_WATERMARK_CHECKPOINT = "replication-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
LEADER_EPOCH_CHECKPOINT = "leader-epoch-checkpoint"
PARTITION_METADATA = "partition.metadata"
CLEAN_SHUTDOWN_MARKER = ".kafka_cleanshutdown"

_VERSION = 0

TopicPartition = tuple[str, int]


class CheckpointError(Exception):
    """A checkpoint file exists but does not parse."""


def _encode(lines: Iterable[str]) -> bytes:
    body = list(lines)
    return ("\n".join([str(_VERSION), str(len(body)), *body]) + "\n").encode()


def _decode(path: str, text: str, fields: int) -> list[list[str]]:
    lines = text.splitlines()
    if not lines:
        return []
    if lines[0].strip() != str(_VERSION):
        raise CheckpointError(f"{path}: unknown version {lines[0]!r}")
    if len(lines) < 2:
        return []
    try:
        expected = int(lines[1])
    except ValueError:
        raise CheckpointError(f"{path}: malformed count line {lines[1]!r}") from None
    rows = [line.split() for line in lines[2:] if line.strip()]
    if len(rows) != expected or any(len(r) != fields for r in rows):
        raise CheckpointError(f"{path}: expected {expected} entries of {fields} fields")
    return rows


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def write_offsets(fs: FileSystem, path: str, offsets: Mapping[TopicPartition, int]) -> None:
    """Atomically write an offset checkpoint (entries sorted for stable diffs)."""
    lines = (f"{t} {p} {o}" for (t, p), o in sorted(offsets.items()))
    fs.write_atomically(path, _encode(lines))


def read_offsets(path: str) -> dict[TopicPartition, int]:
    """An offset checkpoint as `{(topic, partition): offset}`; empty if the file is absent."""
    text = _read_text(path)
    if text is None:
        return {}
    try:
        return {(t, int(p)): int(o) for t, p, o in _decode(path, text, 3)}
    except ValueError:
        raise CheckpointError(f"{path}: malformed entry") from None


def write_epochs(
    fs: FileSystem, path: str, entries: Iterable[tuple[int, int]], sync: bool = True
) -> None:
    """Write a leader-epoch checkpoint from `(epoch, start_offset)` pairs.

    Atomically (tmp file, rename), except over the empty placeholder a new log gets
    (`create_epoch_placeholder`), which is written in place: a crash mid-write leaves it empty
    or unreadable, and the loader then rebuilds the epochs from batch headers, as it does
    when the file is missing. That spares creating a file per new partition at a clean
    shutdown, when thousands of them take their first checkpoint at once.
    """
    data = _encode(f"{e} {o}" for e, o in entries)
    try:
        placeholder = os.stat(path).st_size == 0
    except FileNotFoundError:
        placeholder = False
    if not placeholder:
        fs.write_atomically(path, data, sync)
        return
    fd = fs.open(path, os.O_WRONLY)
    try:
        fs.write_all(fd, data, 0)
        if sync:
            fs.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            fs.ftruncate(fd, 0)  # a placeholder again: the next flush writes it in full
        raise
    finally:
        fs.close(fd)


def create_epoch_placeholder(fs: FileSystem, path: str) -> None:
    """An empty `leader-epoch-checkpoint` for a new log, unless one exists: read as absent."""
    try:
        fd = fs.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return
    fs.close(fd)


def read_epochs(path: str) -> list[tuple[int, int]] | None:
    """`(epoch, start_offset)` pairs; None if the file is absent or an empty placeholder.

    Unlike the offset checkpoints, a file that stops short (no count line, or no newline after
    its last line: an interrupted in-place write) is corrupt, not a shorter checkpoint, so no
    prefix of a checkpoint reads as a valid one; the caller rebuilds rather than trusts it.
    """
    text = _read_text(path)
    if text is None or not text:
        return None
    if len(text.splitlines()) < 2 or not text.endswith("\n"):
        raise CheckpointError(f"{path}: cut short")
    try:
        return [(int(e), int(o)) for e, o in _decode(path, text, 2)]
    except ValueError:
        raise CheckpointError(f"{path}: malformed entry") from None


def encode_topic_id(topic_id: uuid.UUID) -> str:
    """Kafka's `Uuid.toString()`: URL-safe base64 without padding (22 characters)."""
    return base64.urlsafe_b64encode(topic_id.bytes).decode().rstrip("=")


def decode_topic_id(text: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return uuid.UUID(bytes=raw)
    except ValueError:
        raise CheckpointError(f"malformed topic id {text!r}") from None


def write_partition_metadata(
    fs: FileSystem, path: str, topic_id: uuid.UUID, sync: bool = True
) -> None:
    body = f"version: {_VERSION}\ntopic_id: {encode_topic_id(topic_id)}"
    fs.write_atomically(path, body.encode(), sync)


def read_partition_metadata(path: str) -> uuid.UUID | None:
    """The topic id stored in `partition.metadata`; None if the file is absent."""
    text = _read_text(path)
    if text is None:
        return None
    fields = dict(_split_field(path, line) for line in text.splitlines() if line.strip())
    if fields.get("version") != str(_VERSION) or "topic_id" not in fields:
        raise CheckpointError(f"{path}: malformed partition metadata")
    topic_id = decode_topic_id(fields["topic_id"])
    if topic_id.int == 0:
        raise CheckpointError(f"{path}: zero topic id")
    return topic_id


def _split_field(path: str, line: str) -> tuple[str, str]:
    key, sep, value = line.partition(":")
    if not sep:
        raise CheckpointError(f"{path}: malformed line {line!r}")
    return key.strip(), value.strip()


def write_clean_shutdown_marker(fs: FileSystem, log_dir: str, broker_epoch: int = -1) -> None:
    body = json.dumps({"version": _VERSION, "brokerEpoch": broker_epoch}, separators=(",", ":"))
    fs.write_atomically(os.path.join(log_dir, CLEAN_SHUTDOWN_MARKER), body.encode())


def has_clean_shutdown_marker(log_dir: str) -> bool:
    return os.path.exists(os.path.join(log_dir, CLEAN_SHUTDOWN_MARKER))


def remove_clean_shutdown_marker(fs: FileSystem, log_dir: str) -> None:
    """Remove the marker durably: from here on a crash must trigger recovery."""
    path = os.path.join(log_dir, CLEAN_SHUTDOWN_MARKER)
    try:
        fs.unlink(path)
    except FileNotFoundError:
        return
    fs.fsync_dir(log_dir)
