"""A throwaway broker for tests and scripts, in this process, on a free port.

    with kbroker.testing.Broker() as broker:
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})

The broker runs on its own event loop in a background thread, with its data in a temporary
directory removed on exit (unless `data_dir` is given, which is kept, for restart tests).
`group.initial.rebalance.delay.ms` is 0 so that consumer groups form at once, and KIP-848
members (`group.protocol=consumer`) heartbeat every 500 ms instead of 5 s, so that they
rebalance in well under a second.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import tempfile
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from kbroker import broker as broker_module
from kbroker.config import load_config
from kbroker.server import serve

T = TypeVar("T")

TEST_DEFAULTS = {
    "listeners": "PLAINTEXT://localhost:0",
    "group.initial.rebalance.delay.ms": "0",
    "group.consumer.heartbeat.interval.ms": "500",
    "group.consumer.min.heartbeat.interval.ms": "100",
}
START_TIMEOUT_S = 30.0


class Broker:
    def __init__(self, overrides: dict[str, str] | None = None, data_dir: str | None = None):
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="kbroker-")
        settings = {**TEST_DEFAULTS, "log.dirs": self.data_dir, **(overrides or {})}
        self.config = load_config(None, [f"{k}={v}" for k, v in settings.items()])
        self.bound: list[tuple[str, int]] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.broker: broker_module.Broker | None = None
        self._thread = threading.Thread(target=self._run, name="kbroker", daemon=True)

    @property
    def port(self) -> int:
        return self.bound[0][1]

    @property
    def bootstrap_servers(self) -> str:
        return f"localhost:{self.port}"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._stop = asyncio.Event()

        def ready(bound: list[tuple[str, int]], broker: broker_module.Broker) -> None:
            self.bound = bound
            self.broker = broker
            self._ready.set()

        try:
            loop.run_until_complete(serve(self.config, ready, self._stop, handle_signals=False))
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    def start(self) -> Broker:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError(f"kbroker did not start within {START_TIMEOUT_S} s")
        if self._error is not None:
            raise RuntimeError("kbroker failed to start") from self._error
        return self

    def run(self, fn: Callable[[broker_module.Broker], T]) -> concurrent.futures.Future[T]:
        """Call `fn(broker)` on the broker's event loop (its state has one owner: that loop)."""
        assert self._loop is not None and self.broker is not None
        target = self.broker

        async def call() -> T:
            return fn(target)

        return asyncio.run_coroutine_threadsafe(call(), self._loop)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(START_TIMEOUT_S)
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
