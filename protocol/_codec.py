"""Primitive types of the Kafka protocol: what generated message code calls.

Theory of operation. Decoders take a `memoryview` of a whole frame and a position and return
`(value, new_position)`; they never copy record bytes (a `records` field decodes to a memoryview
slice of the frame). A short buffer surfaces as `struct.error`/`IndexError`, which the message's
`decode` turns into `ProtocolError`; lengths and counts are checked against the bytes that remain
before anything is allocated, as Kafka's own readers do, so a hostile count cannot make us build a
huge list. Encoders append to a `Writer`, whose `regions` let a `records` field be a file region
that the network layer sends with `os.sendfile` instead of copying it into the buffer.

Non-flexible versions use int16/int32 length prefixes with -1 for null; flexible versions (KIP-482)
use unsigned varints holding length + 1 (0 for null) and end every struct with tagged fields.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self, TypeAlias, TypeVar, overload
from uuid import UUID

from protocol.errors import ProtocolError

I8 = struct.Struct(">b")
I16 = struct.Struct(">h")
U16 = struct.Struct(">H")
I32 = struct.Struct(">i")
I64 = struct.Struct(">q")
F64 = struct.Struct(">d")
BOOL = struct.Struct(">?")
ZERO_UUID = UUID(int=0)

# Exceptions a truncated or malformed buffer can raise inside generated decoders.
DECODE_ERRORS = (struct.error, IndexError, ValueError, OverflowError)


class UnsupportedVersion(ProtocolError):
    """A message version outside what the declaration defines."""


@dataclass(frozen=True, slots=True)
class FileRegion:
    """`length` bytes from `offset` of a file, to be sent with os.sendfile.

    Either `fd` is an open descriptor, or `opener` returns a context manager that yields one and
    keeps it open (pinned) until the send is done: a cache of open files must not close and
    reuse the number while the bytes are in flight.
    """

    fd: int
    offset: int
    length: int
    opener: Callable[[], AbstractContextManager[int]] | None = None

    def __len__(self) -> int:
        return self.length

    def open(self) -> AbstractContextManager[int]:
        return self.opener() if self.opener is not None else nullcontext(self.fd)


Records: TypeAlias = bytes | bytearray | memoryview | FileRegion


class Writer:
    """An encoding buffer; `regions` are (buffer offset, FileRegion) spliced in at send time."""

    __slots__ = ("buf", "regions")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.regions: list[tuple[int, FileRegion]] = []

    def size(self) -> int:
        return len(self.buf) + sum(region.length for _, region in self.regions)

    def chunks(self) -> list[bytes | bytearray | memoryview | FileRegion]:
        """The encoded message in order: buffer slices and file regions."""
        if not self.regions:
            return [self.buf]
        out: list[bytes | bytearray | memoryview | FileRegion] = []
        view = memoryview(self.buf)
        start = 0
        for offset, region in self.regions:
            if offset > start:
                out.append(view[start:offset])
            out.append(region)
            start = offset
        if start < len(self.buf):
            out.append(view[start:])
        return out

    def getvalue(self) -> bytes:
        """The whole encoding as bytes (file regions are read with os.pread)."""
        if not self.regions:
            return bytes(self.buf)
        parts = []
        for chunk in self.chunks():
            if isinstance(chunk, FileRegion):
                with chunk.open() as fd:
                    parts.append(os.pread(fd, chunk.length, chunk.offset))
            else:
                parts.append(bytes(chunk))
        return b"".join(parts)


class ApiMessage:
    """Base of every generated message class (requests, responses, headers, data types)."""

    __slots__ = ()
    NAME: ClassVar[str]
    API_KEY: ClassVar[int | None]
    MIN_VERSION: ClassVar[int]
    MAX_VERSION: ClassVar[int]
    FLEXIBLE_FROM: ClassVar[int | None]
    _ENCODERS: ClassVar[dict[int, Callable[[Any, Writer], None]]]
    _DECODERS: ClassVar[dict[int, Callable[[memoryview, int], tuple[Any, int]]]]

    def encode_into(self, w: Writer, version: int) -> None:
        encoder = self._ENCODERS.get(version)
        if encoder is None:
            raise UnsupportedVersion(f"{self.NAME} has no version {version}")
        encoder(self, w)

    def encode(self, version: int) -> bytes:
        w = Writer()
        self.encode_into(w, version)
        return w.getvalue()

    @classmethod
    def decode_from(cls, buf: memoryview, pos: int, version: int) -> tuple[Self, int]:
        """Decode at `pos` of `buf`; returns the message and the position after it."""
        decoder = cls._DECODERS.get(version)
        if decoder is None:
            raise UnsupportedVersion(f"{cls.NAME} has no version {version}")
        try:
            message, end = decoder(buf, pos)
        except DECODE_ERRORS as exc:
            message = f"{cls.NAME} v{version}: malformed at or after byte {pos}: {exc}"
            raise ProtocolError(message) from exc
        if end > len(buf):
            raise ProtocolError(f"{cls.NAME} v{version}: truncated")
        return message, end

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, version: int) -> Self:
        """Decode a whole buffer; trailing bytes are an error."""
        buf = data if isinstance(data, memoryview) else memoryview(data)
        message, end = cls.decode_from(buf, 0, version)
        if end != len(buf):
            raise ProtocolError(f"{cls.NAME} v{version}: {len(buf) - end} trailing bytes")
        return message


T = TypeVar("T")


def not_null(value: T | None, name: str) -> T:
    """A field that this version cannot encode as null (Kafka refuses the same)."""
    if value is None:
        raise ValueError(f"{name} is not nullable in this version")
    return value


# ---------------------------------------------------------------- varints (KIP-482)


def r_uvarint(buf: memoryview, pos: int) -> tuple[int, int]:
    """An unsigned varint of at most 5 bytes (32 bits), as Kafka's ByteUtils.readUnsignedVarint."""
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    value = b & 0x7F
    shift = 7
    for i in range(1, 5):
        b = buf[pos + i]
        value |= (b & 0x7F) << shift
        if b < 0x80:
            if value > 0xFFFFFFFF:
                break
            return value, pos + i + 1
        shift += 7
    raise ProtocolError(f"unsigned varint at byte {pos} is longer than 5 bytes")


