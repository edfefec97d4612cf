"""Listeners and connections: bytes in, frames to the dispatcher, responses out in order.

Theory of operation. Each connection is an asyncio BufferedProtocol whose receive buffer is the
`FrameDecoder`'s (one copy at most per frame). Complete frames go into a per-connection queue
served by one task, so requests are handled one at a time and responses leave in request order,
as Kafka's broker does by muting a channel while a request is in flight. Reading pauses when a
client pipelines more than `MAX_QUEUED` requests. A response is a `Writer`: its buffer slices are
written to the transport, and its file regions (record bytes of a fetch) are sent with
`loop.sendfile`, which on the standard selector event loop is a native `os.sendfile` (zero-copy).
A frame that cannot be decoded closes only its own connection, with a log line saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable

from protocol._codec import FileRegion, Writer
from protocol.errors import ProtocolError
from protocol.frames import FrameDecoder

log = logging.getLogger("kbroker.network")

MAX_QUEUED = 16  # frames read ahead of the one being handled before reading pauses
WRITE_HIGH_WATER = 4 * 1024 * 1024


class CloseConnection(Exception):
    """Raised by a handler to close the connection without a response (Kafka's behaviour for
    an unsupported API version, or an acks=0 produce that failed)."""


class Connection(asyncio.BufferedProtocol):
    """One client connection."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.decoder = FrameDecoder(server.max_frame_size)
        self.queue: asyncio.Queue[bytearray] = asyncio.Queue()
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.last_active = time.monotonic()
        self.closed = False
        self.reading_paused = False
        self._task: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()
        self._drained.set()

    # ---------------------------------------------------------------- asyncio protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.server.connections.add(self)
        self._task = asyncio.get_running_loop().create_task(self._serve())

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.decoder.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.last_active = time.monotonic()
        try:
            frames = self.decoder.buffer_updated(nbytes)
        except ProtocolError as exc:
            self.abort(f"bad frame: {exc}")
            return
        for frame in frames:
            self.queue.put_nowait(frame)
        if self.queue.qsize() >= MAX_QUEUED and self.transport and not self.reading_paused:
            self.transport.pause_reading()
            self.reading_paused = True

    def eof_received(self) -> bool:
        return False  # close once the queued requests are answered? Kafka closes at once.

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self._drained.set()
        if self._task is not None:
            self._task.cancel()

    def pause_writing(self) -> None:
        self._drained.clear()

    def resume_writing(self) -> None:
        self._drained.set()

    # ---------------------------------------------------------------- serving

    def abort(self, why: str) -> None:
        if not self.closed:
            log.warning("closing connection from %s: %s", self.peer, why)
            self.closed = True
            if self.transport is not None:
                self.transport.abort()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    async def _serve(self) -> None:
        try:
            while not self.closed:
                frame = await self.queue.get()
                if self.reading_paused and self.queue.qsize() < MAX_QUEUED // 2:
                    assert self.transport is not None
                    self.transport.resume_reading()
                    self.reading_paused = False
                await self._handle(frame)
        except asyncio.CancelledError:
            pass

    async def _handle(self, frame: bytearray) -> None:
        try:
            response = await self.server.dispatch(self, frame)
        except ProtocolError as exc:
            self.abort(f"malformed request: {exc}")
            return
        except CloseConnection as exc:
            self.abort(str(exc))
            return
        except Exception:
            log.exception("unexpected error handling a request from %s", self.peer)
            self.abort("internal error (see the traceback above)")
            return
        if response is not None and not self.closed:
            await self.send(response)
        self.last_active = time.monotonic()

    async def send(self, response: Writer) -> None:
        transport = self.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        for chunk in response.chunks():
            if self.closed:
                return
            if isinstance(chunk, FileRegion):
                await self._sendfile(loop, transport, chunk)
            else:
                transport.write(chunk)
        if not self._drained.is_set():
            await self._drained.wait()

    async def _sendfile(
        self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, region: FileRegion
    ) -> None:
        """Send one file region; any failure closes the connection, with a log line.

        Opening the region belongs to the send: the segment may have been deleted, or its
        descriptor may not reopen (EMFILE, EIO), after the fetch chose it. The response is
        then half-written, so the connection cannot go on. Leaving the `with` (normally or
        not) unpins the descriptor; the file lease goes with the response, which the caller
        drops as soon as this returns.
        """
        try:
            with region.open() as fd, open(fd, "rb", buffering=0, closefd=False) as file:
                sent = await loop.sendfile(transport, file, region.offset, region.length)
        except (OSError, ValueError, RuntimeError) as exc:  # ConnectionError is an OSError
            self.abort(f"sendfile failed: {exc}")
            return
        if sent != region.length:  # the file shrank under us (truncation): framing is broken
            self.abort(f"sendfile sent {sent} of {region.length} bytes")


class Server:
    """All listeners of a broker and their connections."""

    def __init__(
        self,
        dispatch: Callable[[Connection, bytearray], Awaitable[Writer | None]],
        max_frame_size: int,
        idle_ms: int,
    ) -> None:
        self.dispatch = dispatch
        self.max_frame_size = max_frame_size
        self.idle_seconds = idle_ms / 1000
        self.connections: set[Connection] = set()
        self.servers: list[asyncio.Server] = []
        self._reaper: asyncio.Task[None] | None = None

    async def listen(self, hosts: tuple[str | None, ...], port: int) -> list[tuple[str, int]]:
        """Bind every host on `port` (0 = one free port shared by all hosts)."""
        loop = asyncio.get_running_loop()
        bound: list[tuple[str, int]] = []
        for host in hosts:
            server = await loop.create_server(
                lambda: Connection(self), host, port, reuse_address=True, backlog=1024
            )
            self.servers.append(server)
            for sock in server.sockets:
                addr = sock.getsockname()
                bound.append((addr[0], addr[1]))
                port = addr[1]  # the other hosts of this listener share the chosen port
        if self._reaper is None:
            self._reaper = loop.create_task(self._reap_idle())
        return bound

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(min(self.idle_seconds / 2, 30.0))
            cutoff = time.monotonic() - self.idle_seconds
            for conn in list(self.connections):
                if conn.last_active < cutoff and conn.queue.empty():
                    log.info("closing idle connection from %s", conn.peer)
                    conn.close()

    async def stop_accepting(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()

    async def close_all(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for conn in list(self.connections):
            conn.close()
