"""Handler registry: the single source for dispatch and for what ApiVersions advertises.

Each module of this package serves one API and registers its coroutine with `@handles(key,
min_version, max_version)`; the versions given there are exactly what the broker advertises,
so every version inside the range must work (clients pick min(client max, broker max)).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from protocol._codec import ApiMessage
from protocol.api_keys import API_SPECS, ApiKey

if TYPE_CHECKING:
    from kbroker.context import RequestContext

HandlerFn = Callable[["RequestContext", Any], Awaitable[ApiMessage | None]]
F = TypeVar("F", bound=HandlerFn)

# One module per API; importing a module registers its handler.
MODULES = (
    "api_versions",
    "metadata",
    "produce",
    "fetch",
    "list_offsets",
    "offset_for_leader_epoch",
    "create_topics",
    "delete_topics",
    "describe_configs",
    "alter_configs",
    "incremental_alter_configs",
    "create_partitions",
    "delete_records",
    "describe_cluster",
    "describe_log_dirs",
    "describe_topic_partitions",
    "init_producer_id",
    "add_partitions_to_txn",
    "add_offsets_to_txn",
    "end_txn",
    "describe_transactions",
    "list_transactions",
    "find_coordinator",
    "join_group",
    "sync_group",
    "heartbeat",
    "leave_group",
    "offset_commit",
    "offset_fetch",
    "offset_delete",
    "txn_offset_commit",
    "describe_groups",
    "list_groups",
    "delete_groups",
    "consumer_group_heartbeat",
    "consumer_group_describe",
    "write_txn_markers",
    "describe_producers",
)


@dataclass(frozen=True)
class Handler:
    key: ApiKey
    min_version: int
    max_version: int
    fn: HandlerFn


REGISTRY: dict[int, Handler] = {}


def handles(key: ApiKey, min_version: int, max_version: int) -> Callable[[F], F]:
    """Register a handler for `key` at versions min..max (within what the protocol declares)."""
    spec = API_SPECS[key]
    if not spec.min_version <= min_version <= max_version <= spec.max_version:
        raise ValueError(f"{key.name}: {min_version}-{max_version} outside the declarations")

    def register(fn: F) -> F:
        if key in REGISTRY:
            raise ValueError(f"{key.name} is registered twice")
        REGISTRY[key] = Handler(key, min_version, max_version, fn)
        return fn

    return register


def load() -> dict[int, Handler]:
    for name in MODULES:
        importlib.import_module(f"kbroker.handlers.{name}")
    return REGISTRY
