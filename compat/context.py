"""What a scenario sees while it runs in one cell: its client (through typed helpers over the
driver protocol), the harness's own wire view of the broker, unique names, and `check`."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from compat.session import ClientError, Rec, Session
from compat.wire import BrokerLacks, Cluster, WireError

T = TypeVar("T")
_serial = itertools.count()


class CheckFailed(Exception):
    """What the client or the broker did differs from what the scenario expects."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def show(records: list[Rec], limit: int = 6) -> str:
    """A short, readable rendering of records for failure messages."""
    parts = []
    for r in records[:limit]:
        value = r.value if r.value is None or len(r.value) <= 24 else r.value[:24] + b"..."
        parts.append(f"(p{r.partition}@{r.offset} key={r.key!r} value={value!r})")
    more = f" ... and {len(records) - limit} more" if len(records) > limit else ""
    return ", ".join(parts) + more


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int


class Context:
    def __init__(self, scenario: str, client: str, session: Session, cluster: Cluster) -> None:
        self.scenario = scenario
        self.client = client
        self.session = session
        self.cluster = cluster
        self.run_id = f"{int(time.time()) % 100000}{next(_serial)}"

    def name(self, kind: str) -> str:
        """A topic, group or transactional id unique to this cell and run."""
        raw = f"compat-{self.scenario}-{self.client}-{kind}-{self.run_id}"
        return re.sub(r"[^a-zA-Z0-9._-]", "-", raw)

    # ------------------------------------------------------------------ set-up (harness side)

    def topic(
        self,
        partitions: int = 1,
        configs: dict[str, str] | None = None,
        min_partitions: int | None = None,
    ) -> Topic:
        """A new topic made by the harness, not by the client under test.

        Without CreateTopics, a topic the broker auto-creates will do if no configs are needed
        and it gets at least `min_partitions` partitions (librdkafka's mock cluster gives 4).
        """
        name = self.name("topic")
        if "CreateTopics" not in self.cluster.advertised_names():
            if configs or min_partitions is None:
                raise BrokerLacks(["CreateTopics"])
            got = len(self.cluster.partitions(name, auto_create=True))
            if got < min_partitions:
                raise BrokerLacks(["CreateTopics"])
            self.cluster.wait_for_leaders(name, got)
            return Topic(name, got)
        self.cluster.create_topic(name, partitions, configs or {})
        return Topic(name, partitions)

    # ------------------------------------------------------------------ client ops

    def op(self, name: str, timeout_s: float = 30.0, **args: Any) -> dict[str, Any]:
        return self.session.call(
            name, timeout_s=timeout_s, timeout_ms=int(timeout_s * 1000), **args
        )

    def produce(
        self,
        topic: str,
        records: list[Rec],
        compression: str = "none",
        idempotent: bool = False,
    ) -> list[tuple[int, int]] | None:
        """Produce in order and wait for every acknowledgement; (partition, offset) per record
        when the client reports them (kcat does not)."""
        result = self.op(
            "produce",
            topic=topic,
            records=[r.to_wire() for r in records],
            compression=compression,
            idempotent=idempotent,
        )
        offsets = result.get("offsets")
        return None if offsets is None else [(int(p), int(o)) for p, o in offsets]

    def consume(
        self,
        topic: str,
        count: int,
        partitions: list[int] | None = None,
        from_timestamp: int | None = None,
        read_committed: bool = False,
        timeout_s: float = 30.0,
    ) -> list[Rec]:
        """Read `count` records from these partitions (partition 0 by default), from the
        beginning or from the first offset at `from_timestamp`, without committing anything.
        Returns early only on timeout (then with what it has)."""
        result = self.op(
            "consume",
            timeout_s=timeout_s,
            topic=topic,
            partitions=partitions if partitions is not None else [0],
            count=count,
            from_timestamp=from_timestamp,
            isolation="read_committed" if read_committed else "read_uncommitted",
            group=self.name("reader"),  # only for clients that cannot consume without one
        )
        return [Rec.from_wire(r) for r in result["records"]]

    def expect_error(self, pattern: str, action: Callable[[], T]) -> ClientError:
        """Run `action`, which must fail with a client error matching `pattern` (a regex tried
        against the error's code and message)."""
        try:
            action()
        except ClientError as exc:
            text = f"{exc.code or ''} {exc.message}"
            check(
                re.search(pattern, text, re.IGNORECASE) is not None,
                f"expected an error matching /{pattern}/, got: {text.strip()}",
            )
            return exc
        raise CheckFailed(f"expected an error matching /{pattern}/, but the operation succeeded")

    def eventually(self, what: str, probe: Callable[[], T], ok: Callable[[T], bool]) -> T:
        """Retry `probe` for up to 10 s until `ok(result)`: for metadata that propagates."""
        deadline = time.monotonic() + 10
        while True:
            try:
                value = probe()
                if ok(value):
                    return value
                last = f"last saw {value!r}"
            except (ClientError, WireError) as exc:
                last = f"last error: {exc}"
            if time.monotonic() > deadline:
                raise CheckFailed(f"{what}: not within 10 s ({last})")
            time.sleep(0.2)
