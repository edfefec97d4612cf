"""pytest plugin: a real Kafka broker for a test suite, with no JVM and no Docker.

Installed with kbroker (entry point `pytest11: kbroker`), so its fixtures are there in every
suite that has kbroker installed; nothing starts until a test asks for one:

    kafka_broker        session scope: an ephemeral kbroker on a free port, data in a temp dir,
                        group.initial.rebalance.delay.ms=0 (a `KafkaTestBroker`)
    bootstrap_servers   session scope: its "host:port"
    kafka_topic         a fresh topic per test; `@pytest.mark.kafka_topic(partitions=3,
                        configs={...})` sets its shape (1 partition by default), as does
                        indirect parametrization (`parametrize("kafka_topic", [1, 8],
                        indirect=True)`)

    def test_orders(kafka_topic, bootstrap_servers, kafka_broker):
        produce_orders(bootstrap_servers, kafka_topic)          # the code under test
        assert [r.value for r in kafka_broker.records(kafka_topic)] == [b"o-1", b"o-2"]

`kafka_broker.records(topic)` reads back what a topic holds and `kafka_broker.committed(group,
topic)` what a group committed, for assertions, over the Kafka protocol (they are the module's
`read_records` and `committed_offsets`, and work against any broker). `pytest
--kafka-bootstrap HOST:PORT` points every fixture at a running broker instead (Apache Kafka,
say) so the same suite can check both.

The broker itself runs in this process, on its own event loop thread (`kbroker.testing.Broker`);
it is imported only when a test first asks for it, so collecting other suites costs nothing.
"""

# Imports of protocol/ and kbroker.testing sit inside the functions that use them: pytest loads
# this plugin in every run wherever kbroker is installed, and they cost ~200 ms.
# ruff: noqa: PLC0415

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from compat.wire import Cluster
    from kbroker.testing import Broker

TIMEOUT_S = 30.0
_EARLIEST, _LATEST = -2, -1
_names = itertools.count()


# --------------------------------------------------------------------------- options, markers


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kbroker", "Kafka test broker (kbroker)")
    group.addoption(
        "--kafka-bootstrap",
        metavar="HOST:PORT",
        help="use this running broker for the kafka_* fixtures instead of starting kbroker",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kafka_topic(partitions=1, configs=None): the shape of the test's kafka_topic",
    )


# --------------------------------------------------------------------------- reading back


@dataclass(frozen=True)
class Record:
    """A record as stored, for assertions."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp: int = -1


class ProtocolFailure(AssertionError):
    """The broker answered a helper's request with an error (or not at all)."""


@contextmanager
def _cluster(action: str, bootstrap: str) -> Iterator[Cluster]:
    """compat's wire client (broker-neutral, version-negotiating); a refused connection, an
    error code or an API the broker lacks becomes an assertion that says what was being done."""
    from compat.wire import BrokerLacks, Cluster, WireError

    try:
        with Cluster(bootstrap, TIMEOUT_S) as cluster:
            yield cluster
    except (WireError, BrokerLacks, OSError) as exc:
        raise ProtocolFailure(f"{action} at {bootstrap}: {exc}") from exc


def _partition(cluster: Cluster, topic: str, partition: int) -> list[Record]:
    start = cluster.list_offset(topic, partition, _EARLIEST)
    high_watermark, batches = cluster.fetch(topic, partition, start)
    return [
        Record(topic, partition, r.offset, r.key, r.value, r.headers, r.timestamp)
        for batch in batches
        if not batch.header.is_control
        for r in batch.records
        if start <= r.offset < high_watermark
    ]


def read_records(bootstrap: str, topic: str, partition: int | None = None) -> list[Record]:
    """What `topic` holds (one partition, or all of them in partition order), from its log
    start to its high watermark. Every data record is there, including those of transactions
    still open or aborted; control records are not."""
    with _cluster(f"reading {topic}", bootstrap) as cluster:
        wanted = sorted(cluster.partitions(topic)) if partition is None else [partition]
        return [r for p in wanted for r in _partition(cluster, topic, p)]


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """partition -> high watermark."""
    with _cluster(f"reading {topic}", bootstrap) as cluster:
        return {
            p: cluster.list_offset(topic, p, _LATEST) for p in sorted(cluster.partitions(topic))
        }


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """partition -> offset committed by `group` for `topic` (partitions with none left out)."""
    with _cluster(f"reading group {group}", bootstrap) as cluster:
        found = cluster.committed(group, topic, sorted(cluster.partitions(topic)))
        return {p: offset for p, offset in found.items() if offset >= 0}


def create_topic(bootstrap: str, name: str, partitions: int = 1, configs: Any = None) -> str:
    with _cluster(f"creating {name}", bootstrap) as cluster:
        cluster.create_topic(name, partitions, dict(configs or {}))
    return name


# --------------------------------------------------------------------------- fixtures


class KafkaTestBroker:
    """The session's broker: its address, and helpers to set up and to assert."""

    def __init__(self, bootstrap_servers: str, broker: Broker | None = None) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.broker = broker  # the in-process kbroker, None with --kafka-bootstrap

    def create_topic(
        self, name: str | None = None, partitions: int = 1, configs: dict[str, str] | None = None
    ) -> str:
        """Create a topic (a fresh name unless given) and wait for its leaders."""
        return create_topic(
            self.bootstrap_servers, name or f"topic-{next(_names)}", partitions, configs
        )

    def records(self, topic: str, partition: int | None = None) -> list[Record]:
        """What the topic holds, for assertions (see `read_records`)."""
        return read_records(self.bootstrap_servers, topic, partition)

    def values(self, topic: str, partition: int | None = None) -> list[bytes | None]:
        return [r.value for r in self.records(topic, partition)]

    def end_offsets(self, topic: str) -> dict[int, int]:
        return end_offsets(self.bootstrap_servers, topic)

    def committed(self, group: str, topic: str) -> dict[int, int]:
        return committed_offsets(self.bootstrap_servers, group, topic)


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest) -> Iterator[KafkaTestBroker]:
    external = request.config.getoption("--kafka-bootstrap")
    if external:
        yield KafkaTestBroker(external)
        return
    from kbroker.testing import Broker

    with Broker() as broker:
        yield KafkaTestBroker(broker.bootstrap_servers, broker)


@pytest.fixture(scope="session")
def bootstrap_servers(kafka_broker: KafkaTestBroker) -> str:
    return kafka_broker.bootstrap_servers


@pytest.fixture
def kafka_topic(kafka_broker: KafkaTestBroker, request: pytest.FixtureRequest) -> str:
    """A topic made for this test alone (named after it). Its shape comes from the
    `kafka_topic` marker, or from indirect parametrization with a partition count or a dict of
    the marker's arguments: `@pytest.mark.parametrize("kafka_topic", [1, 8], indirect=True)`."""
    marker = request.node.get_closest_marker("kafka_topic")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    param = getattr(request, "param", None)
    if param is not None:
        options.update(param if isinstance(param, dict) else {"partitions": param})
    base = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name)[:180].strip("-")
    name = f"{base}-{next(_names)}"
    return kafka_broker.create_topic(name, options.get("partitions", 1), options.get("configs"))
