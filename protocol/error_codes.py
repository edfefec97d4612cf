"""Kafka protocol error codes, and the exception internal code raises to carry one.

Theory of operation: every Kafka response reports failure as a signed 16-bit error code,
per request, per topic or per partition. `ErrorCode` lists every code Apache Kafka 4.3
defines (-1 and 0..133; Confluent Platform 8.3 ships the same set), and no code present in
Kafka 3.9 has since been removed. Names and numbers are the protocol's facts; the one-line
descriptions are ours.

A code is *retriable* when the Java client's exception for it derives, directly or through
a chain, from `RetriableException`: the client may retry the same request, perhaps after a
metadata refresh, and expect it to succeed. Clients treat every other code as fatal for that
request (or as needing application action, such as rejoining a group).

Internal code raises `KafkaError` (or a subclass); a single boundary per API turns it into
the error code of the affected partition, so handlers never pass bare integers around.
Integers read off the wire go through `error_code()`, which maps a code newer than this
table to UNKNOWN_SERVER_ERROR, as the Java client does, instead of raising.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final


class ErrorCode(enum.IntEnum):
    """A Kafka error code; an `int`, so it encodes directly as the wire's int16."""

    UNKNOWN_SERVER_ERROR = -1
    NONE = 0
    OFFSET_OUT_OF_RANGE = 1
    CORRUPT_MESSAGE = 2
    UNKNOWN_TOPIC_OR_PARTITION = 3
    INVALID_FETCH_SIZE = 4
    LEADER_NOT_AVAILABLE = 5
    NOT_LEADER_OR_FOLLOWER = 6
    REQUEST_TIMED_OUT = 7
    BROKER_NOT_AVAILABLE = 8
    REPLICA_NOT_AVAILABLE = 9
    MESSAGE_TOO_LARGE = 10
    STALE_CONTROLLER_EPOCH = 11
    OFFSET_METADATA_TOO_LARGE = 12
    NETWORK_EXCEPTION = 13
    COORDINATOR_LOAD_IN_PROGRESS = 14
    COORDINATOR_NOT_AVAILABLE = 15
    NOT_COORDINATOR = 16
    INVALID_TOPIC_EXCEPTION = 17
    RECORD_LIST_TOO_LARGE = 18
    NOT_ENOUGH_REPLICAS = 19
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
    INVALID_REQUIRED_ACKS = 21
    ILLEGAL_GENERATION = 22
    INCONSISTENT_GROUP_PROTOCOL = 23
    INVALID_GROUP_ID = 24
    UNKNOWN_MEMBER_ID = 25
    INVALID_SESSION_TIMEOUT = 26
    REBALANCE_IN_PROGRESS = 27
    INVALID_COMMIT_OFFSET_SIZE = 28
    TOPIC_AUTHORIZATION_FAILED = 29
    GROUP_AUTHORIZATION_FAILED = 30
    CLUSTER_AUTHORIZATION_FAILED = 31
    INVALID_TIMESTAMP = 32
    UNSUPPORTED_SASL_MECHANISM = 33
    ILLEGAL_SASL_STATE = 34
    UNSUPPORTED_VERSION = 35
    TOPIC_ALREADY_EXISTS = 36
    INVALID_PARTITIONS = 37
    INVALID_REPLICATION_FACTOR = 38
    INVALID_REPLICA_ASSIGNMENT = 39
    INVALID_CONFIG = 40
    NOT_CONTROLLER = 41
    INVALID_REQUEST = 42
    UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
    POLICY_VIOLATION = 44
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45
    DUPLICATE_SEQUENCE_NUMBER = 46
    INVALID_PRODUCER_EPOCH = 47
    INVALID_TXN_STATE = 48
    INVALID_PRODUCER_ID_MAPPING = 49
    INVALID_TRANSACTION_TIMEOUT = 50
    CONCURRENT_TRANSACTIONS = 51
    TRANSACTION_COORDINATOR_FENCED = 52
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
    SECURITY_DISABLED = 54
    OPERATION_NOT_ATTEMPTED = 55
    KAFKA_STORAGE_ERROR = 56
    LOG_DIR_NOT_FOUND = 57
    SASL_AUTHENTICATION_FAILED = 58
    UNKNOWN_PRODUCER_ID = 59
    REASSIGNMENT_IN_PROGRESS = 60
    DELEGATION_TOKEN_AUTH_DISABLED = 61
    DELEGATION_TOKEN_NOT_FOUND = 62
    DELEGATION_TOKEN_OWNER_MISMATCH = 63
    DELEGATION_TOKEN_REQUEST_NOT_ALLOWED = 64
    DELEGATION_TOKEN_AUTHORIZATION_FAILED = 65
    DELEGATION_TOKEN_EXPIRED = 66
    INVALID_PRINCIPAL_TYPE = 67
    NON_EMPTY_GROUP = 68
    GROUP_ID_NOT_FOUND = 69
    FETCH_SESSION_ID_NOT_FOUND = 70
    INVALID_FETCH_SESSION_EPOCH = 71
    LISTENER_NOT_FOUND = 72
    TOPIC_DELETION_DISABLED = 73
    FENCED_LEADER_EPOCH = 74
    UNKNOWN_LEADER_EPOCH = 75
    UNSUPPORTED_COMPRESSION_TYPE = 76
    STALE_BROKER_EPOCH = 77
    OFFSET_NOT_AVAILABLE = 78
    MEMBER_ID_REQUIRED = 79
    PREFERRED_LEADER_NOT_AVAILABLE = 80
    GROUP_MAX_SIZE_REACHED = 81
    FENCED_INSTANCE_ID = 82
    ELIGIBLE_LEADERS_NOT_AVAILABLE = 83
    ELECTION_NOT_NEEDED = 84
    NO_REASSIGNMENT_IN_PROGRESS = 85
    GROUP_SUBSCRIBED_TO_TOPIC = 86
    INVALID_RECORD = 87
    UNSTABLE_OFFSET_COMMIT = 88
    THROTTLING_QUOTA_EXCEEDED = 89
    PRODUCER_FENCED = 90
    RESOURCE_NOT_FOUND = 91
    DUPLICATE_RESOURCE = 92
    UNACCEPTABLE_CREDENTIAL = 93
    INCONSISTENT_VOTER_SET = 94
    INVALID_UPDATE_VERSION = 95
    FEATURE_UPDATE_FAILED = 96
    PRINCIPAL_DESERIALIZATION_FAILURE = 97
    SNAPSHOT_NOT_FOUND = 98
    POSITION_OUT_OF_RANGE = 99
    UNKNOWN_TOPIC_ID = 100
    DUPLICATE_BROKER_REGISTRATION = 101
    BROKER_ID_NOT_REGISTERED = 102
    INCONSISTENT_TOPIC_ID = 103
    INCONSISTENT_CLUSTER_ID = 104
    TRANSACTIONAL_ID_NOT_FOUND = 105
    FETCH_SESSION_TOPIC_ID_ERROR = 106
    INELIGIBLE_REPLICA = 107
    NEW_LEADER_ELECTED = 108
    OFFSET_MOVED_TO_TIERED_STORAGE = 109
    FENCED_MEMBER_EPOCH = 110
    UNRELEASED_INSTANCE_ID = 111
    UNSUPPORTED_ASSIGNOR = 112
    STALE_MEMBER_EPOCH = 113
    MISMATCHED_ENDPOINT_TYPE = 114
    UNSUPPORTED_ENDPOINT_TYPE = 115
    UNKNOWN_CONTROLLER_ID = 116
    UNKNOWN_SUBSCRIPTION_ID = 117
    TELEMETRY_TOO_LARGE = 118
    INVALID_REGISTRATION = 119
    TRANSACTION_ABORTABLE = 120
    INVALID_RECORD_STATE = 121
    SHARE_SESSION_NOT_FOUND = 122
    INVALID_SHARE_SESSION_EPOCH = 123
    FENCED_STATE_EPOCH = 124
    INVALID_VOTER_KEY = 125
    DUPLICATE_VOTER = 126
    VOTER_NOT_FOUND = 127
    INVALID_REGULAR_EXPRESSION = 128
    REBOOTSTRAP_REQUIRED = 129
    STREAMS_INVALID_TOPOLOGY = 130
    STREAMS_INVALID_TOPOLOGY_EPOCH = 131
    STREAMS_TOPOLOGY_FENCED = 132
    SHARE_SESSION_LIMIT_REACHED = 133

    @property
    def retriable(self) -> bool:
        """Whether a client may retry the same request and expect it to succeed."""
        return self in _RETRIABLE

    @property
    def description(self) -> str:
        """A short, human-readable account of what the code means."""
        return _DESCRIPTIONS[self]


