"""The declarations cover every API key and version of Kafka 4.3 and 3.9 (the union of both).

The table below is transcribed from ../shared/reference/protocol-apis.md section 1 (itself read
from Kafka's schemas), independently of the declaration files it checks:
key -> (name, 4.3 valid range or None if removed, first flexible version, 3.9 valid range).
"""

from __future__ import annotations

import pytest

from protocol.api_keys import API_SPECS, ApiKey
from protocol.frames import request_class, response_class

KAFKA_APIS: dict[int, tuple[str, tuple[int, int] | None, int | None, tuple[int, int] | None]] = {
    0: ("Produce", (3, 13), 9, (0, 11)),
    1: ("Fetch", (4, 18), 12, (0, 17)),
    2: ("ListOffsets", (1, 11), 6, (0, 9)),
    3: ("Metadata", (0, 13), 9, (0, 12)),
    4: ("LeaderAndIsr", None, 4, (0, 7)),
    5: ("StopReplica", None, 2, (0, 4)),
    6: ("UpdateMetadata", None, 6, (0, 8)),
    7: ("ControlledShutdown", None, 3, (0, 3)),
    8: ("OffsetCommit", (2, 10), 8, (0, 9)),
    9: ("OffsetFetch", (1, 10), 6, (0, 9)),
    10: ("FindCoordinator", (0, 6), 3, (0, 6)),
    11: ("JoinGroup", (0, 9), 6, (0, 9)),
    12: ("Heartbeat", (0, 4), 4, (0, 4)),
    13: ("LeaveGroup", (0, 5), 4, (0, 5)),
    14: ("SyncGroup", (0, 5), 4, (0, 5)),
    15: ("DescribeGroups", (0, 6), 5, (0, 5)),
    16: ("ListGroups", (0, 5), 3, (0, 5)),
    17: ("SaslHandshake", (0, 1), None, (0, 1)),
    18: ("ApiVersions", (0, 4), 3, (0, 4)),
    19: ("CreateTopics", (2, 7), 5, (0, 7)),
    20: ("DeleteTopics", (1, 6), 4, (0, 6)),
    21: ("DeleteRecords", (0, 2), 2, (0, 2)),
    22: ("InitProducerId", (0, 6), 2, (0, 5)),
    23: ("OffsetForLeaderEpoch", (2, 4), 4, (0, 4)),
    24: ("AddPartitionsToTxn", (0, 5), 3, (0, 5)),
    25: ("AddOffsetsToTxn", (0, 4), 3, (0, 4)),
    26: ("EndTxn", (0, 5), 3, (0, 4)),
    27: ("WriteTxnMarkers", (1, 2), 1, (0, 1)),
    28: ("TxnOffsetCommit", (0, 5), 3, (0, 4)),
    29: ("DescribeAcls", (1, 3), 2, (0, 3)),
    30: ("CreateAcls", (1, 3), 2, (0, 3)),
    31: ("DeleteAcls", (1, 3), 2, (0, 3)),
    32: ("DescribeConfigs", (1, 4), 4, (0, 4)),
    33: ("AlterConfigs", (0, 2), 2, (0, 2)),
    34: ("AlterReplicaLogDirs", (1, 2), 2, (0, 2)),
    35: ("DescribeLogDirs", (1, 5), 2, (0, 4)),
    36: ("SaslAuthenticate", (0, 2), 2, (0, 2)),
    37: ("CreatePartitions", (0, 3), 2, (0, 3)),
    38: ("CreateDelegationToken", (1, 3), 2, (0, 3)),
    39: ("RenewDelegationToken", (1, 2), 2, (0, 2)),
    40: ("ExpireDelegationToken", (1, 2), 2, (0, 2)),
    41: ("DescribeDelegationToken", (1, 3), 2, (0, 3)),
    42: ("DeleteGroups", (0, 2), 2, (0, 2)),
    43: ("ElectLeaders", (0, 2), 2, (0, 2)),
    44: ("IncrementalAlterConfigs", (0, 1), 1, (0, 1)),
    45: ("AlterPartitionReassignments", (0, 1), 0, (0, 0)),
    46: ("ListPartitionReassignments", (0, 0), 0, (0, 0)),
    47: ("OffsetDelete", (0, 0), None, (0, 0)),
    48: ("DescribeClientQuotas", (0, 1), 1, (0, 1)),
    49: ("AlterClientQuotas", (0, 1), 1, (0, 1)),
    50: ("DescribeUserScramCredentials", (0, 0), 0, (0, 0)),
    51: ("AlterUserScramCredentials", (0, 0), 0, (0, 0)),
    52: ("Vote", (0, 2), 0, (0, 1)),
    53: ("BeginQuorumEpoch", (0, 1), 1, (0, 1)),
    54: ("EndQuorumEpoch", (0, 1), 1, (0, 1)),
    55: ("DescribeQuorum", (0, 2), 0, (0, 2)),
    56: ("AlterPartition", (2, 3), 0, (0, 3)),
    57: ("UpdateFeatures", (0, 2), 0, (0, 1)),
    58: ("Envelope", (0, 0), 0, (0, 0)),
    59: ("FetchSnapshot", (0, 1), 0, (0, 1)),
    60: ("DescribeCluster", (0, 2), 0, (0, 1)),
    61: ("DescribeProducers", (0, 0), 0, (0, 0)),
    62: ("BrokerRegistration", (0, 4), 0, (0, 4)),
    63: ("BrokerHeartbeat", (0, 2), 0, (0, 1)),
    64: ("UnregisterBroker", (0, 0), 0, (0, 0)),
    65: ("DescribeTransactions", (0, 0), 0, (0, 0)),
    66: ("ListTransactions", (0, 2), 0, (0, 1)),
    67: ("AllocateProducerIds", (0, 0), 0, (0, 0)),
    68: ("ConsumerGroupHeartbeat", (0, 1), 0, (0, 0)),
    69: ("ConsumerGroupDescribe", (0, 1), 0, (0, 0)),
    70: ("ControllerRegistration", (0, 0), 0, (0, 0)),
    71: ("GetTelemetrySubscriptions", (0, 0), 0, (0, 0)),
    72: ("PushTelemetry", (0, 0), 0, (0, 0)),
    73: ("AssignReplicasToDirs", (0, 0), 0, (0, 0)),
    74: ("ListConfigResources", (0, 1), 0, (0, 0)),  # ListClientMetricsResources in 3.9
    75: ("DescribeTopicPartitions", (0, 0), 0, (0, 0)),
    76: ("ShareGroupHeartbeat", (1, 1), 0, (0, 0)),
    77: ("ShareGroupDescribe", (1, 1), 0, (0, 0)),
    78: ("ShareFetch", (1, 2), 0, (0, 0)),
    79: ("ShareAcknowledge", (1, 2), 0, (0, 0)),
    80: ("AddRaftVoter", (0, 1), 0, (0, 0)),
    81: ("RemoveRaftVoter", (0, 0), 0, (0, 0)),
    82: ("UpdateRaftVoter", (0, 0), 0, (0, 0)),
    83: ("InitializeShareGroupState", (0, 0), 0, (0, 0)),
    84: ("ReadShareGroupState", (0, 0), 0, (0, 0)),
    85: ("WriteShareGroupState", (0, 1), 0, (0, 0)),
    86: ("DeleteShareGroupState", (0, 0), 0, (0, 0)),
    87: ("ReadShareGroupStateSummary", (0, 1), 0, (0, 0)),
    88: ("StreamsGroupHeartbeat", (0, 0), 0, None),
    89: ("StreamsGroupDescribe", (0, 0), 0, None),
    90: ("DescribeShareGroupOffsets", (0, 1), 0, None),
    91: ("AlterShareGroupOffsets", (0, 0), 0, None),
    92: ("DeleteShareGroupOffsets", (0, 0), 0, None),
}


