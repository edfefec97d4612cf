"""Size-prefixed frames, request/response headers, and the API registry.

Theory of operation. Every Kafka request and response is a frame: an int32 size, then that many
bytes. `FrameDecoder` is sans-I/O in the shape of asyncio's BufferedProtocol: the caller asks
`get_buffer()` for where to read the next bytes and reports `buffer_updated(n)`. Small frames
are cut out of one scratch buffer (one copy, many frames per recv); a frame larger than what the
scratch holds gets its own buffer and the rest of it is read straight into it (no second copy).
The size is checked against `max_frame_size` (`socket.request.max.bytes`) before anything is
allocated, so a header that claims 2 GB costs nothing.

Header versions (Kafka's ApiMessageType): a request header is v2 in the API's flexible versions
and v1 otherwise (ControlledShutdown v0 alone used v0); a response header is v1 in flexible
versions and v0 otherwise, except ApiVersions, whose response header is always v0 so that a
client can read the error of a version it does not share with the broker.
"""

from __future__ import annotations

import importlib
import struct
from dataclasses import dataclass

from protocol._codec import ApiMessage, Writer
from protocol.api_keys import API_SPECS, ApiKey, ApiSpec
from protocol.errors import ProtocolError
from protocol.messages.request_header import RequestHeader
from protocol.messages.response_header import ResponseHeader

_SIZE = struct.Struct(">i")
_KEY_VERSION = struct.Struct(">hh")
SCRATCH_SIZE = 64 * 1024
DEFAULT_MAX_FRAME_SIZE = 100 * 1024 * 1024  # Kafka's socket.request.max.bytes


class FrameTooLarge(ProtocolError):
    """A frame whose size prefix is negative or above the configured maximum."""


