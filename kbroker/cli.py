"""The `kbroker` command: start a broker from a server.properties file and flags.

    kbroker [server.properties] [--override key=value ...] [--ephemeral] [--port N]
            [--host H] [--print-bootstrap] [--log-level LEVEL]

Settings come from, lowest precedence first: built-in defaults, the properties file,
`--override` (in order), then the shorthand flags (`--host`, `--port`, `--ephemeral`).
`--host`/`--port` change the first entry of `listeners`; an explicitly configured
`advertised.listeners` is left as it is. With `--print-bootstrap`, the only thing written to
stdout is one `host:port` line once the broker serves, so that test suites in any language can
start `kbroker --ephemeral --port 0 --print-bootstrap` and read its address. Logs go to stderr.

Exit status: what the server returns: 0 after a clean shutdown, which is what SIGTERM and SIGINT
cause while it serves; 2 for a configuration or usage error (with a one-line message on stderr
saying what to fix); 130 after Ctrl-C and 143 after SIGTERM only if they arrive before the
server has taken over the signals (during start-up).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Protocol, TextIO, cast

from kbroker.config import (
    BrokerConfig,
    ConfigError,
    Listener,
    ephemeral_log_dirs,
    format_host_port,
    load_config,
)

BoundAddresses = list[tuple[str, int]]
ReadyCallback = Callable[[BoundAddresses], None]

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")
_EXIT_CONFIG_ERROR = 2
_EXIT_INTERRUPTED = 128 + signal.SIGINT
_EXIT_TERMINATED = 128 + signal.SIGTERM

log = logging.getLogger(__name__)


class RunServer(Protocol):
    """The contract of `kbroker.server.run`."""

    def __call__(self, config: BrokerConfig, *, ready: ReadyCallback | None = None) -> int: ...


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `kbroker` command."""
    parser = argparse.ArgumentParser(
        prog="kbroker",
        description="A Kafka-wire-compatible message broker.",
        epilog="Settings use Kafka's names, e.g. --override num.partitions=3.",
    )
    parser.add_argument(
        "config", nargs="?", metavar="server.properties", help="Kafka-style properties file"
    )
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a config, over the file's value (repeatable)",
    )
    parser.add_argument(
        "--ephemeral",
        action="store_true",
        help="keep data in a temporary directory removed at exit (kbroker.ephemeral=true)",
    )
    parser.add_argument(
        "--port", type=_port, metavar="N", help="port of the first listener; 0 picks a free one"
    )
    parser.add_argument(
        "--host", metavar="H", help="host of the first listener ('' binds every interface)"
    )
    parser.add_argument(
        "--print-bootstrap",
        action="store_true",
        help="print one host:port line to stdout once serving",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=_LOG_LEVELS,
        default="INFO",
        metavar="LEVEL",
        help=f"one of {', '.join(_LOG_LEVELS)} (default INFO)",
    )
    return parser


def _port(text: str) -> int:
    """argparse type for --port: an integer from 0 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not between 0 and 65535")
    return port


def build_config(argv: Sequence[str]) -> BrokerConfig:
    """Parse the command line and build the config it describes (no server is started).

    Raises ConfigError for invalid settings; argparse exits with status 2 on bad usage.
    """
    return config_from_args(build_parser().parse_args(argv))


def config_from_args(args: argparse.Namespace) -> BrokerConfig:
    """Apply the file, the overrides, then the shorthand flags, in that order."""
    config = load_config(args.config, args.override)
    flags: dict[str, str] = {}
    if args.host is not None or args.port is not None:
        flags["listeners"] = _relocated_listeners(config.listeners, args.host, args.port)
    if args.ephemeral:
        flags["kbroker.ephemeral"] = "true"
    return config.with_overrides(flags) if flags else config


def _relocated_listeners(listeners: list[Listener], host: str | None, port: int | None) -> str:
    """The `listeners` value with the first listener moved to host/port."""
    first = listeners[0]
    moved = Listener(
        first.name,
        first.host if host is None else host,
        first.port if port is None else port,
        first.security_protocol,
    )
    return ",".join(str(listener) for listener in [moved, *listeners[1:]])


def bootstrap_address(config: BrokerConfig, bound: BoundAddresses) -> str:
    """The `host:port` clients should bootstrap from, given the addresses the server bound.

    The host is the first advertised listener's, unless that is a wildcard; then a concrete
    bound address, else localhost. The port is the bound one unless advertised.listeners
    sets a fixed port (a NAT or container mapping).
    """
    advertised = config.advertised_listeners[0]
    bound_host, bound_port = bound[0] if bound else ("", advertised.port)
    host = advertised.host
    if host in _WILDCARD_HOSTS:
        host = bound_host if bound_host not in _WILDCARD_HOSTS else "localhost"
    fixed_port = config.is_set("advertised.listeners") and advertised.port != 0
    return format_host_port(host, advertised.port if fixed_port else bound_port)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kbroker` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        return _config_error(exc)
    ready = _bootstrap_printer(config) if args.print_bootstrap else None
    run = _load_server_run()
    try:
        with ephemeral_log_dirs(config) as effective, _sigterm_exits():
            return run(effective, ready=ready)
    except ConfigError as exc:
        return _config_error(exc)
    except KeyboardInterrupt:
        log.info("interrupted; stopped")
        return _EXIT_INTERRUPTED


def _config_error(exc: ConfigError) -> int:
    print(f"kbroker: error: {exc}", file=sys.stderr)
    return _EXIT_CONFIG_ERROR


def _bootstrap_printer(config: BrokerConfig) -> ReadyCallback:
    """A `ready` callback printing the bootstrap line once, however often it is called."""
    printed = False

    def ready(bound: BoundAddresses) -> None:
        nonlocal printed
        if not printed:
            printed = True
            print(bootstrap_address(config, bound), file=sys.stdout, flush=True)

    return ready


def _load_server_run() -> RunServer:
    """Import the server only when starting one, so config errors report fast."""
    module = importlib.import_module("kbroker.server")
    return cast(RunServer, module.run)


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """Turn SIGTERM into SystemExit(143) so cleanup (the ephemeral dir) runs.

    The server may install its own handler for a graceful stop; this is the fallback.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(_EXIT_TERMINATED)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at the time of the record (it may be replaced)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(level: str) -> None:
    """Send log records to stderr with timestamps, at `level` and above (idempotent)."""
    root = logging.getLogger()
    if not any(isinstance(handler, _StderrHandler) for handler in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
