"""Topic metadata of a single-node broker: names, ids, partition counts, config overrides.

File format (`kbroker-topics.json` in the first log dir, version 1):
    {"version": 1, "topics": {"<name>": {"id": "<uuid>", "partitions": N,
                                          "configs": {"retention.ms": "1000", ...}}}}
Written with storage's `write_atomically` (temporary file, fsync, rename, directory fsync), so
a crash leaves either the old or the new file, never a torn one. Only the event loop
calls it. This is the embedded default; the ZooKeeper-backed cluster keeps the same facts in
znodes (/brokers/topics/<t>, /config/topics/<t>).

Every change is all-or-nothing: the new state is written first and becomes the one in memory
only once the file holds it. A write that fails (a full disk) raises KafkaStorageError and
leaves the store as it was, so Metadata never shows a topic that a restart would forget.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import uuid
from dataclasses import dataclass, field

from storage.errors import KafkaStorageError
from storage.fs import OS_FS

FILE_NAME = "kbroker-topics.json"
VERSION = 1
_RESERVED_IDS = (uuid.UUID(int=0), uuid.UUID(int=1))


@dataclass
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)


def new_topic_id() -> uuid.UUID:
    """A random topic id as Kafka makes them: never 0 or 1, never base64 starting with '-'."""
    while True:
        candidate = uuid.uuid4()
        text = base64.urlsafe_b64encode(candidate.bytes).decode()
        if candidate not in _RESERVED_IDS and not text.startswith("-"):
            return candidate


class TopicStore:
    """The topics this broker knows, persisted on every change."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, FILE_NAME)
        self.topics: dict[str, TopicInfo] = {}
        self.by_id: dict[uuid.UUID, TopicInfo] = {}
        self._load()

    def _load(self) -> None:
        if not os.path.exists(self.path):
            return
        with open(self.path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("version") != VERSION:
            raise ValueError(f"{self.path}: unsupported version {data.get('version')!r}")
        for name, entry in data["topics"].items():
            info = TopicInfo(name, uuid.UUID(entry["id"]), entry["partitions"], entry["configs"])
            self.topics[name] = info
            self.by_id[info.topic_id] = info

    def save(self, topics: dict[str, TopicInfo] | None = None) -> None:
        """Write `topics` (default: the current ones); KafkaStorageError if the disk refuses."""
        current = self.topics if topics is None else topics
        data = {
            "version": VERSION,
            "topics": {
                t.name: {"id": str(t.topic_id), "partitions": t.partitions, "configs": t.configs}
                for t in current.values()
            },
        }
        text = json.dumps(data, indent=1, sort_keys=True)
        try:
            OS_FS.write_atomically(self.path, text.encode("utf-8"))
        except OSError as exc:
            raise KafkaStorageError(f"cannot write {self.path}: {exc}") from exc

    @staticmethod
    def new_topic(name: str, partitions: int, configs: dict[str, str]) -> TopicInfo:
        """A topic with a fresh id, not yet in the store (see `add`)."""
        return TopicInfo(name, new_topic_id(), partitions, dict(configs))

    def add(self, info: TopicInfo) -> TopicInfo:
        """Persist a topic made by `new_topic`; KafkaStorageError leaves the store unchanged."""
        self.save({**self.topics, info.name: info})
        self.topics[info.name] = info
        self.by_id[info.topic_id] = info
        return info

    def remove(self, name: str) -> TopicInfo:
        info = self.topics[name]
        self.save({n: t for n, t in self.topics.items() if n != name})
        del self.topics[name]
        del self.by_id[info.topic_id]
        return info

    # The TopicInfo objects are shared with callers, so changes are made to them in place, and
    # only after a copy carrying the change has been saved.

    def set_partitions(self, name: str, partitions: int) -> None:
        info = self.topics[name]
        self.save({**self.topics, name: dataclasses.replace(info, partitions=partitions)})
        info.partitions = partitions

    def set_configs(self, name: str, configs: dict[str, str]) -> None:
        info = self.topics[name]
        self.save({**self.topics, name: dataclasses.replace(info, configs=dict(configs))})
        info.configs = dict(configs)
