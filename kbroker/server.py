"""Run a broker until SIGTERM/SIGINT: `run(config, ready=...)` is what the CLI and tests call.

Shutdown is clean: stop accepting connections, close the open ones, flush every log, write
checkpoints and the clean-shutdown marker (LogManager.close).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from kbroker.broker import Broker
from kbroker.config import BrokerConfig

log = logging.getLogger("kbroker")


async def serve(
    config: BrokerConfig,
    ready: Callable[[list[tuple[str, int]], Broker], None] | None = None,
    stop: asyncio.Event | None = None,
    handle_signals: bool = True,
) -> int:
    """Serve until `stop` is set (or SIGTERM/SIGINT when `handle_signals`, main thread only)."""
    broker = Broker(config)
    bound = await broker.start()
    if ready is not None:
        ready(bound, broker)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await broker.stop()
    return 0


def run(
    config: BrokerConfig, *, ready: Callable[[list[tuple[str, int]]], None] | None = None
) -> int:
    """Serve until SIGTERM or SIGINT; returns the exit status (0 after a clean shutdown)."""
    if ready is None:
        return asyncio.run(serve(config))
    callback = ready
    return asyncio.run(serve(config, lambda bound, _broker: callback(bound)))