def test_every_kafka_api_key_is_declared() -> None:
    assert sorted(API_SPECS) == sorted(KAFKA_APIS)
    assert len(ApiKey) == len(KAFKA_APIS) == 93


@pytest.mark.parametrize("key", sorted(KAFKA_APIS))
def test_versions_are_the_union_of_43_and_39(key: int) -> None:
    name, v43, flexible_from, v39 = KAFKA_APIS[key]
    ranges = [r for r in (v43, v39) if r is not None]
    spec = API_SPECS[key]
    assert spec.name == name
    assert (spec.min_version, spec.max_version) == (
        min(r[0] for r in ranges),
        max(r[1] for r in ranges),
    )
    assert spec.flexible_from == flexible_from


@pytest.mark.parametrize("key", sorted(KAFKA_APIS))
def test_messages_exist_for_every_version(key: int) -> None:
    spec = API_SPECS[key]
    for cls in (request_class(key), response_class(key)):
        assert (spec.min_version, spec.max_version) == (cls.MIN_VERSION, cls.MAX_VERSION)
        for version in range(spec.min_version, spec.max_version + 1):
            assert version in cls._DECODERS and version in cls._ENCODERS


def test_unstable_top_versions_are_marked() -> None:
    # Kafka 4.3 hides InitProducerId v6 (KIP-939 2PC) unless unstable APIs are enabled.
    assert API_SPECS[ApiKey.INIT_PRODUCER_ID].unstable_max
    assert not API_SPECS[ApiKey.PRODUCE].unstable_max
