"""Framing and header versions."""

from __future__ import annotations

import pytest

from protocol.api_keys import ApiKey
from protocol.errors import ProtocolError
from protocol.frames import (
    SCRATCH_SIZE,
    FrameDecoder,
    decode_request_header,
    decode_response,
    encode_request,
    encode_response,
    request_header_version,
    response_header_version,
)
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.api_versions_response import ApiVersion, ApiVersionsResponse
from protocol.messages.metadata_request import MetadataRequest
from protocol.messages.request_header import RequestHeader


def frame(n: int, fill: int) -> bytes:
    return n.to_bytes(4, "big") + bytes([fill]) * n


def test_frames_split_across_reads_and_many_per_read() -> None:
    stream = frame(3, 1) + frame(0, 0) + frame(10, 2) + frame(SCRATCH_SIZE * 3, 7) + frame(5, 3)
    for step in (1, 7, 4096, len(stream)):
        decoder = FrameDecoder()
        frames = []
        for i in range(0, len(stream), step):
            frames += decoder.feed(stream[i : i + step])
        assert [len(f) for f in frames] == [3, 0, 10, SCRATCH_SIZE * 3, 5]
        assert frames[3] == bytes([7]) * SCRATCH_SIZE * 3


def test_large_frame_is_read_in_place() -> None:
    decoder = FrameDecoder()
    data = frame(SCRATCH_SIZE * 2, 9)
    assert decoder.feed(data[:100]) == []
    target = decoder.get_buffer()
    assert len(target) == SCRATCH_SIZE * 2 - 96  # the rest of the frame, read straight into it
    target[:] = data[100:]
    (done,) = decoder.buffer_updated(len(target))
    assert done == data[4:]


def test_negative_size_is_rejected() -> None:
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(b"\xff\xff\xff\xfe")


def test_header_versions() -> None:
    assert request_header_version(ApiKey.PRODUCE, 8) == 1
    assert request_header_version(ApiKey.PRODUCE, 9) == 2
    assert request_header_version(ApiKey.CONTROLLED_SHUTDOWN, 0) == 0
    assert request_header_version(ApiKey.API_VERSIONS, 99) == 2  # too new: still flexible
    assert response_header_version(ApiKey.API_VERSIONS, 3) == 0  # always v0 (KIP-511)
    assert response_header_version(ApiKey.METADATA, 9) == 1
    assert response_header_version(ApiKey.METADATA, 8) == 0


def test_request_roundtrip_through_frames() -> None:
    raw = encode_request(RequestHeader(3, 12, 42, "cli"), MetadataRequest(topics=None))
    (payload,) = FrameDecoder().feed(raw)
    request = decode_request_header(payload)
    assert (request.api_key, request.api_version, request.header.correlation_id) == (3, 12, 42)
    assert request.header.client_id == "cli"
    assert request.body() == MetadataRequest(topics=None)


def test_api_versions_response_uses_header_v0_even_when_flexible() -> None:
    body = ApiVersionsResponse(api_keys=[ApiVersion(0, 0, 11)])
    raw = encode_response(ApiKey.API_VERSIONS, 3, 5, body).getvalue()
    assert raw[4:8] == (5).to_bytes(4, "big") and raw[8] == 0  # error_code follows at once
    header, decoded = decode_response(raw[4:], ApiKey.API_VERSIONS, 3)
    assert header.correlation_id == 5 and decoded == body


def test_unknown_api_key_body_is_a_protocol_error() -> None:
    raw = RequestHeader(999, 0, 1, None).encode(1)
    with pytest.raises(ProtocolError, match="unknown API key"):
        decode_request_header(raw).body()


def test_too_new_version_is_a_protocol_error() -> None:
    raw = encode_request(RequestHeader(18, 3, 1, "c"), ApiVersionsRequest("a", "1"))
    patched = bytearray(raw[4:])
    patched[2:4] = (200).to_bytes(2, "big")
    with pytest.raises(ProtocolError, match="no version 200"):
        decode_request_header(patched).body()


def test_trailing_bytes_after_a_request_body_are_ignored() -> None:
    # librdkafka 2.16.1's all-topics Metadata v12 request: topics null, two bools, no tags,
    # then three extra bytes; Kafka's request parser does not look at them.
    raw = RequestHeader(3, 12, 1, "rdkafka").encode(2) + bytes.fromhex("00000000010000")
    assert decode_request_header(raw).body() == MetadataRequest(
        topics=None, allow_auto_topic_creation=False
    )
