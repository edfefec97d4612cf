"""The one exception a decoder may raise."""

from __future__ import annotations


class ProtocolError(Exception):
    """Bytes that do not decode as the Kafka protocol says they must.

    Raised by every decoder in `protocol/` (frames, headers, messages, record batches, message
    sets, codecs). The broker closes the connection on a frame-level ProtocolError and turns a
    batch-level one into CORRUPT_MESSAGE for that partition only.
    """
