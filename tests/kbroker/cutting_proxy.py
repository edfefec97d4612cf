"""A TCP proxy that drops the response of every Nth Produce request by cutting the connection.

It forwards whole frames from client to broker. Before forwarding a Produce request that is due
to be cut it marks the connection dead, so that nothing the broker sends back reaches the client;
then it forwards the request and closes both sides. The request is applied, the client never
hears of it and retries: the idempotent producer's duplicate detection is what keeps the log
exactly-once.
"""

from __future__ import annotations

import socket
import struct
import threading

PRODUCE = 0


class CuttingProxy:
    def __init__(self, cut_every: int) -> None:
        self.cut_every = cut_every
        self.produce_requests = 0
        self.cuts = 0
        self.upstream: tuple[str, int] | None = None
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        self._sockets: list[socket.socket] = []

    def start(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in list(self._sockets):
            sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            assert self.upstream is not None
            broker = socket.create_connection(self.upstream)
            self._sockets += [client, broker]
            dead = threading.Event()
            threading.Thread(
                target=self._requests, args=(client, broker, dead), daemon=True
            ).start()
            threading.Thread(
                target=self._responses, args=(broker, client, dead), daemon=True
            ).start()

    def _requests(
        self, client: socket.socket, broker: socket.socket, dead: threading.Event
    ) -> None:
        try:
            while True:
                head = _recv_exactly(client, 4)
                (size,) = struct.unpack(">i", head)
                frame = _recv_exactly(client, size)
                (api_key,) = struct.unpack_from(">h", frame)
                cut = False
                if api_key == PRODUCE:
                    with self._lock:
                        self.produce_requests += 1
                        cut = self.produce_requests % self.cut_every == 0
                if cut:
                    dead.set()  # the response to this request must never reach the client
                broker.sendall(head + frame)
                if cut:
                    with self._lock:
                        self.cuts += 1
                    break
        except (OSError, ConnectionError):
            pass
        dead.set()
        client.close()
        broker.close()

    @staticmethod
    def _responses(broker: socket.socket, client: socket.socket, dead: threading.Event) -> None:
        try:
            while not dead.is_set():
                data = broker.recv(65536)
                if not data or dead.is_set():
                    break
                client.sendall(data)
        except OSError:
            pass
        client.close()


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data
