"""What a handler knows about the request it serves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocol.messages.request_header import RequestHeader

if TYPE_CHECKING:
    from kbroker.broker import Broker
    from kbroker.network import Connection


@dataclass(slots=True)
class RequestContext:
    broker: Broker
    connection: Connection
    header: RequestHeader

    @property
    def api_version(self) -> int:
        return self.header.request_api_version

    @property
    def client_id(self) -> str | None:
        return self.header.client_id

    @property
    def client_host(self) -> str:
        """The client's address as Kafka reports it in group descriptions (`/127.0.0.1`)."""
        host = self.connection.peer.rpartition(":")[0] or self.connection.peer
        return "/" + host
