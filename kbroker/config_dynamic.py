"""Dynamic broker configs kept across restarts: what AlterConfigs set on the broker resources.

Theory of operation. Kafka keeps dynamic broker configs outside `server.properties`: in
ZooKeeper (`/config/brokers/<id>` and `/config/brokers/<default>`) before KRaft, in the
metadata log since. A single-node kbroker has neither, so it keeps both layers in one file in
the first log dir, next to the topic store, rewritten on every change and read at start-up,
where they are layered over the static config with their sources (DYNAMIC_BROKER_CONFIG,
DYNAMIC_DEFAULT_BROKER_CONFIG) as before the restart.

File format (`kbroker-dynamic-configs.json`, version 1), UTF-8 JSON:
    {"version": 1, "broker_id": 0, "broker": {"log.retention.ms": "1000", ...},
     "default": {...}, "checksum": <CRC-32C of the same object without "checksum", written
     with sorted keys and no whitespace>}
`broker` is the per-broker layer of node `broker_id` (a per-broker config belongs to one
broker, as Kafka keys it by id); `default` is the cluster-wide layer (resource name "").

Crash safety: written with storage's `write_atomically` (temporary file, fsync, rename,
directory fsync), so a crash leaves the old or the new file. A write that fails raises
KafkaStorageError and the caller keeps the configs it had, so what is in force is always what
a restart brings back. A file that does not parse or fails its checksum stops start-up with
DynamicConfigError (running on a different config than the operator set is worse than not
starting; deleting the file returns to server.properties). An entry that is no longer a valid
dynamic config (an upgrade changed it) is skipped with a warning, as Kafka does. No dynamic
config kbroker declares is sensitive, so values are stored as they are. Event loop only.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import crc32c

from kbroker.config import BrokerConfig
from kbroker.config_types import ConfigError
from storage.errors import KafkaStorageError
from storage.fs import OS_FS

log = logging.getLogger("kbroker.config")

FILE_NAME = "kbroker-dynamic-configs.json"
VERSION = 1


class DynamicConfigError(Exception):
    """The dynamic config file is unreadable: wrong version, bad JSON, checksum mismatch."""


def _checksum(body: Mapping[str, Any]) -> int:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return int(crc32c.crc32c(canonical.encode("utf-8")))


def save_dynamic_configs(
    directory: str, broker_id: int, per_broker: Mapping[str, str], default: Mapping[str, str]
) -> None:
    """Persist both dynamic layers; KafkaStorageError if the disk refuses (nothing changed)."""
    body: dict[str, Any] = {
        "version": VERSION,
        "broker_id": broker_id,
        "broker": dict(per_broker),
        "default": dict(default),
    }
    body["checksum"] = _checksum(body)
    path = os.path.join(directory, FILE_NAME)
    try:
        OS_FS.write_atomically(path, json.dumps(body, indent=1, sort_keys=True).encode("utf-8"))
    except OSError as exc:
        raise KafkaStorageError(f"cannot write {path}: {exc}") from exc


def read_dynamic_configs(directory: str, broker_id: int) -> tuple[dict[str, str], dict[str, str]]:
    """The persisted (per-broker, cluster default) layers; empty ones when there is no file."""
    path = os.path.join(directory, FILE_NAME)
    try:
        with open(path, "rb") as f:
            body = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        return {}, {}
    except (OSError, ValueError) as exc:
        raise DynamicConfigError(
            f"{path}: unreadable ({exc}); delete it to start without it"
        ) from exc
    if not isinstance(body, dict) or body.get("version") != VERSION:
        version = body.get("version") if isinstance(body, dict) else None
        raise DynamicConfigError(f"{path}: unsupported version {version!r}")
    stored = body.pop("checksum", None)
    if stored != _checksum(body):
        raise DynamicConfigError(f"{path}: checksum mismatch; delete it to start without it")
    per_broker, default = _layer(body, "broker", path), _layer(body, "default", path)
    if per_broker and body.get("broker_id") != broker_id:
        log.warning(
            "%s: ignoring the dynamic configs of broker %s: this is broker %d",
            path,
            body.get("broker_id"),
            broker_id,
        )
        per_broker = {}
    return per_broker, default


def _layer(body: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    """One layer, keeping only entries that are still valid dynamic broker configs."""
    raw = body.get(key, {})
    if not isinstance(raw, dict):
        raise DynamicConfigError(f"{path}: {key!r} is not an object")
    layer: dict[str, str] = {}
    for name, value in raw.items():
        try:
            if not isinstance(value, str):
                raise ConfigError(f"{name}: value {value!r} is not a string", name)
            BrokerConfig.validate_dynamic({name: value})
        except (ConfigError, ValueError) as exc:
            log.warning("%s: skipping dynamic config %s=%r: %s", path, name, value, exc)
            continue
        layer[name] = value
    return layer


def with_persisted_dynamic_configs(config: BrokerConfig, directory: str) -> BrokerConfig:
    """`config` with the dynamic layers saved in `directory` (itself when there are none)."""
    broker_id = max(config.node_id, 0)
    per_broker, default = read_dynamic_configs(directory, broker_id)
    if not per_broker and not default:
        return config
    try:
        updated = config.with_dynamic(per_broker, default)
    except (ConfigError, ValueError) as exc:  # valid one by one, not together
        raise DynamicConfigError(f"{os.path.join(directory, FILE_NAME)}: {exc}") from exc
    log.info(
        "dynamic broker configs restored: %s",
        ", ".join(f"{k}={v}" for k, v in sorted({**default, **per_broker}.items())),
    )
    return updated
