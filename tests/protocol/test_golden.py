"""Golden request frames from real clients decode and re-encode byte for byte.

The frames in `tests/protocol/golden/` were captured from confluent-kafka, kafka-python and
aiokafka by `python -m tests.protocol.golden.capture`; these tests only read them. Each frame
is decoded with our header and body classes and encoded again; the bytes must be identical.
Produce frames also carry the records each capture scenario sent (kept in `index.json`): the
batch must decode to exactly those, and any corrupted byte under its CRC must be caught.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from protocol._codec import ApiMessage
from protocol.api_keys import API_SPECS, ApiKey
from protocol.frames import decode_request_header, encode_request, request_class
from protocol.messages.end_txn_request import EndTxnRequest
from protocol.messages.fetch_request import FetchRequest
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.join_group_request import JoinGroupRequest
from protocol.messages.offset_commit_request import OffsetCommitRequest
from protocol.messages.produce_request import ProduceRequest
from protocol.messages.sync_group_request import SyncGroupRequest
from protocol.messages.txn_offset_commit_request import TxnOffsetCommitRequest
from protocol.records import (
    Compression,
    CorruptRecordError,
    Record,
    decode_batch,
    validate_batch,
)

GOLDEN = Path(__file__).resolve().parent / "golden"
INDEX: list[dict[str, Any]] = json.loads((GOLDEN / "index.json").read_text())["frames"]
PRODUCE = [entry for entry in INDEX if entry["api_key"] == ApiKey.PRODUCE]
CRC_END = 21  # the CRC field is bytes [17, 21) of a batch; it covers everything after


def frame_of(entry: dict[str, Any]) -> bytes:
    return (GOLDEN / str(entry["file"])).read_bytes()


def batch_of(entry: dict[str, Any]) -> bytes:
    body = decode_request_header(frame_of(entry)).body()
    assert isinstance(body, ProduceRequest)
    (topic,) = body.topic_data
    (partition,) = topic.partition_data
    assert isinstance(partition.records, memoryview)
    return bytes(partition.records)


def expected_records(entry: dict[str, Any]) -> list[Record]:
    def unhex(value: str | None) -> bytes | None:
        return None if value is None else bytes.fromhex(value)

    return [
        Record(
            r["offset"],
            r["timestamp"],
            unhex(r["key"]),
            unhex(r["value"]),
            [(name, unhex(value)) for name, value in r["headers"]],
        )
        for r in entry["records"]
    ]


def test_the_vectors_cover_every_client_and_codec() -> None:
    clients = {entry["client"] for entry in INDEX}
    assert clients == {"confluent_kafka", "kafka_python", "aiokafka"}
    for client in clients:
        keys = {entry["api_key"] for entry in INDEX if entry["client"] == client}
        assert {ApiKey.API_VERSIONS, ApiKey.METADATA, ApiKey.PRODUCE, ApiKey.FETCH} <= keys
        assert {ApiKey.JOIN_GROUP, ApiKey.SYNC_GROUP, ApiKey.OFFSET_COMMIT} <= keys
        assert {ApiKey.INIT_PRODUCER_ID, ApiKey.ADD_PARTITIONS_TO_TXN, ApiKey.END_TXN} <= keys
    codecs = {(entry["client"], entry["codec"]) for entry in PRODUCE}
    assert len(codecs) == 5 + 4 + 5  # kafka-python has no snappy without python-snappy
    sizes = sum(len(frame_of(entry)) for entry in INDEX)
    assert sizes < 200_000
    assert len({entry["file"] for entry in INDEX}) == len(INDEX)
    assert sorted(p.relative_to(GOLDEN).as_posix() for p in GOLDEN.rglob("*.bin")) == sorted(
        entry["file"] for entry in INDEX
    )


@pytest.mark.parametrize("entry", INDEX, ids=[entry["file"] for entry in INDEX])
def test_frame_decodes_and_reencodes_byte_for_byte(entry: dict[str, Any]) -> None:
    frame = frame_of(entry)
    request = decode_request_header(frame)
    assert (request.api_key, request.api_version) == (entry["api_key"], entry["api_version"])
    assert API_SPECS[request.api_key].name == entry["api_name"]
    assert request.header.client_id == "golden-capture"
    body = request.body()
    assert isinstance(body, request_class(request.api_key))
    encoded = encode_request(request.header, body)
    assert int.from_bytes(encoded[:4], "big") == len(frame)
    assert encoded[4:] == frame
    assert body.encode(request.api_version) == frame[request.body_offset :]


def facts(body: ApiMessage) -> tuple[Any, ...]:
    """What the capture scenarios sent, read back through our field names."""
    match body:
        case ProduceRequest():
            (topic,) = body.topic_data
            return topic.name, [p.index for p in topic.partition_data]
        case FetchRequest():
            return body.topics[0].topic, body.topics[0].partitions[0].partition
        case JoinGroupRequest():
            return body.group_id, body.protocol_type, bool(body.member_id), body.protocols != []
        case SyncGroupRequest():
            return body.group_id, body.member_id == body.assignments[0].member_id
        case OffsetCommitRequest():
            offset = body.topics[0].partitions[0].committed_offset
            return body.group_id, body.topics[0].name, offset
        case TxnOffsetCommitRequest():
            offset = body.topics[0].partitions[0].committed_offset
            return body.transactional_id, body.group_id, offset
        case FindCoordinatorRequest():
            return (body.coordinator_keys or [body.key])[0], body.key_type
        case InitProducerIdRequest():
            return (body.transactional_id,)
        case EndTxnRequest():
            return body.transactional_id, body.producer_id, body.committed
    return ()


EXPECTED_FACTS = {
    ApiKey.PRODUCE: ("golden-topic", [0]),
    ApiKey.FETCH: ("golden-topic", 0),
    ApiKey.SYNC_GROUP: ("golden-group", True),
    ApiKey.OFFSET_COMMIT: ("golden-group", "golden-topic", 3),
    ApiKey.TXN_OFFSET_COMMIT: ("golden-txn", "golden-group", 3),
    ApiKey.END_TXN: ("golden-txn", 1000, True),
}


@pytest.mark.parametrize("entry", INDEX, ids=[entry["file"] for entry in INDEX])
def test_decoded_fields_hold_what_the_client_sent(entry: dict[str, Any]) -> None:
    got = facts(decode_request_header(frame_of(entry)).body())
    variant = entry["file"].removesuffix(".bin").rsplit("_", 1)[-1]
    match entry["api_key"]:
        case ApiKey.JOIN_GROUP:
            assert got == ("golden-group", "consumer", variant == "rejoin", True)
        case ApiKey.FIND_COORDINATOR:
            transaction = variant == "transaction"
            assert got == (("golden-txn", 1) if transaction else ("golden-group", 0))
        case ApiKey.INIT_PRODUCER_ID:
            assert got == ("golden-txn" if variant == "transactional" else None,)
        case key:
            assert got == EXPECTED_FACTS.get(key, ())


@pytest.mark.parametrize("entry", PRODUCE, ids=[entry["file"] for entry in PRODUCE])
def test_produce_batch_holds_the_records_sent(entry: dict[str, Any]) -> None:
    batch = batch_of(entry)
    header, records = decode_batch(batch)
    assert header.size == len(batch)
    assert records == expected_records(entry)
    assert header.compression == Compression[entry["codec"].upper()]
    assert (header.producer_id >= 0) == (entry["producer"] != "plain")
    assert header.is_transactional == (entry["producer"] == "transactional")
    assert validate_batch(batch, from_client=True) == header


@pytest.mark.parametrize("entry", PRODUCE, ids=[entry["file"] for entry in PRODUCE])
def test_any_flipped_byte_under_the_crc_is_corruption(entry: dict[str, Any]) -> None:
    batch = batch_of(entry)
    for position in range(CRC_END, len(batch)):
        corrupted = bytearray(batch)
        corrupted[position] ^= 0xFF
        with pytest.raises(CorruptRecordError):
            validate_batch(corrupted, from_client=True)