class FrameDecoder:
    """Cuts a byte stream into frames (without their size prefix)."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.max_frame_size = max_frame_size
        self._scratch = bytearray(SCRATCH_SIZE)
        self._fill = 0  # bytes of _scratch in use
        self._frame: bytearray | None = None  # a large frame being read in place
        self._frame_fill = 0

    def get_buffer(self) -> memoryview:
        if self._frame is not None:
            return memoryview(self._frame)[self._frame_fill :]
        return memoryview(self._scratch)[self._fill :]

    def buffer_updated(self, nbytes: int) -> list[bytearray]:
        """Account for `nbytes` written into the last `get_buffer()`; returns completed frames."""
        if self._frame is not None:
            self._frame_fill += nbytes
            if self._frame_fill < len(self._frame):
                return []
            frames = [self._frame]
            self._frame = None
            return frames
        self._fill += nbytes
        return self._cut()

    def _cut(self) -> list[bytearray]:
        frames: list[bytearray] = []
        scratch, pos, fill = self._scratch, 0, self._fill
        while fill - pos >= 4:
            (size,) = _SIZE.unpack_from(scratch, pos)
            if size < 0 or size > self.max_frame_size:
                raise FrameTooLarge(
                    f"frame of {size} bytes (socket.request.max.bytes is {self.max_frame_size})"
                )
            start = pos + 4
            if fill - start >= size:
                frames.append(scratch[start : start + size])
                pos = start + size
                continue
            if size + 4 > SCRATCH_SIZE:  # too big to wait for in the scratch buffer
                have = fill - start
                self._frame = bytearray(size)
                self._frame[:have] = scratch[start:fill]
                self._frame_fill = have
                pos = fill
            break
        if pos:
            scratch[: fill - pos] = scratch[pos:fill]
            self._fill = fill - pos
        return frames

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytearray]:
        """Convenience for callers that receive bytes: returns the frames they complete."""
        frames: list[bytearray] = []
        view = memoryview(data)
        while view:
            target = self.get_buffer()
            n = min(len(target), len(view))
            target[:n] = view[:n]
            view = view[n:]
            frames.extend(self.buffer_updated(n))
        return frames


def request_header_version(api_key: int, api_version: int) -> int:
    spec = API_SPECS.get(api_key)
    if spec is None:
        return 1
    if api_key == ApiKey.CONTROLLED_SHUTDOWN and api_version == 0:
        return 0
    flexible = spec.flexible_from is not None and api_version >= spec.flexible_from
    return 2 if flexible else 1


def response_header_version(api_key: int, api_version: int) -> int:
    spec = API_SPECS.get(api_key)
    if spec is None or api_key == ApiKey.API_VERSIONS:
        return 0
    return 1 if spec.flexible_from is not None and api_version >= spec.flexible_from else 0


@dataclass(slots=True)
class Request:
    """A decoded request frame: the header, and where the body starts."""

    header: RequestHeader
    body_offset: int
    frame: memoryview

    @property
    def api_key(self) -> int:
        return self.header.request_api_key

    @property
    def api_version(self) -> int:
        return self.header.request_api_version

    def body(self) -> ApiMessage:
        """Decode the body with the request class of the header's API and version.

        Bytes after the body are ignored, as Kafka's request parser ignores them: librdkafka
        2.16's all-topics Metadata v12 request carries three.
        """
        cls = request_class(self.api_key)
        body, _ = cls.decode_from(self.frame, self.body_offset, self.api_version)
        return body


def decode_request_header(frame: bytes | bytearray | memoryview) -> Request:
    """Parse the request header of a frame (any API key; the body is decoded on demand)."""
    view = frame if isinstance(frame, memoryview) else memoryview(frame)
    if len(view) < 4:
        raise ProtocolError(f"request of {len(view)} bytes is shorter than a header")
    api_key, api_version = _KEY_VERSION.unpack_from(view, 0)
    version = request_header_version(api_key, api_version)
    header, pos = RequestHeader.decode_from(view, 0, version)
    return Request(header, pos, view)


def encode_request(header: RequestHeader, body: ApiMessage) -> bytes:
    """A whole request frame, size prefix included (clients and tests use this)."""
    w = Writer()
    w.buf += b"\0\0\0\0"
    header.encode_into(
        w, request_header_version(header.request_api_key, header.request_api_version)
    )
    body.encode_into(w, header.request_api_version)
    _SIZE.pack_into(w.buf, 0, w.size() - 4)
    return w.getvalue()


def encode_response(
    api_key: int, api_version: int, correlation_id: int, body: ApiMessage
) -> Writer:
    """A whole response frame in a Writer (its file regions are sent with sendfile)."""
    w = Writer()
    w.buf += b"\0\0\0\0"
    header = ResponseHeader(correlation_id)
    header.encode_into(w, response_header_version(api_key, api_version))
    body.encode_into(w, api_version)
    _SIZE.pack_into(w.buf, 0, w.size() - 4)
    return w


def decode_response(
    frame: bytes | bytearray | memoryview, api_key: int, api_version: int
) -> tuple[ResponseHeader, ApiMessage]:
    view = frame if isinstance(frame, memoryview) else memoryview(frame)
    header, pos = ResponseHeader.decode_from(view, 0, response_header_version(api_key, api_version))
    return header, response_class(api_key).decode(view[pos:], api_version)


def api_spec(api_key: int) -> ApiSpec | None:
    return API_SPECS.get(api_key)


def _load(module: str, name: str) -> type[ApiMessage]:
    cls = getattr(importlib.import_module(f"protocol.messages.{module}"), name)
    if not (isinstance(cls, type) and issubclass(cls, ApiMessage)):
        raise TypeError(f"protocol.messages.{module}.{name} is not a message class")
    return cls


def request_class(api_key: int) -> type[ApiMessage]:
    """The request class of an API key (imported on first use); ProtocolError if unknown."""
    spec = api_spec(api_key)
    if spec is None:
        raise ProtocolError(f"unknown API key {api_key}")
    return _load(spec.request_module, spec.request_class)


def response_class(api_key: int) -> type[ApiMessage]:
    spec = api_spec(api_key)
    if spec is None:
        raise ProtocolError(f"unknown API key {api_key}")
    return _load(spec.response_module, spec.response_class)
