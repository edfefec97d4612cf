"""librdkafka's built-in mock cluster as a stand-alone broker: `python -m compat.mock_cluster`.

librdkafka starts a mock cluster inside any client handle configured with
`test.mock.num.brokers=N`; the cluster lives as long as that handle. Its address is not
returned by any Python API, but librdkafka logs it ("Mock cluster enabled: ... replaced with
127.0.0.1:PORT"), so this program creates an owning producer with a logger, reads the address
from the log, prints it as its only stdout line, and keeps the handle alive until stdin reaches
EOF (or SIGTERM). With `debug=mock`, the mock brokers log every connection and request; those
lines go to stderr, which is the "broker log" compat shows for a failing cell.

Use it from anything: `python -m compat.mock_cluster | { read addr; ...; }`, or
`python -m compat --mock`, which runs the whole matrix against it.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import select
import signal
import sys
import time
from types import FrameType

from confluent_kafka import Producer

_ADDRESS = re.compile(r"replaced with (\S+:\d+)")
START_TIMEOUT_S = 15.0


class _Forward(logging.Handler):
    """Every librdkafka log line to stderr; the first mock address into `found`."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        match = _ADDRESS.search(message)
        if match and not self.found:
            self.found.append(match.group(1))
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        sys.stderr.write(f"{stamp}.{int(record.msecs):03d} {message}\n")
        sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.mock_cluster", description=__doc__)
    parser.add_argument("--brokers", type=int, default=1, help="test.mock.num.brokers")
    parser.add_argument("--quiet", action="store_true", help="no debug=mock request log")
    args = parser.parse_args(argv)
    handler = _Forward()
    logger = logging.getLogger("mock-cluster")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    config: dict[str, object] = {"test.mock.num.brokers": args.brokers, "logger": logger}
    if not args.quiet:
        config["debug"] = "mock"
    owner = Producer(config)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not handler.found and time.monotonic() < deadline:
        owner.poll(0.05)
    if not handler.found:
        print("no mock cluster address in librdkafka's log", file=sys.stderr)
        return 1
    print(handler.found[0], flush=True)
    stop = False

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    while not stop:
        owner.poll(0)  # serves the logger callback
        ready, _, _ = select.select([sys.stdin], [], [], 0.1)
        if ready and not os.read(sys.stdin.fileno(), 4096):
            break
    owner.poll(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