def error_code(value: int) -> ErrorCode:
    """The `ErrorCode` for a wire integer; a code we do not know is UNKNOWN_SERVER_ERROR."""
    try:
        return ErrorCode(value)
    except ValueError:
        return ErrorCode.UNKNOWN_SERVER_ERROR


class KafkaError(Exception):
    """A failure that is reported to the client as a Kafka error code.

    Raise it, or a subclass that fixes the code, from anywhere below a handler; the handler's
    boundary catches it and writes `code` into the affected partition's (or request's)
    response. `message`, when given, becomes the response's error message field where the
    API has one.

        class UnknownTopicOrPartition(KafkaError):
            def __init__(self, message: str | None = None) -> None:
                super().__init__(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, message)
    """

    def __init__(self, code: ErrorCode, message: str | None = None) -> None:
        if code is ErrorCode.NONE:
            raise ValueError("KafkaError needs an error code other than NONE")
        super().__init__(code, message)
        self.code: ErrorCode = code
        self.message: str | None = message

    @property
    def retriable(self) -> bool:
        """Whether the client may retry the request that failed with this error."""
        return self.code.retriable

    def __str__(self) -> str:
        detail = self.message if self.message else self.code.description
        return f"{self.code.name} ({int(self.code)}): {detail}"


_RETRIABLE: Final[frozenset[ErrorCode]] = frozenset(
    {
        ErrorCode.CORRUPT_MESSAGE,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.LEADER_NOT_AVAILABLE,
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.REQUEST_TIMED_OUT,
        ErrorCode.REPLICA_NOT_AVAILABLE,
        ErrorCode.NETWORK_EXCEPTION,
        ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
        ErrorCode.COORDINATOR_NOT_AVAILABLE,
        ErrorCode.NOT_COORDINATOR,
        ErrorCode.NOT_ENOUGH_REPLICAS,
        ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ErrorCode.NOT_CONTROLLER,
        ErrorCode.CONCURRENT_TRANSACTIONS,
        ErrorCode.KAFKA_STORAGE_ERROR,
        ErrorCode.FETCH_SESSION_ID_NOT_FOUND,
        ErrorCode.INVALID_FETCH_SESSION_EPOCH,
        ErrorCode.LISTENER_NOT_FOUND,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.UNKNOWN_LEADER_EPOCH,
        ErrorCode.OFFSET_NOT_AVAILABLE,
        ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE,
        ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE,
        ErrorCode.ELECTION_NOT_NEEDED,
        ErrorCode.UNSTABLE_OFFSET_COMMIT,
        ErrorCode.THROTTLING_QUOTA_EXCEEDED,
        ErrorCode.UNKNOWN_TOPIC_ID,
        ErrorCode.INCONSISTENT_TOPIC_ID,
        ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR,
        ErrorCode.SHARE_SESSION_NOT_FOUND,
        ErrorCode.INVALID_SHARE_SESSION_EPOCH,
        ErrorCode.SHARE_SESSION_LIMIT_REACHED,
    }
)

