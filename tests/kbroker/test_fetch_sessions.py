"""Incremental fetch sessions (KIP-227) over the wire, and the cache's rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kbroker.fetch_session import FetchSessionCache, PartitionState, next_epoch
from kbroker.testing import Broker
from protocol import records
from protocol.error_codes import ErrorCode
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic, ForgottenTopic
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from tests.kbroker.wire import WireClient


def fetch(
    client: WireClient,
    session: tuple[int, int],
    parts: dict[tuple[str, int], int],
    forgotten: tuple[tuple[str, int], ...] = (),
) -> Any:
    topics: dict[str, FetchTopic] = {}
    for (topic, p), offset in parts.items():
        entry = topics.setdefault(topic, FetchTopic(topic=topic))
        entry.partitions.append(FetchPartition(p, fetch_offset=offset, partition_max_bytes=65536))
    request = FetchRequest(
        max_wait_ms=0,
        min_bytes=0,
        session_id=session[0],
        session_epoch=session[1],
        topics=list(topics.values()),
        forgotten_topics_data=[ForgottenTopic(topic=t, partitions=[p]) for t, p in forgotten],
    )
    return client.call(request, 12)


def listed(response: Any) -> set[tuple[str, int]]:
    return {(t.topic, p.partition_index) for t in response.responses for p in t.partitions}


def produce(client: WireClient, topic: str, partition: int) -> None:
    batch = records.build_batch([(b"k", b"v", [], 1_700_000_000_000)])
    request = ProduceRequest(
        acks=1,
        timeout_ms=5000,
        topic_data=[
            TopicProduceData(name=topic, partition_data=[PartitionProduceData(partition, batch)])
        ],
    )
    assert client.call(request, 9).responses[0].partition_responses[0].error_code == 0


def test_incremental_fetch_lists_only_partitions_with_news(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=3)
    client = WireClient(broker.bootstrap_servers)
    full = fetch(client, (0, 0), {(topic, p): 0 for p in range(3)})
    session = full.session_id
    assert session != 0 and listed(full) == {(topic, 0), (topic, 1), (topic, 2)}
    quiet = fetch(client, (session, 1), {})
    assert quiet.error_code == ErrorCode.NONE and listed(quiet) == set()
    produce(client, topic, 1)
    news = fetch(client, (session, 2), {})
    assert listed(news) == {(topic, 1)}
    (partition,) = news.responses[0].partitions
    assert partition.high_watermark == 1 and len(bytes(partition.records)) > 0
    # the client moves past the record: nothing new, and partition 1 is not listed again
    assert listed(fetch(client, (session, 3), {(topic, 1): 1})) == set()
    # forgotten partitions leave the session
    fetch(client, (session, 4), {}, forgotten=((topic, 2),))
    produce(client, topic, 2)
    assert listed(fetch(client, (session, 5), {})) == set()
    client.close()


def test_session_errors_and_sessionless_fetches(
    broker: Broker, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    client = WireClient(broker.bootstrap_servers)
    session = fetch(client, (0, 0), {(topic, 0): 0}).session_id
    wrong_epoch = fetch(client, (session, 7), {})
    assert wrong_epoch.error_code == ErrorCode.INVALID_FETCH_SESSION_EPOCH
    unknown = fetch(client, (session + 1 if session < 2**31 - 1 else 1, 1), {})
    assert unknown.error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    closing = fetch(client, (session, -1), {(topic, 0): 0})  # final epoch: full, no session
    assert closing.session_id == 0 and listed(closing) == {(topic, 0)}
    assert fetch(client, (session, 1), {}).error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    client.close()


def test_cache_evicts_least_recently_used() -> None:
    cache = FetchSessionCache(max_sessions=2)
    ids = [cache.new_context(0, 0, [], [], True).session_id for _ in range(2)]
    cache.new_context(ids[0], 1, [], [], True)  # touch the first
    third = cache.new_context(0, 0, [(("t", 0), PartitionState(0, 1, -1))], [], True)
    assert set(cache.sessions) == {ids[0], third.session_id}


def test_epoch_wraps_to_one() -> None:
    assert next_epoch(2**31 - 1) == 1
    assert next_epoch(5) == 6
