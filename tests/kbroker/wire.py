"""A minimal synchronous Kafka client over our own protocol layer, for edge-case tests."""

from __future__ import annotations

import socket
import struct
from typing import Any

from protocol._codec import ApiMessage
from protocol.frames import decode_response, encode_request
from protocol.messages.request_header import RequestHeader


class WireClient:
    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.correlation_id = 0

    def close(self) -> None:
        self.sock.close()

    def send(self, body: ApiMessage, version: int) -> int:
        assert body.API_KEY is not None
        self.correlation_id += 1
        header = RequestHeader(body.API_KEY, version, self.correlation_id, "wire-test")
        self.sock.sendall(encode_request(header, body))
        return self.correlation_id

    def receive(self, api_key: int, version: int) -> Any:
        (size,) = struct.unpack(">i", self.recv_exactly(4))
        header, body = decode_response(self.recv_exactly(size), api_key, version)
        assert header.correlation_id == self.correlation_id
        return body

    def call(self, body: ApiMessage, version: int) -> Any:
        self.send(body, version)
        assert body.API_KEY is not None
        return self.receive(body.API_KEY, version)

    def recv_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed by the broker")
            data += chunk
        return data

    def is_closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