_E = ErrorCode
_DESCRIPTIONS: Final[Mapping[ErrorCode, str]] = MappingProxyType(
    {
        _E.UNKNOWN_SERVER_ERROR: "The broker failed in a way no other code describes.",
        _E.NONE: "No error.",
        _E.OFFSET_OUT_OF_RANGE: "The offset lies outside the partition's current log.",
        _E.CORRUPT_MESSAGE: "A record or batch is malformed or fails its checksum.",
        _E.UNKNOWN_TOPIC_OR_PARTITION: "This broker has no such topic or partition.",
        _E.INVALID_FETCH_SIZE: "The fetch asked for an unusable number of bytes.",
        _E.LEADER_NOT_AVAILABLE: "The partition has no leader yet; an election is under way.",
        _E.NOT_LEADER_OR_FOLLOWER: "This broker is not the leader (or not a replica) here.",
        _E.REQUEST_TIMED_OUT: "The broker gave up waiting before the request completed.",
        _E.BROKER_NOT_AVAILABLE: "The broker named in the request is not reachable.",
        _E.REPLICA_NOT_AVAILABLE: "A replica of the partition is not available.",
        _E.MESSAGE_TOO_LARGE: "A record batch exceeds the largest size the broker accepts.",
        _E.STALE_CONTROLLER_EPOCH: "The request came from a controller that has been replaced.",
        _E.OFFSET_METADATA_TOO_LARGE: "The metadata string attached to an offset is too long.",
        _E.NETWORK_EXCEPTION: "The connection dropped before a response arrived.",
        _E.COORDINATOR_LOAD_IN_PROGRESS: "The coordinator is still loading its state.",
        _E.COORDINATOR_NOT_AVAILABLE: "No coordinator is available for this key right now.",
        _E.NOT_COORDINATOR: "This broker is not the coordinator for this key.",
        _E.INVALID_TOPIC_EXCEPTION: "The topic name is invalid or the topic may not be used.",
        _E.RECORD_LIST_TOO_LARGE: "A batch is larger than a log segment can hold.",
        _E.NOT_ENOUGH_REPLICAS: "Too few in-sync replicas; the write was refused.",
        _E.NOT_ENOUGH_REPLICAS_AFTER_APPEND: "Written, but to fewer in-sync replicas than needed.",
        _E.INVALID_REQUIRED_ACKS: "The acks value of the produce request is not allowed.",
        _E.ILLEGAL_GENERATION: "The group generation in the request is not the current one.",
        _E.INCONSISTENT_GROUP_PROTOCOL: "The member's protocols do not fit the group's.",
        _E.INVALID_GROUP_ID: "The group id is empty or otherwise unusable.",
        _E.UNKNOWN_MEMBER_ID: "The coordinator does not know this member id.",
        _E.INVALID_SESSION_TIMEOUT: "The session timeout is outside the broker's allowed range.",
        _E.REBALANCE_IN_PROGRESS: "The group is rebalancing; the member must rejoin.",
        _E.INVALID_COMMIT_OFFSET_SIZE: "The offset commit payload has an invalid size.",
        _E.TOPIC_AUTHORIZATION_FAILED: "The principal may not perform this on the topic.",
        _E.GROUP_AUTHORIZATION_FAILED: "The principal may not perform this on the group.",
        _E.CLUSTER_AUTHORIZATION_FAILED: "The principal may not perform this on the cluster.",
        _E.INVALID_TIMESTAMP: "A record timestamp falls outside the accepted window.",
        _E.UNSUPPORTED_SASL_MECHANISM: "The broker does not offer the SASL mechanism asked for.",
        _E.ILLEGAL_SASL_STATE: "The request does not fit the SASL handshake's current step.",
        _E.UNSUPPORTED_VERSION: "The broker does not serve this API version.",
        _E.TOPIC_ALREADY_EXISTS: "A topic of that name exists already.",
        _E.INVALID_PARTITIONS: "The requested partition count is not valid.",
        _E.INVALID_REPLICATION_FACTOR: "The replication factor is not valid for this cluster.",
        _E.INVALID_REPLICA_ASSIGNMENT: "The explicit replica assignment is not valid.",
        _E.INVALID_CONFIG: "A configuration value is not valid.",
        _E.NOT_CONTROLLER: "This node is not the active controller.",
        _E.INVALID_REQUEST: "The request is malformed or makes no sense to this broker.",
        _E.UNSUPPORTED_FOR_MESSAGE_FORMAT: "The log's record format cannot serve this request.",
        _E.POLICY_VIOLATION: "The request breaks a policy configured on the broker.",
        _E.OUT_OF_ORDER_SEQUENCE_NUMBER: "A producer sequence number arrived out of order.",
        _E.DUPLICATE_SEQUENCE_NUMBER: "A producer sequence number was already written.",
        _E.INVALID_PRODUCER_EPOCH: "The producer's epoch is older than the current one.",
        _E.INVALID_TXN_STATE: "The transaction is not in a state that allows this operation.",
        _E.INVALID_PRODUCER_ID_MAPPING: "The producer id is not the one held by this txn id.",
        _E.INVALID_TRANSACTION_TIMEOUT: "The transaction timeout exceeds the broker's maximum.",
        _E.CONCURRENT_TRANSACTIONS: "Another operation on this transaction is still running.",
        _E.TRANSACTION_COORDINATOR_FENCED: "A newer transaction coordinator has taken over.",
        _E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "The principal may not use this txn id.",
        _E.SECURITY_DISABLED: "Security features are turned off on this broker.",
        _E.OPERATION_NOT_ATTEMPTED: "Skipped because another part of the batch failed.",
        _E.KAFKA_STORAGE_ERROR: "The broker hit a disk error on the partition's log.",
        _E.LOG_DIR_NOT_FOUND: "The named log directory is not configured on the broker.",
        _E.SASL_AUTHENTICATION_FAILED: "SASL authentication did not succeed.",
        _E.UNKNOWN_PRODUCER_ID: "The broker holds no state for this producer id.",
        _E.REASSIGNMENT_IN_PROGRESS: "The partition is being reassigned.",
        _E.DELEGATION_TOKEN_AUTH_DISABLED: "Delegation tokens are not enabled.",
        _E.DELEGATION_TOKEN_NOT_FOUND: "No such delegation token exists.",
        _E.DELEGATION_TOKEN_OWNER_MISMATCH: "The principal neither owns nor may renew the token.",
        _E.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED: "Token requests are refused on this channel.",
        _E.DELEGATION_TOKEN_AUTHORIZATION_FAILED: "The principal may not act on the token.",
        _E.DELEGATION_TOKEN_EXPIRED: "The delegation token has expired.",
        _E.INVALID_PRINCIPAL_TYPE: "The principal type is not one the broker understands.",
        _E.NON_EMPTY_GROUP: "The group still has members.",
        _E.GROUP_ID_NOT_FOUND: "No group with that id exists.",
        _E.FETCH_SESSION_ID_NOT_FOUND: "The broker has no fetch session with that id.",
        _E.INVALID_FETCH_SESSION_EPOCH: "The fetch session epoch does not match the broker's.",
        _E.LISTENER_NOT_FOUND: "The leader has no endpoint on the listener the client used.",
        _E.TOPIC_DELETION_DISABLED: "Deleting topics is turned off on this cluster.",
        _E.FENCED_LEADER_EPOCH: "The request's leader epoch is older than the broker's.",
        _E.UNKNOWN_LEADER_EPOCH: "The request's leader epoch is newer than the broker's.",
        _E.UNSUPPORTED_COMPRESSION_TYPE: "The client cannot handle the partition's compression.",
        _E.STALE_BROKER_EPOCH: "The broker epoch in the request is out of date.",
        _E.OFFSET_NOT_AVAILABLE: "A new leader's high watermark has not caught up yet.",
        _E.MEMBER_ID_REQUIRED: "The member must rejoin with the member id it was given.",
        _E.PREFERRED_LEADER_NOT_AVAILABLE: "The preferred replica cannot become leader now.",
        _E.GROUP_MAX_SIZE_REACHED: "The group already has as many members as allowed.",
        _E.FENCED_INSTANCE_ID: "Another member now holds this static group.instance.id.",
        _E.ELIGIBLE_LEADERS_NOT_AVAILABLE: "No replica is eligible to lead the partition.",
        _E.ELECTION_NOT_NEEDED: "The partition already has the leader the election would pick.",
        _E.NO_REASSIGNMENT_IN_PROGRESS: "There is no partition reassignment to act on.",
        _E.GROUP_SUBSCRIBED_TO_TOPIC: "The group is subscribed to the topic, so its offsets stay.",
        _E.INVALID_RECORD: "The broker rejected a record that failed its validation.",
        _E.UNSTABLE_OFFSET_COMMIT: "Pending transactional offsets must settle first.",
        _E.THROTTLING_QUOTA_EXCEEDED: "The request would exceed the client's mutation quota.",
        _E.PRODUCER_FENCED: "A newer producer with the same transactional id took over.",
        _E.RESOURCE_NOT_FOUND: "The request names a resource that does not exist.",
        _E.DUPLICATE_RESOURCE: "The request names the same resource more than once.",
        _E.UNACCEPTABLE_CREDENTIAL: "The credential does not meet the acceptance rules.",
        _E.INCONSISTENT_VOTER_SET: "Sender or receiver is not in the expected voter set.",
        _E.INVALID_UPDATE_VERSION: "The feature update version is not valid.",
        _E.FEATURE_UPDATE_FAILED: "Finalized features could not be updated.",
        _E.PRINCIPAL_DESERIALIZATION_FAILURE: "A forwarded request's principal would not decode.",
        _E.SNAPSHOT_NOT_FOUND: "The requested metadata snapshot does not exist.",
        _E.POSITION_OUT_OF_RANGE: "The snapshot position is negative or past its end.",
        _E.UNKNOWN_TOPIC_ID: "This broker has no topic with that topic id.",
        _E.DUPLICATE_BROKER_REGISTRATION: "Another live broker already uses this broker id.",
        _E.BROKER_ID_NOT_REGISTERED: "No broker is registered under that id.",
        _E.INCONSISTENT_TOPIC_ID: "The topic id differs from the one the log holds.",
        _E.INCONSISTENT_CLUSTER_ID: "The cluster id differs from this node's cluster id.",
        _E.TRANSACTIONAL_ID_NOT_FOUND: "No transaction state exists for that transactional id.",
        _E.FETCH_SESSION_TOPIC_ID_ERROR: "The fetch session mixed or changed topic ids.",
        _E.INELIGIBLE_REPLICA: "The proposed ISR includes a replica that may not join it.",
        _E.NEW_LEADER_ELECTED: "The ISR change was applied, but leadership moved meanwhile.",
        _E.OFFSET_MOVED_TO_TIERED_STORAGE: "The offset now lives only in tiered storage.",
        _E.FENCED_MEMBER_EPOCH: "The member epoch is fenced; drop partitions and rejoin.",
        _E.UNRELEASED_INSTANCE_ID: "The static instance id is still held by another member.",
        _E.UNSUPPORTED_ASSIGNOR: "The group does not support the requested assignor.",
        _E.STALE_MEMBER_EPOCH: "The member epoch is old; retry with the current one.",
        _E.MISMATCHED_ENDPOINT_TYPE: "The request reached the wrong kind of endpoint.",
        _E.UNSUPPORTED_ENDPOINT_TYPE: "The endpoint type asked for is not supported.",
        _E.UNKNOWN_CONTROLLER_ID: "No controller is known under that id.",
        _E.UNKNOWN_SUBSCRIPTION_ID: "The telemetry subscription id is unknown or stale.",
        _E.TELEMETRY_TOO_LARGE: "The pushed telemetry exceeds the broker's size limit.",
        _E.INVALID_REGISTRATION: "The controller judged the broker registration invalid.",
        _E.TRANSACTION_ABORTABLE: "The transaction failed; abort it to keep the txn id usable.",
        _E.INVALID_RECORD_STATE: "The record's delivery state does not allow that ack.",
        _E.SHARE_SESSION_NOT_FOUND: "The broker has no such share session.",
        _E.INVALID_SHARE_SESSION_EPOCH: "The share session epoch does not match the broker's.",
        _E.FENCED_STATE_EPOCH: "The share-group state epoch is out of date.",
        _E.INVALID_VOTER_KEY: "The voter key does not match the receiving replica.",
        _E.DUPLICATE_VOTER: "That voter is already in the voter set.",
        _E.VOTER_NOT_FOUND: "That voter is not in the voter set.",
        _E.INVALID_REGULAR_EXPRESSION: "The subscription regular expression does not compile.",
        _E.REBOOTSTRAP_REQUIRED: "The client's metadata is stale; it should rebootstrap.",
        _E.STREAMS_INVALID_TOPOLOGY: "The Streams topology sent is not valid.",
        _E.STREAMS_INVALID_TOPOLOGY_EPOCH: "The Streams topology epoch is not valid.",
        _E.STREAMS_TOPOLOGY_FENCED: "The Streams topology epoch has been superseded.",
        _E.SHARE_SESSION_LIMIT_REACHED: "The broker holds as many share sessions as it may.",
    }
)
del _E
