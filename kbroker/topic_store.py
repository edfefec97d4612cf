"""Topic metadata of a single-node broker: names, ids, partition counts, config overrides.

File format (`kbroker-topics.json` in the first log dir, version 1):
    {"version": 1, "topics": {"<name>": {"id": "<uuid>", "partitions": N,
                                          "configs": {"retention.ms": "1000", ...}}}}
Written with storage's `write_atomically` (temporary file, fsync, rename, directory fsync), so
a crash leaves either the old or the new file, never a torn one. Only the event loop
calls it. This is the embedded default; the ZooKeeper-backed cluster keeps the same facts in
znodes (/brokers/topics/<t>, /config/topics/<t>).
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass, field

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

    def save(self) -> None:
        data = {
            "version": VERSION,
            "topics": {
                t.name: {"id": str(t.topic_id), "partitions": t.partitions, "configs": t.configs}
                for t in self.topics.values()
            },
        }
        text = json.dumps(data, indent=1, sort_keys=True)
        OS_FS.write_atomically(self.path, text.encode("utf-8"))

    def add(self, name: str, partitions: int, configs: dict[str, str]) -> TopicInfo:
        info = TopicInfo(name, new_topic_id(), partitions, dict(configs))
        self.topics[name] = info
        self.by_id[info.topic_id] = info
        self.save()
        return info

    def remove(self, name: str) -> TopicInfo:
        info = self.topics.pop(name)
        del self.by_id[info.topic_id]
        self.save()
        return info

    def set_partitions(self, name: str, partitions: int) -> None:
        self.topics[name].partitions = partitions
        self.save()

    def set_configs(self, name: str, configs: dict[str, str]) -> None:
        self.topics[name].configs = dict(configs)
        self.save()