def w_uvarint(b: bytearray, value: int) -> None:
    if value < 0x80:
        b.append(value)
        return
    while value >= 0x80:
        b.append((value & 0x7F) | 0x80)
        value >>= 7
    b.append(value)


# ---------------------------------------------------------------- lengths and counts


def _need(buf: memoryview, pos: int, n: int) -> int:
    end = pos + n
    if end > len(buf):
        raise ProtocolError(f"length {n} at byte {pos} runs past the end ({len(buf)} bytes)")
    return end


def r_len16(buf: memoryview, pos: int) -> tuple[int, int]:
    (n,) = I16.unpack_from(buf, pos)
    return n, pos + 2


def r_len32(buf: memoryview, pos: int) -> tuple[int, int]:
    (n,) = I32.unpack_from(buf, pos)
    return n, pos + 4


def r_clen(buf: memoryview, pos: int) -> tuple[int, int]:
    n, pos = r_uvarint(buf, pos)
    return n - 1, pos


def r_count(buf: memoryview, pos: int, compact: bool, nullable: bool) -> tuple[int, int]:
    """An array length; -1 means null. Checked against the remaining bytes before any allocation."""
    n, pos = r_clen(buf, pos) if compact else r_len32(buf, pos)
    if n < 0:
        if n == -1 and nullable:
            return -1, pos
        raise ProtocolError(f"invalid array length {n} at byte {pos}")
    if n > len(buf) - pos:
        raise ProtocolError(f"array of {n} elements but only {len(buf) - pos} bytes remain")
    return n, pos


def w_count(b: bytearray, n: int, compact: bool) -> None:
    if compact:
        w_uvarint(b, n + 1)
    else:
        b += I32.pack(n)


# ---------------------------------------------------------------- strings, bytes, records


@overload
def r_str(
    buf: memoryview, pos: int, compact: bool, nullable: Literal[False]
) -> tuple[str, int]: ...


