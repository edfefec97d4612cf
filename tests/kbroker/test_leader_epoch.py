"""KIP-320 leader-epoch fencing on Fetch, ListOffsets and OffsetForLeaderEpoch."""

from __future__ import annotations

from collections.abc import Callable

from kbroker.testing import Broker
from protocol.error_codes import ErrorCode
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from protocol.messages.offset_for_leader_epoch_request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)
from tests.kbroker.wire import WireClient

OUR_EPOCH = 0  # a single node leads every partition at epoch 0


def codes(client: WireClient, topic: str, epoch: int) -> tuple[int, int, int]:
    fetch = FetchRequest(
        topics=[FetchTopic(topic=topic, partitions=[FetchPartition(0, current_leader_epoch=epoch)])]
    )
    listing = ListOffsetsRequest(
        topics=[
            ListOffsetsTopic(
                name=topic,
                partitions=[ListOffsetsPartition(0, current_leader_epoch=epoch, timestamp=-1)],
            )
        ]
    )
    ends = OffsetForLeaderEpochRequest(
        topics=[
            OffsetForLeaderTopic(
                topic=topic,
                partitions=[
                    OffsetForLeaderPartition(0, current_leader_epoch=epoch, leader_epoch=0)
                ],
            )
        ]
    )
    return (
        client.call(fetch, 12).responses[0].partitions[0].error_code,
        client.call(listing, 7).topics[0].partitions[0].error_code,
        client.call(ends, 4).topics[0].partitions[0].error_code,
    )


def test_leader_epoch_fencing(broker: Broker, new_topic: Callable[..., str]) -> None:
    topic = new_topic()
    client = WireClient(broker.bootstrap_servers)
    assert codes(client, topic, -1) == (ErrorCode.NONE,) * 3  # no epoch known: not checked
    assert codes(client, topic, OUR_EPOCH) == (ErrorCode.NONE,) * 3
    assert codes(client, topic, OUR_EPOCH + 5) == (ErrorCode.UNKNOWN_LEADER_EPOCH,) * 3
    assert codes(client, topic, -2) == (ErrorCode.FENCED_LEADER_EPOCH,) * 3  # older than ours
    client.close()
