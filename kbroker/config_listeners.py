"""Listener endpoints: parsing `listeners`, `advertised.listeners` and the protocol map.

Kafka writes an endpoint as `NAME://host:port`: NAME is a listener name (upper-cased, and
mapped to a security protocol by `listener.security.protocol.map`), host may be empty (bind
every interface) or an IPv6 literal in brackets, and port 0 asks the OS for a free port.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kbroker.config_broker_defs import SECURITY_PROTOCOLS
from kbroker.config_types import ConfigError

# Kafka's endpoint syntax: NAME://host:port, host optionally in brackets (IPv6), maybe empty.
_ENDPOINT = re.compile(r"(.*)://\[?([0-9a-zA-Z\-%._:]*)\]?:(-?[0-9]+)")
WILDCARD_HOSTS = ("0.0.0.0", "::")


@dataclass(frozen=True)
class Listener:
    """One entry of `listeners` / `advertised.listeners`.

    `host` is "" for Kafka's "bind every interface" (`PLAINTEXT://:9092`); `port` 0 asks the
    OS for a free port, which the server substitutes once bound.
    """

    name: str
    host: str
    port: int
    security_protocol: str

    def __str__(self) -> str:
        return f"{self.name}://{format_host_port(self.host, self.port)}"

    def bind_hosts(self) -> tuple[str | None, ...]:
        """Addresses to bind, None meaning every interface (asyncio's `host=None`).

        'localhost' gives both loopbacks because clients disagree on what it resolves to
        (librdkafka tries ::1 first, the JVM 127.0.0.1); binding one would break the other.
        A host without IPv6 may fail to bind ::1; the server should then keep the other.
        """
        if not self.host:
            return (None,)
        if self.host.lower() == "localhost":
            return ("127.0.0.1", "::1")
        return (self.host,)

    def with_port(self, port: int) -> Listener:
        """The same listener on another port (the bound one, when configured with 0)."""
        return Listener(self.name, self.host, port, self.security_protocol)


def format_host_port(host: str, port: int) -> str:
    """host:port, with brackets around IPv6 literals, as Kafka writes endpoints."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_security_protocol_map(raw: str) -> dict[str, str]:
    """Parse `listener.security.protocol.map` (NAME:PROTOCOL,...) into upper-case names."""
    result: dict[str, str] = {}
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, sep, protocol = item.partition(":")
        protocol = protocol.strip().upper()
        if not sep or not name.strip() or protocol not in SECURITY_PROTOCOLS:
            expected = (
                f"entry {item!r} must be NAME:PROTOCOL with PROTOCOL one of "
                f"{', '.join(SECURITY_PROTOCOLS)}"
            )
            raise ConfigError.invalid("listener.security.protocol.map", raw, expected)
        if name.strip().upper() in result:
            raise ConfigError.invalid(
                "listener.security.protocol.map", raw, f"listener {name!r} appears twice"
            )
        result[name.strip().upper()] = protocol
    return result


def parse_listeners(
    config_name: str, entries: Sequence[str], protocol_map: Mapping[str, str]
) -> list[Listener]:
    """Parse endpoint strings; names must be unique and mapped to a security protocol."""
    listeners: list[Listener] = []
    for entry in entries:
        match = _ENDPOINT.fullmatch(entry)
        if not match:
            expected = "expected NAME://host:port, e.g. PLAINTEXT://localhost:9092"
            raise ConfigError.invalid(config_name, entry, expected)
        name, host, port = match.group(1).upper(), match.group(2), int(match.group(3))
        if not 0 <= port <= 65535:
            raise ConfigError.invalid(config_name, entry, "port must be between 0 and 65535")
        if name not in protocol_map:
            expected = f"listener name {name} has no entry in listener.security.protocol.map"
            raise ConfigError.invalid(config_name, entry, expected)
        if any(existing.name == name for existing in listeners):
            raise ConfigError.invalid(config_name, entry, f"listener name {name} is used twice")
        listeners.append(Listener(name, host, port, protocol_map[name]))
    return listeners