@overload
def r_str(buf: memoryview, pos: int, compact: bool, nullable: bool) -> tuple[str | None, int]: ...


def r_str(buf: memoryview, pos: int, compact: bool, nullable: bool) -> tuple[str | None, int]:
    n, pos = r_clen(buf, pos) if compact else r_len16(buf, pos)
    if n < 0:
        if n == -1 and nullable:
            return None, pos
        raise ProtocolError(f"invalid string length {n} at byte {pos}")
    end = _need(buf, pos, n)
    try:
        return str(buf[pos:end], "utf-8"), end
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"string at byte {pos} is not UTF-8: {exc}") from None


def w_str(b: bytearray, s: str | None, compact: bool) -> None:
    if s is None:
        b += b"\x00" if compact else b"\xff\xff"
        return
    data = s.encode("utf-8")
    if compact:
        w_uvarint(b, len(data) + 1)
    else:
        if len(data) > 0x7FFF:
            raise ValueError(f"string of {len(data)} bytes does not fit an int16 length")
        b += I16.pack(len(data))
    b += data


@overload
def r_bytes_view(
    buf: memoryview, pos: int, compact: bool, nullable: Literal[False]
) -> tuple[memoryview, int]: ...


@overload
def r_bytes_view(
    buf: memoryview, pos: int, compact: bool, nullable: bool
) -> tuple[memoryview | None, int]: ...


def r_bytes_view(
    buf: memoryview, pos: int, compact: bool, nullable: bool
) -> tuple[memoryview | None, int]:
    n, pos = r_clen(buf, pos) if compact else r_len32(buf, pos)
    if n < 0:
        if n == -1 and nullable:
            return None, pos
        raise ProtocolError(f"invalid bytes length {n} at byte {pos}")
    end = _need(buf, pos, n)
    return buf[pos:end], end


@overload
def r_bytes(
    buf: memoryview, pos: int, compact: bool, nullable: Literal[False]
) -> tuple[bytes, int]: ...


@overload
def r_bytes(
    buf: memoryview, pos: int, compact: bool, nullable: bool
) -> tuple[bytes | None, int]: ...


def r_bytes(buf: memoryview, pos: int, compact: bool, nullable: bool) -> tuple[bytes | None, int]:
    view, pos = r_bytes_view(buf, pos, compact, nullable)
    return (None if view is None else bytes(view)), pos


def w_bytes(b: bytearray, data: bytes | bytearray | memoryview | None, compact: bool) -> None:
    if data is None:
        b += b"\x00" if compact else b"\xff\xff\xff\xff"
        return
    w_count(b, len(data), compact)
    b += data


def w_records(w: Writer, data: Records | None, compact: bool) -> None:
    if isinstance(data, FileRegion):
        w_count(w.buf, data.length, compact)
        if data.length:
            w.regions.append((len(w.buf), data))
        return
    w_bytes(w.buf, data, compact)


def r_uuid(buf: memoryview, pos: int) -> tuple[UUID, int]:
    end = _need(buf, pos, 16)
    return UUID(bytes=bytes(buf[pos:end])), end


# ---------------------------------------------------------------- arrays of scalars

_FIXED = {"int8": "b", "int16": "h", "uint16": "H", "int32": "i", "int64": "q", "float64": "d"}
_SIZES = {"b": 1, "h": 2, "H": 2, "i": 4, "q": 8, "d": 8}


@overload
def r_fixed_array(
    buf: memoryview, pos: int, code: str, compact: bool, nullable: Literal[False]
) -> tuple[list[Any], int]: ...


@overload
def r_fixed_array(
    buf: memoryview, pos: int, code: str, compact: bool, nullable: bool
) -> tuple[list[Any] | None, int]: ...


def r_fixed_array(
    buf: memoryview, pos: int, code: str, compact: bool, nullable: bool
) -> tuple[list[Any] | None, int]:
    """An array of one fixed-size scalar type, unpacked in one call."""
    n, pos = r_count(buf, pos, compact, nullable)
    if n < 0:
        return None, pos
    size = n * _SIZES[code]
    _need(buf, pos, size)
    return list(struct.unpack_from(f">{n}{code}", buf, pos)), pos + size


