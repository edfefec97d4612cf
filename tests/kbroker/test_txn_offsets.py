"""TxnOffsetCommit over the wire: offsets pending until a transaction marker, across restarts.

The producer id comes from InitProducerId; the transaction's marker is written the way the
transaction coordinator will write it, by calling `Broker.write_txn_marker` on the broker's
event loop. OffsetFetch reads the group's offsets with and without `require_stable`.
"""

from __future__ import annotations

import itertools
import pathlib
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Producer

from kbroker.broker import Broker as LiveBroker
from kbroker.groups.runtime import GROUP_METADATA_TOPIC
from kbroker.testing import Broker
from protocol import records
from protocol.error_codes import ErrorCode
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from protocol.messages.offset_fetch_request import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
    OffsetFetchRequestTopic,
    OffsetFetchRequestTopics,
)
from protocol.messages.txn_offset_commit_request import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)
from tests.kbroker.process import BrokerProcess
from tests.kbroker.wire import WireClient

E = ErrorCode
UNSTABLE = "unstable"
_groups = itertools.count()


@pytest.fixture
def client(broker: Broker) -> Iterator[WireClient]:
    c = WireClient(broker.bootstrap_servers)
    yield c
    c.close()


def new_group() -> str:
    return f"txn-group-{next(_groups)}"


def init_producer_id(client: WireClient) -> tuple[int, int]:
    response = client.call(InitProducerIdRequest(transactional_id=None), 4)
    assert response.error_code == E.NONE
    return response.producer_id, response.producer_epoch


def txn_commit(
    client: WireClient,
    group: str,
    producer: tuple[int, int],
    topic: str,
    committed: dict[int, int],
    version: int = 3,
) -> dict[int, ErrorCode]:
    request = TxnOffsetCommitRequest(
        transactional_id="txn-1",
        group_id=group,
        producer_id=producer[0],
        producer_epoch=producer[1],
        topics=[
            TxnOffsetCommitRequestTopic(
                topic,
                [TxnOffsetCommitRequestPartition(p, o, -1, f"m{o}") for p, o in committed.items()],
            )
        ],
    )
    response = client.call(request, version)
    [answered] = response.topics
    assert answered.name == topic
    return {p.partition_index: E(p.error_code) for p in answered.partitions}


def plain_commit(client: WireClient, group: str, topic: str, committed: dict[int, int]) -> None:
    partitions = [OffsetCommitRequestPartition(p, o) for p, o in committed.items()]
    request = OffsetCommitRequest(
        group_id=group,
        generation_id_or_member_epoch=-1,
        topics=[OffsetCommitRequestTopic(name=topic, partitions=partitions)],
    )
    response = client.call(request, 8)
    assert {p.error_code for t in response.topics for p in t.partitions} == {E.NONE}


def fetch(
    client: WireClient,
    group: str,
    topic: str,
    partitions: list[int],
    require_stable: bool,
    version: int = 8,
) -> dict[int, int | str]:
    """partition -> committed offset (-1: none), or UNSTABLE."""
    if version >= 8:
        request = OffsetFetchRequest(
            groups=[
                OffsetFetchRequestGroup(
                    group, topics=[OffsetFetchRequestTopics(topic, partition_indexes=partitions)]
                )
            ],
            require_stable=require_stable,
        )
        response = client.call(request, version)
        [answered] = response.groups
        assert answered.error_code == E.NONE
        found = [p for t in answered.topics for p in t.partitions]
    else:
        request = OffsetFetchRequest(
            group_id=group,
            topics=[OffsetFetchRequestTopic(topic, partitions)],
            require_stable=require_stable,
        )
        response = client.call(request, version)
        assert response.error_code == E.NONE
        found = [p for t in response.topics for p in t.partitions]
    out: dict[int, int | str] = {}
    for p in found:
        if p.error_code == E.UNSTABLE_OFFSET_COMMIT:
            assert p.committed_offset == -1
            out[p.partition_index] = UNSTABLE
        else:
            assert p.error_code == E.NONE
            out[p.partition_index] = p.committed_offset
    return out


def write_marker(broker: Broker, group: str, producer: tuple[int, int], commit: bool) -> int:
    def write(b: LiveBroker) -> int:
        index = b.groups.shard_for(group).partition
        return b.write_txn_marker(GROUP_METADATA_TOPIC, index, *producer, 0, commit)

    return broker.run(write).result(10)


# ---------------------------------------------------------------------- in-process broker


def test_offsets_stay_pending_until_the_commit_marker(
    broker: Broker, client: WireClient, new_topic: Callable[..., str]
) -> None:
    topic, group = new_topic(2), new_group()
    producer = init_producer_id(client)
    assert txn_commit(client, group, producer, topic, {0: 10, 1: 11}) == {0: E.NONE, 1: E.NONE}
    assert fetch(client, group, topic, [0, 1], require_stable=True) == {0: UNSTABLE, 1: UNSTABLE}
    assert fetch(client, group, topic, [0, 1], require_stable=True, version=7) == {
        0: UNSTABLE,
        1: UNSTABLE,
    }
    assert fetch(client, group, topic, [0, 1], require_stable=False) == {0: -1, 1: -1}
    write_marker(broker, group, producer, commit=True)
    assert fetch(client, group, topic, [0, 1], require_stable=True) == {0: 10, 1: 11}
    assert fetch(client, group, topic, [0, 1], require_stable=False, version=5) == {0: 10, 1: 11}


