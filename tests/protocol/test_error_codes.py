"""ErrorCode table: Kafka 4.3's codes, their retriability, and the KafkaError carrier."""

from __future__ import annotations

import pickle

import pytest

from protocol.error_codes import ErrorCode, KafkaError, error_code

INT16_MIN = -(2**15)
INT16_MAX = 2**15 - 1


def test_count_and_range() -> None:
    # -1 (UNKNOWN_SERVER_ERROR), 0 (NONE), then 1..133 with no gaps.
    assert len(ErrorCode) == 135
    assert min(ErrorCode) is ErrorCode.UNKNOWN_SERVER_ERROR
    assert max(ErrorCode) is ErrorCode.SHARE_SESSION_LIMIT_REACHED
    assert int(ErrorCode.UNKNOWN_SERVER_ERROR) == -1
    assert int(ErrorCode.SHARE_SESSION_LIMIT_REACHED) == 133
    assert sorted(int(code) for code in ErrorCode) == list(range(-1, 134))


def test_no_duplicate_numbers_or_aliases() -> None:
    # An alias (two names, one value) would hide from iteration; compare against __members__.
    assert len(ErrorCode.__members__) == len(ErrorCode)
    values = [int(code) for code in ErrorCode]
    assert len(values) == len(set(values))


def test_values_fit_the_wire_int16() -> None:
    assert all(INT16_MIN <= code <= INT16_MAX for code in ErrorCode)


@pytest.mark.parametrize(
    ("code", "value", "retriable"),
    [
        (ErrorCode.NONE, 0, False),
        (ErrorCode.OFFSET_OUT_OF_RANGE, 1, False),
        (ErrorCode.CORRUPT_MESSAGE, 2, True),
        (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 3, True),
        (ErrorCode.NOT_LEADER_OR_FOLLOWER, 6, True),
        (ErrorCode.REQUEST_TIMED_OUT, 7, True),
        (ErrorCode.MESSAGE_TOO_LARGE, 10, False),
        (ErrorCode.NETWORK_EXCEPTION, 13, True),
        (ErrorCode.NOT_COORDINATOR, 16, True),
        (ErrorCode.REBALANCE_IN_PROGRESS, 27, False),
        (ErrorCode.TOPIC_AUTHORIZATION_FAILED, 29, False),
        (ErrorCode.UNSUPPORTED_VERSION, 35, False),
        (ErrorCode.NOT_CONTROLLER, 41, True),
        (ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, 45, False),
        (ErrorCode.CONCURRENT_TRANSACTIONS, 51, True),
        (ErrorCode.KAFKA_STORAGE_ERROR, 56, True),
        (ErrorCode.UNKNOWN_PRODUCER_ID, 59, False),
        (ErrorCode.FENCED_LEADER_EPOCH, 74, True),
        (ErrorCode.INVALID_RECORD, 87, False),
        (ErrorCode.PRODUCER_FENCED, 90, False),
        (ErrorCode.UNKNOWN_TOPIC_ID, 100, True),
        (ErrorCode.TRANSACTION_ABORTABLE, 120, False),
        (ErrorCode.REBOOTSTRAP_REQUIRED, 129, False),
        (ErrorCode.SHARE_SESSION_LIMIT_REACHED, 133, True),
        (ErrorCode.UNKNOWN_SERVER_ERROR, -1, False),
    ],
)
def test_spot_checks(code: ErrorCode, value: int, retriable: bool) -> None:
    assert code == value
    assert ErrorCode(value) is code
    assert code.retriable is retriable


def test_retriable_count() -> None:
    assert sum(code.retriable for code in ErrorCode) == 32


def test_every_member_has_a_description() -> None:
    for code in ErrorCode:
        text = code.description
        assert isinstance(text, str)
        assert text.strip() == text
        assert text.endswith(".")
        assert "\n" not in text
        assert 0 < len(text) <= 80, code


def test_is_an_int_on_the_wire() -> None:
    assert isinstance(ErrorCode.CORRUPT_MESSAGE, int)
    assert ErrorCode.CORRUPT_MESSAGE.to_bytes(2, "big", signed=True) == b"\x00\x02"
    assert ErrorCode.UNKNOWN_SERVER_ERROR.to_bytes(2, "big", signed=True) == b"\xff\xff"


@pytest.mark.parametrize("value", [-1, 0, 6, 87, 133])
def test_error_code_known(value: int) -> None:
    assert error_code(value) is ErrorCode(value)


@pytest.mark.parametrize("value", [134, 135, 136, 1000, INT16_MAX, -2, INT16_MIN])
def test_error_code_unknown_falls_back(value: int) -> None:
    assert error_code(value) is ErrorCode.UNKNOWN_SERVER_ERROR


def test_kafka_error_carries_code_and_message() -> None:
    err = KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, "broker 3 leads partition 0")
    assert err.code is ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert err.message == "broker 3 leads partition 0"
    assert err.retriable
    assert str(err) == "NOT_LEADER_OR_FOLLOWER (6): broker 3 leads partition 0"


def test_kafka_error_without_message_uses_description() -> None:
    err = KafkaError(ErrorCode.INVALID_RECORD)
    assert err.message is None
    assert not err.retriable
    assert str(err) == f"INVALID_RECORD (87): {ErrorCode.INVALID_RECORD.description}"


def test_kafka_error_rejects_none() -> None:
    with pytest.raises(ValueError, match="NONE"):
        KafkaError(ErrorCode.NONE)


def test_kafka_error_subclass_and_pickle() -> None:
    class UnknownTopicOrPartition(KafkaError):
        def __init__(self, message: str | None = None) -> None:
            super().__init__(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, message)

    with pytest.raises(KafkaError) as info:
        raise UnknownTopicOrPartition("no such topic: t")
    assert info.value.code is ErrorCode.UNKNOWN_TOPIC_OR_PARTITION

    base = pickle.loads(pickle.dumps(KafkaError(ErrorCode.REQUEST_TIMED_OUT, "slow")))
    assert base.code is ErrorCode.REQUEST_TIMED_OUT
    assert base.message == "slow"