def w_fixed_array(b: bytearray, values: list[Any] | None, code: str, compact: bool) -> None:
    if values is None:
        b += b"\x00" if compact else b"\xff\xff\xff\xff"
        return
    w_count(b, len(values), compact)
    b += struct.pack(f">{len(values)}{code}", *values)


@overload
def r_str_array(
    buf: memoryview, pos: int, compact: bool, nullable: Literal[False]
) -> tuple[list[str], int]: ...


@overload
def r_str_array(
    buf: memoryview, pos: int, compact: bool, nullable: bool
) -> tuple[list[str] | None, int]: ...


def r_str_array(
    buf: memoryview, pos: int, compact: bool, nullable: bool
) -> tuple[list[str] | None, int]:
    n, pos = r_count(buf, pos, compact, nullable)
    if n < 0:
        return None, pos
    out: list[str] = []
    for _ in range(n):
        s, pos = r_str(buf, pos, compact, False)
        assert s is not None
        out.append(s)
    return out, pos


def w_str_array(b: bytearray, values: list[str] | None, compact: bool) -> None:
    if values is None:
        b += b"\x00" if compact else b"\xff\xff\xff\xff"
        return
    w_count(b, len(values), compact)
    for s in values:
        w_str(b, s, compact)


@overload
def r_uuid_array(
    buf: memoryview, pos: int, compact: bool, nullable: Literal[False]
) -> tuple[list[UUID], int]: ...


@overload
def r_uuid_array(
    buf: memoryview, pos: int, compact: bool, nullable: bool
) -> tuple[list[UUID] | None, int]: ...


def r_uuid_array(
    buf: memoryview, pos: int, compact: bool, nullable: bool
) -> tuple[list[UUID] | None, int]:
    n, pos = r_count(buf, pos, compact, nullable)
    if n < 0:
        return None, pos
    out: list[UUID] = []
    for _ in range(n):
        u, pos = r_uuid(buf, pos)
        out.append(u)
    return out, pos


def w_uuid_array(b: bytearray, values: list[UUID] | None, compact: bool) -> None:
    if values is None:
        b += b"\x00" if compact else b"\xff\xff\xff\xff"
        return
    w_count(b, len(values), compact)
    for u in values:
        b += u.bytes


# ---------------------------------------------------------------- tagged fields


def r_tags(buf: memoryview, pos: int) -> tuple[list[tuple[int, int, int]], int]:
    """The tagged-field section: a list of (tag, start, end) byte spans, in wire order."""
    count, pos = r_uvarint(buf, pos)
    if count > len(buf) - pos:
        raise ProtocolError(f"{count} tagged fields but only {len(buf) - pos} bytes remain")
    spans = []
    for _ in range(count):
        tag, pos = r_uvarint(buf, pos)
        size, pos = r_uvarint(buf, pos)
        end = _need(buf, pos, size)
        spans.append((tag, pos, end))
        pos = end
    return spans, pos


def w_tags(b: bytearray, known: list[tuple[int, bytes]], unknown: dict[int, bytes] | None) -> None:
    """Write tagged fields in ascending tag order (known ones, then any kept unknown ones)."""
    items = [*known, *sorted(unknown.items())] if unknown else known
    if len(items) > 1:
        items.sort(key=lambda item: item[0])
    w_uvarint(b, len(items))
    for tag, data in items:
        w_uvarint(b, tag)
        w_uvarint(b, len(data))
        b += data


def w_no_tags(b: bytearray, unknown: dict[int, bytes] | None) -> None:
    if unknown:
        w_tags(b, [], unknown)
    else:
        b.append(0)


def nullable_struct_marker(buf: memoryview, pos: int) -> tuple[bool, int]:
    """Nullable struct prefix: int8 -1 for null, 1 for present."""
    (marker,) = I8.unpack_from(buf, pos)
    if marker not in (-1, 1):
        raise ProtocolError(f"invalid nullable struct marker {marker} at byte {pos}")
    return marker == 1, pos + 1