def test_an_abort_marker_leaves_the_last_committed_offset(
    broker: Broker, client: WireClient, new_topic: Callable[..., str]
) -> None:
    topic, group = new_topic(1), new_group()
    plain_commit(client, group, topic, {0: 5})
    producer = init_producer_id(client)
    assert txn_commit(client, group, producer, topic, {0: 10}) == {0: E.NONE}
    assert fetch(client, group, topic, [0], require_stable=False) == {0: 5}
    assert fetch(client, group, topic, [0], require_stable=True) == {0: UNSTABLE}
    write_marker(broker, group, producer, commit=False)
    assert fetch(client, group, topic, [0], require_stable=True) == {0: 5}


def test_the_offsets_are_one_transactional_batch_of_the_producer(
    broker: Broker, client: WireClient, new_topic: Callable[..., str]
) -> None:
    topic, group = new_topic(3), new_group()
    producer = init_producer_id(client)
    assert txn_commit(client, group, producer, topic, {0: 1, 1: 2, 2: 3}) == dict.fromkeys(
        range(3), E.NONE
    )
    marker_offset = write_marker(broker, group, producer, commit=True)

    def batches(b: LiveBroker) -> list[records.BatchHeader]:
        partition = b.partition(GROUP_METADATA_TOPIC, b.groups.shard_for(group).partition)
        log = partition.log
        data = log.read(log.log_start_offset, 1 << 20, log.log_end_offset).read_bytes()
        return [h for _, h in records.iter_batch_headers(data)]

    mine = [h for h in broker.run(batches).result(10) if h.producer_id == producer[0]]
    data, marker = mine
    assert data.is_transactional and not data.is_control and data.records_count == 3
    assert data.producer_epoch == producer[1]
    assert marker.is_control and marker.base_offset == marker_offset


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_every_served_version(
    broker: Broker, client: WireClient, new_topic: Callable[..., str], version: int
) -> None:
    topic, group = new_topic(1), new_group()
    producer = init_producer_id(client)
    assert txn_commit(client, group, producer, topic, {0: 7}, version=version) == {0: E.NONE}
    write_marker(broker, group, producer, commit=True)
    assert fetch(client, group, topic, [0], require_stable=True) == {0: 7}


def test_v5_is_not_advertised_and_unknown_partitions_are_refused(
    client: WireClient, new_topic: Callable[..., str]
) -> None:
    versions = client.call(ApiVersionsRequest(), 2)
    [txn] = [k for k in versions.api_keys if k.api_key == 28]
    assert (txn.min_version, txn.max_version) == (0, 4)  # v5 is transaction version 2
    topic, group = new_topic(1), new_group()
    producer = init_producer_id(client)
    assert txn_commit(client, group, producer, topic, {0: 1, 5: 1}) == {
        0: E.NONE,
        5: E.UNKNOWN_TOPIC_OR_PARTITION,
    }
    assert txn_commit(client, group, (-1, -1), topic, {0: 1}) == {0: E.INVALID_PRODUCER_ID_MAPPING}


# ---------------------------------------------------------------------- restarts


def test_a_restart_between_the_commit_and_the_marker(tmp_path: pathlib.Path) -> None:
    """kill -9 after TxnOffsetCommit: the offsets load as pending; the marker written after
    the restart commits them; and a further restart replays the marker from the log."""
    data_dir = str(tmp_path / "data")
    overrides = ("offsets.topic.num.partitions=3", "num.partitions=2")
    topic, group = "events", "restarted-group"
    proc = BrokerProcess(data_dir, *overrides)
    try:
        bootstrap = proc.start()
        producer_client = Producer({"bootstrap.servers": bootstrap})
        producer_client.produce(topic, b"x", partition=1)
        assert producer_client.flush(10) == 0
        client = WireClient(bootstrap)
        producer = init_producer_id(client)
        assert txn_commit(client, group, producer, topic, {0: 3, 1: 4}) == {0: E.NONE, 1: E.NONE}
        client.close()
        proc.kill()

        settings = dict(item.split("=", 1) for item in overrides)
        with Broker(settings, data_dir=data_dir) as broker:
            client = WireClient(broker.bootstrap_servers)
            assert fetch(client, group, topic, [0, 1], True) == {0: UNSTABLE, 1: UNSTABLE}
            assert fetch(client, group, topic, [0, 1], False) == {0: -1, 1: -1}
            write_marker(broker, group, producer, commit=True)
            assert fetch(client, group, topic, [0, 1], True) == {0: 3, 1: 4}
            client.close()

        bootstrap = proc.start()
        client = WireClient(bootstrap)
        assert fetch(client, group, topic, [0, 1], True) == {0: 3, 1: 4}
        client.close()
    finally:
        proc.ensure_stopped()
