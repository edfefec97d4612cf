"""Random and mutated frames into the request decoders: only ProtocolError may come out."""

from __future__ import annotations

import contextlib
import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.api_keys import API_SPECS
from protocol.errors import ProtocolError
from protocol.frames import FrameDecoder, FrameTooLarge, decode_request_header, encode_request
from protocol.messages.request_header import RequestHeader
from tests.protocol.strategies import all_messages, message_strategy

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def decode_fully(frame: bytes | bytearray) -> None:
    with contextlib.suppress(ProtocolError):
        decode_request_header(frame).body()


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(frame: bytes) -> None:
    decode_fully(frame)


@st.composite
def valid_frames(draw: st.DrawFn) -> bytes:
    key = draw(st.sampled_from(sorted(API_SPECS)))
    spec = API_SPECS[key]
    version = draw(st.integers(spec.min_version, spec.max_version))
    body: Any = draw(message_strategy(all_messages()[spec.request_class], version))
    return encode_request(RequestHeader(key, version, 1, "fuzz"), body)[4:]


MUTATIONS = st.sampled_from(["flip", "truncate", "insert", "big_length", "neg_length"])


@FUZZ
@given(
    valid_frames(), st.lists(st.tuples(MUTATIONS, st.integers(0, 10**6)), min_size=1, max_size=3)
)
def test_mutated_frames(frame: bytes, mutations: list[tuple[str, int]]) -> None:
    data = bytearray(frame)
    for kind, where in mutations:
        i = where % max(len(data), 1)
        if kind == "flip" and data:
            data[i] ^= 1 << (where % 8)
        elif kind == "truncate":
            del data[i:]
        elif kind == "insert":
            data[i:i] = bytes([where % 256])
        elif kind == "big_length":
            data[i : i + 4] = b"\x7f\xff\xff\xff"
        elif kind == "neg_length":
            data[i : i + 2] = b"\xff\xfe"
    decode_fully(data)


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_frame_decoder_on_random_streams(chunks: list[bytes]) -> None:
    decoder = FrameDecoder(max_frame_size=1 << 20)
    try:
        for chunk in chunks:
            for frame in decoder.feed(chunk):
                assert len(frame) <= 1 << 20
    except FrameTooLarge:
        pass


def test_two_gigabyte_header_allocates_nothing() -> None:
    decoder = FrameDecoder()  # socket.request.max.bytes default, 100 MiB
    tracemalloc.start()
    try:
        with pytest.raises(FrameTooLarge, match="2147483647"):
            decoder.feed(b"\x7f\xff\xff\xff")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_huge_array_count_allocates_nothing() -> None:
    # Metadata v1 request whose topics array claims 2**31-1 elements in a 20-byte frame
    header = RequestHeader(3, 1, 7, "x").encode(1)
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="elements"):
            decode_request_header(header + b"\x7f\xff\xff\xff").body()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
