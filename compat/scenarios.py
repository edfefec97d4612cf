"""The scenarios, each defined once and run through every client that can express it.

A scenario is a function of a `Context`: it makes its topics through the harness, drives the
client through the driver protocol, and checks what came back, and where a client could fake
it (compression, idempotence, transaction markers, committed offsets) it checks the log itself
through the harness's own wire view. It declares the client capabilities it uses (see
registry.py) and the APIs the harness needs for its own set-up and checks.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from compat.context import Context, check, show
from compat.registry import CODECS
from compat.session import Rec
from protocol.records import ControlType, parse_control_record

BASE_TS = 1_700_000_000_000  # 2023-11-14, in ms


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    capabilities: tuple[str, ...]
    harness_apis: tuple[str, ...]
    run: Callable[[Context], None]

    @property
    def description(self) -> str:
        return " ".join((self.run.__doc__ or "").split())


SCENARIOS: list[Scenario] = []

# CreateTopics is added at run time only when a topic needs it (see Context.topic).
SETUP = ("Metadata",)


def scenario(
    name: str, title: str, capabilities: tuple[str, ...], harness_apis: tuple[str, ...] = ()
) -> Callable[[Callable[[Context], None]], Callable[[Context], None]]:
    def register(fn: Callable[[Context], None]) -> Callable[[Context], None]:
        SCENARIOS.append(Scenario(name, title, capabilities, SETUP + harness_apis, fn))
        return fn

    return register


def on_partition(records: list[Rec], partition: int = 0) -> list[Rec]:
    return [replace(r, partition=partition) for r in records]


def kv(records: list[Rec]) -> list[tuple[bytes | None, bytes | None]]:
    return [(r.key, r.value) for r in records]


def check_offsets(produced: list[tuple[int, int]] | None, expected: list[tuple[int, int]]) -> None:
    """Offsets the client reported on delivery, when it reports them."""
    if produced is not None:
        check(produced == expected, f"delivery reports {produced[:8]}..., expected {expected[:8]}")


def check_same(got: list[Rec], want: list[Rec], what: str = "records") -> None:
    check(
        kv(got) == kv(want),
        f"read back {len(got)} {what}: {show(got)}; expected {len(want)}: {show(want)}",
    )


# --------------------------------------------------------------------------- produce, consume

BASIC = on_partition(
    [
        Rec(b"k0", b"hello"),
        Rec(None, b"a record without a key"),
        Rec(b"k2", None),  # a tombstone: null value
        Rec(b"k3", b""),  # empty, which is not null
        Rec(b"k4", bytes(range(256))),  # every byte value, NUL included
        Rec(b"k\xc3\xa9\xff", "ünïcødé ✓".encode()),  # a key that is not valid UTF-8
    ]
)


@scenario(
    "produce-consume",
    "Produce and consume: keys, null keys, null and empty values",
    ("produce", "consume"),
)
def produce_consume(ctx: Context) -> None:
    """Six records on one partition: a null key, a null value (tombstone), an empty value, every
    byte value, a key that is not UTF-8. Read back from the beginning: same keys, values and
    order, offsets 0-5."""
    topic = ctx.topic(1, min_partitions=1)
    check_offsets(ctx.produce(topic.name, BASIC), [(0, i) for i in range(len(BASIC))])
    got = ctx.consume(topic.name, len(BASIC))
    check_same(got, BASIC)
    check([r.offset for r in got] == list(range(len(BASIC))), f"offsets {[r.offset for r in got]}")


HEADERS = on_partition(
    [
        Rec(b"h0", b"v0", [("trace", b"t-1"), ("dup", b"1"), ("dup", b"2"), ("empty", b"")]),
        Rec(b"h1", b"v1"),
        Rec(b"h2", b"v2", [("trace", b"t-2")]),
    ]
)


@scenario(
    "headers",
    "Record headers: repeated keys, empty values, order",
    ("produce", "produce.headers", "consume"),
)
def headers(ctx: Context) -> None:
    """Three records: one with four headers (a key repeated, an empty value), one with none, one
    with one. Read back: the same headers in the same order."""
    topic = ctx.topic(1, min_partitions=1)
    ctx.produce(topic.name, HEADERS)
    got = ctx.consume(topic.name, len(HEADERS))
    check_same(got, HEADERS)
    for want, have in zip(HEADERS, got, strict=True):
        check(
            have.headers == want.headers,
            f"{want.key!r}: headers {have.headers}, not {want.headers}",
        )


TIMESTAMPS = on_partition(
    [
        Rec(b"t0", b"now-ish", timestamp=BASE_TS),
        Rec(b"t1", b"a day earlier", timestamp=BASE_TS - 86_400_000),
        Rec(b"t2", b"later", timestamp=BASE_TS + 12_345),
    ]
)


@scenario(
    "timestamps",
    "Record timestamps (CreateTime), out of order",
    ("produce", "produce.timestamps", "consume"),
)
def timestamps(ctx: Context) -> None:
    """Three records with explicit CreateTime timestamps, not in order. Read back: each record
    carries its own timestamp."""
    topic = ctx.topic(1, min_partitions=1)
    ctx.produce(topic.name, TIMESTAMPS)
    got = ctx.consume(topic.name, len(TIMESTAMPS))
    check_same(got, TIMESTAMPS)
    have = [r.timestamp for r in got]
    check(have == [r.timestamp for r in TIMESTAMPS], f"timestamps {have}")


def _compression(codec: str) -> Callable[[Context], None]:
    def run(ctx: Context) -> None:
        topic = ctx.topic(1, min_partitions=1)
        records = on_partition([Rec(b"c%d" % i, b"compressible %d " % i * 20) for i in range(50)])
        ctx.produce(topic.name, records, compression=codec)
        check_same(ctx.consume(topic.name, len(records)), records)
        _, batches = ctx.cluster.fetch(topic.name, 0)
        codecs = sorted({b.header.compression.name.lower() for b in batches})
        check(codecs == [codec], f"the log holds {codecs} batches, not {codec}")

    run.__doc__ = f"""Fifty compressible records produced with {codec}; read back the same, and
    the log (fetched by the harness) holds {codec} batches only."""
    return run


for _codec in CODECS:
    scenario(
        f"compression-{_codec}",
        f"Compression: {_codec}",
        ("produce", f"compression.{_codec}", "consume"),
        ("Fetch",),
    )(_compression(_codec))


LIMIT = 100_000


@scenario(
    "large-message",
    "max.message.bytes: a record just under it, one above it",
    ("produce", "consume"),
    ("Fetch",),
)
def large_message(ctx: Context) -> None:
    """Topic max.message.bytes=100000. A record of 99,800 random bytes is accepted; one of
    150,000 (under every client's own limit) is refused with MESSAGE_TOO_LARGE; the log then
    holds the first one only."""
    topic = ctx.topic(1, configs={"max.message.bytes": str(LIMIT)})
    near = Rec(b"near", os.urandom(LIMIT - 200), partition=0)
    above = Rec(b"above", os.urandom(LIMIT + 50_000), partition=0)
    check_offsets(ctx.produce(topic.name, [near]), [(0, 0)])
    ctx.expect_error(
        r"MESSAGE_TOO_LARGE|MSG_SIZE_TOO_LARGE|MessageSizeTooLarge|too large",
        lambda: ctx.produce(topic.name, [above]),
    )
    check_same(ctx.consume(topic.name, 1), [near])
    high_watermark, _ = ctx.cluster.fetch(topic.name, 0)
    check(high_watermark == 1, f"high watermark {high_watermark} after one accepted record")


PARTITIONS = 100


@scenario(
    "many-partitions",
    f"{PARTITIONS} partitions: one record each, read back by partition",
    ("produce", "consume"),
)
def many_partitions(ctx: Context) -> None:
    """A topic of 100 partitions; one record produced to each, explicitly; read back from all of
    them: every record on the partition it was sent to, at offset 0."""
    topic = ctx.topic(PARTITIONS)
    records = [Rec(b"p%d" % p, b"for partition %d" % p, partition=p) for p in range(PARTITIONS)]
    check_offsets(ctx.produce(topic.name, records), [(p, 0) for p in range(PARTITIONS)])
    got = ctx.consume(topic.name, PARTITIONS, partitions=list(range(PARTITIONS)))
    placed = sorted((r.partition or 0, r.offset or 0, r.key or b"") for r in got)
    want = [(p, 0, b"p%d" % p) for p in range(PARTITIONS)]
    check(placed == want, f"read back {len(got)} records; misplaced: {set(placed) ^ set(want)}")


SEEK = on_partition([Rec(b"s%d" % i, b"v%d" % i, timestamp=BASE_TS + i * 1000) for i in range(10)])


@scenario(
    "seek-by-timestamp",
    "Offsets for times, and consuming from a timestamp",
    ("produce", "produce.timestamps", "offsets_for_times", "consume"),
)
def seek_by_timestamp(ctx: Context) -> None:
    """Ten records one second apart. The offset for a time between the 5th and 6th is 5, for a
    time before the first is 0, and past the last there is none (Kafka answers -1; a client
    may show that as the end offset, 10). Consuming from that time gives records 5-9."""
    topic = ctx.topic(1, min_partitions=1)
    ctx.produce(topic.name, SEEK)

    def offset_for(ts: int) -> Any:
        return ctx.op("offset_for_time", topic=topic.name, partition=0, timestamp=ts)["offset"]

    check(offset_for(BASE_TS + 4500) == 5, f"offset for +4.5 s: {offset_for(BASE_TS + 4500)}")
    check(offset_for(BASE_TS - 1) == 0, f"offset before the first: {offset_for(BASE_TS - 1)}")
    past = offset_for(BASE_TS + 60_000)
    check(past in (None, -1, len(SEEK)), f"offset past the last record: {past}")
    check_same(ctx.consume(topic.name, 5, from_timestamp=BASE_TS + 4500), SEEK[5:])


# --------------------------------------------------------------------------- groups


def _member_records(result: dict[str, Any]) -> list[tuple[int, Rec]]:
    return [(int(r.get("member", 0)), Rec.from_wire(r)) for r in result["records"]]


@scenario(
    "consumer-group",
    "Consumer group of 3: assignment, commit, resume",
    ("produce", "group"),
    ("FindCoordinator", "OffsetFetch"),
)
def consumer_group(ctx: Context) -> None:
    """Three members join a group on a 6-partition topic; each gets a share, together all of it.
    30 records are produced and consumed exactly once, each by the member that owns its
    partition; the members commit and leave; the group's committed offsets (asked of the
    coordinator by the harness) are the end offsets. 12 more records are produced; a new member
    of the same group resumes and reads exactly those 12."""
    topic = ctx.topic(6, min_partitions=3)
    group = ctx.name("group")
    parts = list(range(topic.partitions))
    join = ctx.op("group_join", timeout_s=60, group=group, topic=topic.name, members=3)
    owned = [sorted(a) for a in join["assignments"]]
    check(
        len(owned) == 3 and all(owned) and sorted(p for a in owned for p in a) == parts,
        f"assignments {owned} do not split partitions {parts} among 3 members",
    )
    first = [Rec(b"g%d" % i, b"first-%d" % i, partition=i % len(parts)) for i in range(30)]
    ctx.produce(topic.name, first)
    got = _member_records(ctx.op("group_consume", timeout_s=60, count=len(first)))
    positions = Counter((r.partition, r.offset) for _, r in got)
    check(
        len(positions) == len(first) and max(positions.values()) == 1,
        f"consumed {len(got)} records, {len(positions)} distinct; expected {len(first)} once",
    )
    check(
        sorted(r.value or b"" for _, r in got) == sorted(r.value or b"" for r in first),
        "consumed values differ from produced",
    )
    strays = [(m, r.partition) for m, r in got if r.partition not in owned[m]]
    check(not strays, f"(member, partition) outside the assignment: {strays[:5]}")
    ctx.op("group_commit")
    ctx.op("group_close")
    committed = ctx.cluster.committed(group, topic.name, parts)
    want = Counter(r.partition for r in first)
    check(committed == {p: want[p] for p in parts}, f"committed {committed}; want {dict(want)}")

    second = [Rec(b"r%d" % i, b"second-%d" % i, partition=i % len(parts)) for i in range(12)]
    ctx.produce(topic.name, second)
    ctx.op("group_join", timeout_s=60, group=group, topic=topic.name, members=1)
    again = [r for _, r in _member_records(ctx.op("group_consume", timeout_s=60, count=12))]
    ctx.op("group_close")
    check(sorted(kv(again)) == sorted(kv(second)), f"resumed with {show(again)}")


@scenario(
    "admin-groups",
    "Admin: list and describe groups",
    ("produce", "group", "admin.list_groups", "admin.describe_group"),
)
def admin_groups(ctx: Context) -> None:
    """A one-member group consumes a record and commits. Listing groups shows it; describing it
    shows state Stable with one member; after the member leaves, Empty with none."""
    topic = ctx.topic(1, min_partitions=1)
    group = ctx.name("group")
    ctx.produce(topic.name, [Rec(b"a", b"b", partition=0)])
    ctx.op("group_join", timeout_s=60, group=group, topic=topic.name, members=1)
    ctx.op("group_consume", count=1)
    ctx.op("group_commit")
    ctx.eventually(
        "the group is listed",
        lambda: ctx.op("list_groups")["groups"],
        lambda groups: group in groups,
    )
    described = ctx.op("describe_group", group=group)
    state = (str(described["state"]).lower(), described["members"])
    check(state == ("stable", 1), f"described as {state}, expected ('stable', 1)")
    ctx.op("group_close")
    ctx.eventually(
        "the group is empty after the member left",
        lambda: ctx.op("describe_group", group=group),
        lambda d: (str(d["state"]).lower(), d["members"]) == ("empty", 0),
    )


# --------------------------------------------------------------------------- admin


@scenario(
    "admin-topics",
    "Admin: create, describe, alter configs, add partitions, delete records, delete topic",
    (
        "admin.create_topic",
        "admin.describe_topic",
        "admin.describe_configs",
        "admin.alter_configs",
        "admin.create_partitions",
        "produce",
        "admin.delete_records",
        "admin.delete_topic",
    ),
    ("ListOffsets",),
)
def admin_topics(ctx: Context) -> None:
    """The client creates a topic (3 partitions, retention.ms=123456789), describes it (3
    partitions) and its configs, alters retention.ms to 987654321 and reads it back, grows the
    topic to 5 partitions, produces 5 records and deletes those before offset 3 (the harness sees
    log start offset 3), then deletes the topic (the harness sees it gone)."""
    name = ctx.name("admin")
    ctx.op("create_topic", topic=name, partitions=3, configs={"retention.ms": "123456789"})

    def partitions() -> Any:
        return ctx.op("describe_topic", topic=name)["partitions"]

    def retention() -> Any:
        return ctx.op("describe_configs", topic=name, names=["retention.ms"])["configs"].get(
            "retention.ms"
        )

    ctx.eventually("3 partitions described", partitions, lambda n: n == 3)
    check(retention() == "123456789", f"retention.ms described as {retention()!r}")
    ctx.op("alter_configs", topic=name, configs={"retention.ms": "987654321"})
    ctx.eventually("altered retention.ms described", retention, lambda v: v == "987654321")
    ctx.op("create_partitions", topic=name, count=5)
    ctx.eventually("5 partitions described", partitions, lambda n: n == 5)
    ctx.produce(name, on_partition([Rec(b"d%d" % i, b"x") for i in range(5)]))
    low = ctx.op("delete_records", topic=name, partition=0, offset=3).get("low_watermark")
    check(low in (None, 3), f"delete_records reported low watermark {low}, expected 3")
    start = ctx.cluster.list_offset(name, 0, -2)
    check(start == 3, f"log start offset {start} after deleting records before 3")
    ctx.op("delete_topic", topic=name)
    ctx.eventually("the topic is gone", lambda: ctx.cluster.topic_exists(name), lambda e: not e)


# --------------------------------------------------------------------------- exactly once


@scenario(
    "idempotent-produce",
    "Idempotent producer: producer id and sequences on the log",
    ("produce", "produce.idempotent", "consume"),
    ("Fetch",),
)
def idempotent_produce(ctx: Context) -> None:
    """Twenty records from an idempotent producer are read back once each, in order; the log's
    batches (fetched by the harness) carry a producer id and sequence numbers that start at 0
    and run on without gaps."""
    topic = ctx.topic(1, min_partitions=1)
    records = on_partition([Rec(b"i%d" % i, b"idempotent-%d" % i) for i in range(20)])
    check_offsets(ctx.produce(topic.name, records, idempotent=True), [(0, i) for i in range(20)])
    check_same(ctx.consume(topic.name, len(records)), records)
    high_watermark, batches = ctx.cluster.fetch(topic.name, 0)
    check(high_watermark == len(records), f"high watermark {high_watermark}")
    ids = {b.header.producer_id for b in batches}
    check(len(ids) == 1 and min(ids) >= 0, f"producer ids on the log: {sorted(ids)}")
    sequences = [(b.header.base_sequence, b.header.records_count) for b in batches]
    expected_next = 0
    for base, count in sequences:
        check(base == expected_next, f"batch sequences (base, count) {sequences}")
        expected_next = base + count


@scenario(
    "transactions",
    "Transactions: commit, abort, read_committed",
    ("transactions", "consume", "consume.read_committed"),
    ("Fetch",),
)
def transactions(ctx: Context) -> None:
    """One transactional producer commits 3 records, aborts 3, commits 3. A read_uncommitted
    consumer reads all 9 records; a read_committed one reads the 6 committed ones; the log holds
    three control batches, COMMIT, ABORT, COMMIT, and only transactional batches."""
    topic = ctx.topic(1, min_partitions=1)
    runs = [
        (True, [Rec(b"a%d" % i, b"commit-1-%d" % i) for i in range(3)]),
        (False, [Rec(b"b%d" % i, b"abort-%d" % i) for i in range(3)]),
        (True, [Rec(b"c%d" % i, b"commit-2-%d" % i) for i in range(3)]),
    ]
    txns = [{"commit": c, "records": [r.to_wire() for r in on_partition(rs)]} for c, rs in runs]
    ctx.op(
        "transaction",
        timeout_s=60,
        transactional_id=ctx.name("txn"),
        topic=topic.name,
        transactions=txns,
    )
    committed = [r for ok, rs in runs if ok for r in rs]
    everything = [r for _, rs in runs for r in rs]
    check_same(ctx.consume(topic.name, 9), everything, "read_uncommitted")
    check_same(ctx.consume(topic.name, 6, read_committed=True), committed, "read_committed")
    _, batches = ctx.cluster.fetch(topic.name, 0)
    markers = [parse_control_record(b.records[0])[0].name for b in batches if b.header.is_control]
    want = [ControlType.COMMIT.name, ControlType.ABORT.name, ControlType.COMMIT.name]
    check(markers == want, f"control batches on the log: {markers}, expected {want}")
    check(all(b.header.is_transactional for b in batches), "a batch is not transactional")


SCENARIOS_BY_NAME = {s.name: s for s in SCENARIOS}
assert len(SCENARIOS_BY_NAME) == len(SCENARIOS), "two scenarios share a name"
