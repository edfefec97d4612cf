"""Producer ids that stay unique across restarts (InitProducerId).

Ids are handed out from blocks of 1,000, as Kafka's `/latest_producer_id_block` does: the end of
the current block is written (atomically, fsynced) before any id of it is used, so after a crash
the next broker start begins at the persisted end and never reissues an id. File format:
`kbroker-producer-ids.json` in the first log dir, `{"version": 1, "block_end": N}`. Owned by the
event loop; the write of a new block is a small synchronous file write once per 1,000 producers.
"""

from __future__ import annotations

import json
import os

from storage.fs import OS_FS

FILE_NAME = "kbroker-producer-ids.json"
BLOCK_SIZE = 1000
VERSION = 1


class ProducerIdManager:
    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, FILE_NAME)
        self._next = self._block_end = self._load()

    def _load(self) -> int:
        if not os.path.exists(self.path):
            return 0
        with open(self.path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("version") != VERSION:
            raise ValueError(f"{self.path}: unsupported version {data.get('version')!r}")
        end = data["block_end"]
        if not isinstance(end, int) or end < 0:
            raise ValueError(f"{self.path}: invalid block_end {end!r}")
        return end

    def _persist(self, block_end: int) -> None:
        data = json.dumps({"version": VERSION, "block_end": block_end}).encode("utf-8")
        OS_FS.write_atomically(self.path, data)

    def next_id(self) -> int:
        if self._next >= self._block_end:
            self._persist(self._next + BLOCK_SIZE)
            self._block_end = self._next + BLOCK_SIZE
        producer_id = self._next
        self._next += 1
        return producer_id
