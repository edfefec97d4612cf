"""Compression codecs of Kafka record batches and message sets.

Theory of operation. A compressed v2 batch carries its whole record array as one blob after
`records_count`; a compressed legacy message carries an inner message set as its value. The
codec id (attribute bits 0-2) is 1 gzip, 2 snappy, 3 lz4, 4 zstd (zstd only in magic 2). Each
codec is written the way the Java client writes it and read the way the Java broker reads it:

- gzip: an RFC 1952 member (zlib with the gzip wrapper). Several concatenated members are read
  as one stream, as `java.util.zip.GZIPInputStream` does.
- snappy: the Java client uses xerial snappy-java's stream format: an 8-byte magic
  `0x82 'SNAPPY' 0x00`, int32 version and int32 compatible version (both 1, big-endian), then
  chunks of `int32 length` + one raw snappy block, each block holding up to 32 KiB of input.
  librdkafka writes the same framing; some producers write one raw snappy block instead, so
  on read the magic decides. The version fields are ignored on read, since some producers
  write them little-endian. A magic header at a chunk boundary restarts the stream
  (concatenated xerial streams), as snappy-java allows.
- lz4: the LZ4 frame format with independent 64 KiB blocks and no checksums, which is what
  Kafka's own frame writer produces; its reader rejects linked blocks. Magic 0 message sets
  predate KAFKA-3160: their frame header checksum byte was computed over the 4 magic bytes
  too, so for magic 0 it is written that broken way and ignored on read.
- zstd: one zstd frame. librdkafka omits the content size from the frame header, so reading
  streams and never trusts a declared size.

Every decoder stops with `CompressionError` (a ProtocolError) once the output would exceed
`max_size` bytes: a few KiB of zstd or gzip can expand to gigabytes, and the broker must not
let one produce request allocate that. No other exception escapes `compress`/`decompress`
for bytes off the wire.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

import cramjam
import lz4.frame
import zstandard

from protocol.errors import ProtocolError

__all__ = [
    "CODEC_NAMES",
    "DEFAULT_MAX_DECOMPRESSED_SIZE",
    "CompressionError",
    "compress",
    "decompress",
    "xxh32",
]

NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
CODEC_NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}

# Large enough for any batch a producer can send under a 1 MiB-ish max.request.size of
# well-compressed data, small enough that a bomb cannot exhaust memory.
DEFAULT_MAX_DECOMPRESSED_SIZE = 128 * 1024 * 1024

XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024
_INT32 = struct.Struct(">i")

_LZ4_MAGIC = b"\x04\x22\x4d\x18"  # 0x184D2204 little-endian
_LZ4_FLG_CONTENT_SIZE = 0x08
_LZ4_FLG_DICT_ID = 0x01

_GZIP_MAGIC = b"\x1f\x8b"
# zstd's largest expansion is one RLE block: 3 header bytes + 1 byte -> 128 KiB of output.
_ZSTD_MAX_RATIO = 1 << 15
_ZSTD_MIN_FEED = 64


class CompressionError(ProtocolError):
    """Compressed bytes that do not decode, an unknown codec id, or a decompression bomb."""


def compress(codec: int, data: bytes | bytearray | memoryview, *, magic: int = 2) -> bytes:
    """Compress `data` with codec id `codec` (0-4) as a Kafka producer would.

    `magic` matters only for lz4, where magic 0 gets the pre-KAFKA-3160 header checksum.
    Codec 0 returns the bytes unchanged. Raises CompressionError for an unknown codec id.
    """
    raw = bytes(data)
    if codec == NONE:
        return raw
    if codec == GZIP:
        # mtime=0 keeps the output deterministic (tests compare bytes); level 6 as zlib's default.
        obj = zlib.compressobj(6, zlib.DEFLATED, 31)
        return obj.compress(raw) + obj.flush()
    if codec == SNAPPY:
        return _xerial_compress(raw)
    if codec == LZ4:
        frame = lz4.frame.compress(
            raw,
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False,
            content_checksum=False,
            store_size=False,
        )
        return _lz4_set_header_checksum(frame, broken=True) if magic == 0 else frame
    if codec == ZSTD:
        return zstandard.ZstdCompressor(level=3).compress(raw)
    raise CompressionError(f"unknown compression codec id {codec}")


def decompress(
    codec: int,
    data: bytes | bytearray | memoryview,
    max_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
    *,
    magic: int = 2,
) -> bytes:
    """Decompress `data` written with codec id `codec`; at most `max_size` bytes of output.

    `magic` matters only for lz4 (magic 0: the frame header checksum is not checked).
    Raises CompressionError for corrupt or truncated input, an unknown codec id, or output
    larger than `max_size`.
    """
    if codec == NONE:
        if len(data) > max_size:
            raise _too_large(max_size)
        return bytes(data)
    decoder = _DECODERS.get(codec)
    if decoder is None:
        raise CompressionError(f"unknown compression codec id {codec}")
    if codec == LZ4 and magic == 0:
        data = _lz4_set_header_checksum(bytes(data), broken=False)
    return decoder(data, max_size)


def _too_large(max_size: int) -> CompressionError:
    return CompressionError(f"decompressed data exceeds the limit of {max_size} bytes")


# --- gzip -------------------------------------------------------------------------------------


def _gzip_decompress(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    out = bytearray()
    rest = bytes(data)
    while True:
        obj = zlib.decompressobj(31)
        pending = rest
        try:
            while pending:
                out += obj.decompress(pending, max_size + 1 - len(out))
                if len(out) > max_size:
                    raise _too_large(max_size)
                pending = obj.unconsumed_tail
                if obj.eof:
                    break
        except zlib.error as exc:
            raise CompressionError(f"gzip: {exc}") from None
        if not obj.eof:
            raise CompressionError("gzip: truncated stream")
        rest = obj.unused_data
        # GZIPInputStream reads on only if another member header follows; other trailing
        # bytes are ignored.
        if not rest.startswith(_GZIP_MAGIC):
            return bytes(out)


# --- snappy -----------------------------------------------------------------------------------


def _xerial_compress(raw: bytes) -> bytes:
    parts = [_XERIAL_HEADER]
    view = memoryview(raw)
    for start in range(0, len(raw), _XERIAL_BLOCK):
        block = bytes(cramjam.snappy.compress_raw(view[start : start + _XERIAL_BLOCK]))
        parts.append(_INT32.pack(len(block)))
        parts.append(block)
    return b"".join(parts)


def _snappy_decompress(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    raw = bytes(data)
    if not raw.startswith(XERIAL_MAGIC):
        return _snappy_block(raw, max_size)
    out = bytearray()
    pos, end = 0, len(raw)
    while pos < end:
        if raw.startswith(XERIAL_MAGIC, pos):
            if pos + len(_XERIAL_HEADER) > end:
                raise CompressionError("snappy: truncated xerial header")
            pos += len(_XERIAL_HEADER)
            continue
        if pos + 4 > end:
            raise CompressionError("snappy: truncated xerial chunk length")
        (length,) = _INT32.unpack_from(raw, pos)
        pos += 4
        if length < 0 or pos + length > end:
            raise CompressionError(f"snappy: xerial chunk length {length} out of bounds")
        out += _snappy_block(raw[pos : pos + length], max_size - len(out))
        pos += length
    return bytes(out)


def _snappy_block(block: bytes, max_size: int) -> bytes:
    try:
        size = int(cramjam.snappy.decompress_raw_len(block))
        if size > max_size:
            raise _too_large(max_size)
        return bytes(cramjam.snappy.decompress_raw(block))
    except cramjam.DecompressionError as exc:
        raise CompressionError(f"snappy: {exc}") from None


# --- lz4 --------------------------------------------------------------------------------------


def _lz4_decompress(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    dec = lz4.frame.LZ4FrameDecompressor()
    try:
        out = dec.decompress(bytes(data), max_length=max_size + 1)
        if len(out) > max_size or (not dec.eof and not dec.needs_input):
            raise _too_large(max_size)
    except RuntimeError as exc:  # lz4.frame reports every decoding failure this way
        raise CompressionError(f"lz4: {exc}") from None
    if not dec.eof:
        raise CompressionError("lz4: truncated frame")
    # Kafka's reader stops at the end mark; whatever follows it is ignored.
    return bytes(out)


def _lz4_set_header_checksum(frame: bytes, *, broken: bool) -> bytes:
    """Rewrite the frame descriptor checksum byte (HC) of an LZ4 frame.

    HC is the second byte of xxh32(descriptor), the descriptor being FLG, BD, the optional
    8-byte content size and the optional 4-byte dictionary id. The broken variant (magic 0)
    hashes the 4 magic bytes as well. A frame too short to hold a descriptor is returned
    unchanged so the decoder reports it.
    """
    if len(frame) < 7 or not frame.startswith(_LZ4_MAGIC):
        return frame
    flg = frame[4]
    hc_pos = 6
    if flg & _LZ4_FLG_CONTENT_SIZE:
        hc_pos += 8
    if flg & _LZ4_FLG_DICT_ID:
        hc_pos += 4
    if len(frame) <= hc_pos:
        return frame
    hashed = frame[0:hc_pos] if broken else frame[4:hc_pos]
    hc = (xxh32(hashed) >> 8) & 0xFF
    return frame[:hc_pos] + bytes((hc,)) + frame[hc_pos + 1 :]


_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
_M32 = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def xxh32(data: bytes, seed: int = 0) -> int:
    """XXH32 of `data` (used only for lz4 frame header checksums, a few bytes long)."""
    n, pos = len(data), 0
    if n >= 16:
        acc = [(seed + _P1 + _P2) & _M32, (seed + _P2) & _M32, seed & _M32, (seed - _P1) & _M32]
        while pos + 16 <= n:
            for i in range(4):
                lane = int.from_bytes(data[pos : pos + 4], "little")
                acc[i] = (_rotl((acc[i] + lane * _P2) & _M32, 13) * _P1) & _M32
                pos += 4
        h = (_rotl(acc[0], 1) + _rotl(acc[1], 7) + _rotl(acc[2], 12) + _rotl(acc[3], 18)) & _M32
    else:
        h = (seed + _P5) & _M32
    h = (h + n) & _M32
    while pos + 4 <= n:
        lane = int.from_bytes(data[pos : pos + 4], "little")
        h = (_rotl((h + lane * _P3) & _M32, 17) * _P4) & _M32
        pos += 4
    while pos < n:
        h = (_rotl((h + data[pos] * _P5) & _M32, 11) * _P1) & _M32
        pos += 1
    h = ((h ^ (h >> 15)) * _P2) & _M32
    h = ((h ^ (h >> 13)) * _P3) & _M32
    return h ^ (h >> 16)


# --- zstd -------------------------------------------------------------------------------------


def _zstd_decompress(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    """Stream-decode one or more concatenated zstd frames.

    Input is fed in slices sized so that even the densest zstd block cannot take the output
    more than about `max_size` past the limit before the check below runs.
    """
    raw = memoryview(bytes(data))
    out = bytearray()
    pos = 0
    try:
        while True:
            obj = zstandard.ZstdDecompressor().decompressobj()
            while not obj.eof and pos < len(raw):
                budget = max_size - len(out)
                step = max(_ZSTD_MIN_FEED, budget // _ZSTD_MAX_RATIO)
                chunk = raw[pos : pos + step]
                pos += len(chunk)
                out += obj.decompress(chunk)
                if len(out) > max_size:
                    raise _too_large(max_size)
            if not obj.eof:
                raise CompressionError("zstd: truncated frame")
            pos -= len(obj.unused_data)
            if pos >= len(raw):
                return bytes(out)
    except zstandard.ZstdError as exc:
        raise CompressionError(f"zstd: {exc}") from None


_DECODERS: dict[int, Callable[[bytes | bytearray | memoryview, int], bytes]] = {
    GZIP: _gzip_decompress,
    SNAPPY: _snappy_decompress,
    LZ4: _lz4_decompress,
    ZSTD: _zstd_decompress,
}
