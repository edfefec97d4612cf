"""Admin operations shared by the config, partition and record handlers.

Theory of operation. Everything here runs on the event loop (the one owner of broker state)
and raises `KafkaError` with Kafka's code and message; each handler turns that into the error
code of the resource it concerns.

Topic configs. A topic stores only its overrides. AlterConfigs replaces them all (names not
listed revert to their defaults: Kafka's "legacy" semantics); IncrementalAlterConfigs (KIP-339)
edits them one by one with SET, DELETE, APPEND and SUBTRACT, the last two only for LIST configs
(APPEND/SUBTRACT on an unset config start from the config's declared default, as Kafka's
controller does). The resulting overrides are validated as a whole (INVALID_CONFIG), persisted
with `TopicStore.set_configs`, and take effect at once: every partition's `Log` gets the new
storage `LogConfig` (segment sizes apply from the next roll, retention at the next check), and
produce and fetch read that config.

Broker configs. AlterConfigs on the broker resource named after this node changes the per-broker
dynamic layer of `BrokerConfig`, and on the resource named "" the cluster-wide dynamic default
layer. The new `BrokerConfig` replaces `broker.config`, and every topic's `LogConfig` is
recomputed, since a topic without an override follows its broker synonym (`log.retention.ms`,
`log.segment.bytes`, ...). Both dynamic layers are saved (`config_dynamic.py`, in the first log
dir) before the new config takes effect, so a restart brings them back; a failed save is
KAFKA_STORAGE_ERROR and changes nothing. A broker config that fails validation is
INVALID_REQUEST, as in Kafka (KAFKA-13609).

CreatePartitions only adds partitions (new empty logs); DeleteRecords moves a partition's log
start offset up (offset -1 meaning the high watermark) and deletes the segments wholly below it.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from kbroker import topics_naming
from kbroker.broker import log_config
from kbroker.config import BROKER_CONFIG_DEFS, BrokerConfig, ConfigError, ConfigSource
from kbroker.config_dynamic import save_dynamic_configs
from kbroker.config_types import ConfigDef, ConfigType, value_to_string
from kbroker.topic_config import TOPIC_CONFIG_DEFS, TopicConfigs
from protocol.error_codes import ErrorCode, KafkaError
from storage.config import LogConfig
from storage.errors import KafkaStorageError

if TYPE_CHECKING:
    from kbroker.broker import Broker
    from kbroker.topic_store import TopicInfo

HIGH_WATERMARK = -1  # DeleteRecords: "delete everything below the high watermark"
DUPLICATE_RESOURCE = "Each resource must appear at most once."
_JAVA_INT = re.compile(r"[+-]?[0-9]+")


class ConfigResourceType(enum.IntEnum):
    """Kafka's ConfigResource.Type ids, as the config APIs carry them."""

    UNKNOWN = 0
    TOPIC = 2
    BROKER = 4
    BROKER_LOGGER = 8
    CLIENT_METRICS = 16
    GROUP = 32


class AlterConfigOp(enum.IntEnum):
    """IncrementalAlterConfigs operations (KIP-339)."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


class AclOperation(enum.IntEnum):
    """Kafka's ACL operation codes; authorized-operations fields are bit sets of them."""

    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12


def operations_bitfield(operations: Iterable[AclOperation]) -> int:
    """The int32 bit set Kafka sends for authorized operations (bit n = operation code n)."""
    bits = 0
    for operation in operations:
        bits |= 1 << operation
    return bits


# Without an authorizer every operation a resource supports is allowed (Kafka's AclEntry).
CLUSTER_OPERATIONS = operations_bitfield(
    [
        AclOperation.CREATE,
        AclOperation.CLUSTER_ACTION,
        AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
        AclOperation.IDEMPOTENT_WRITE,
        AclOperation.ALTER,
        AclOperation.DESCRIBE,
    ]
)
TOPIC_OPERATIONS = operations_bitfield(
    [
        AclOperation.READ,
        AclOperation.WRITE,
        AclOperation.CREATE,
        AclOperation.DESCRIBE,
        AclOperation.DELETE,
        AclOperation.ALTER,
        AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
    ]
)


# ---------------------------------------------------------------------------- resources


def check_unique(names: Sequence[str], what: str) -> None:
    """INVALID_REQUEST when a request names the same config twice."""
    if len(set(names)) != len(names):
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Error due to duplicate {what}")


def check_topic_name(name: str) -> None:
    """A topic resource must name a legal topic (INVALID_TOPIC_EXCEPTION)."""
    try:
        topics_naming.validate_topic_name(name)
    except topics_naming.InvalidTopicName as exc:
        raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, str(exc)) from None


def check_alterable_topic_name(name: str) -> None:
    """As `check_topic_name`, but "" (no such thing as default topic configs) is INVALID_REQUEST."""
    if not name:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Default topic resources are not allowed.")
    check_topic_name(name)


def existing_topic(broker: Broker, name: str) -> TopicInfo:
    info = broker.topics.topics.get(name)
    if info is None:
        raise KafkaError(
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic {name} does not exist on this broker."
        )
    return info


class ConfigResourceRequest(Protocol):
    """A resource of an AlterConfigs or IncrementalAlterConfigs request."""

    @property
    def resource_type(self) -> int: ...

    @property
    def resource_name(self) -> str: ...


class ConfigResourceResult(Protocol):
    error_code: int
    error_message: str | None


Req = TypeVar("Req", bound=ConfigResourceRequest)
Res = TypeVar("Res", bound=ConfigResourceResult)


def alter_each(
    resources: Sequence[Req], alter: Callable[[Req], None], result: Callable[[Req], Res]
) -> list[Res]:
    """Kafka's loop over config resources: errors are per resource, and a resource named more
    than once fails every time it appears (INVALID_REQUEST)."""
    seen = Counter((r.resource_type, r.resource_name) for r in resources)
    results = []
    for resource in resources:
        out = result(resource)
        try:
            if seen[(resource.resource_type, resource.resource_name)] > 1:
                raise KafkaError(ErrorCode.INVALID_REQUEST, DUPLICATE_RESOURCE)
            alter(resource)
        except KafkaError as exc:
            out.error_code, out.error_message = exc.code, exc.message
        results.append(out)
    return results


def reject_null_values(names: Sequence[str]) -> None:
    if names:
        message = f"Null value not supported for : {', '.join(names)}"
        raise KafkaError(ErrorCode.INVALID_REQUEST, message)


def on_resource_type(
    broker: Broker,
    resource: ConfigResourceRequest,
    topic: Callable[[str], None],
    broker_level: Callable[[bool], None],
) -> None:
    """Run `topic(name)` or `broker_level(per_broker)` for the resource's type."""
    if resource.resource_type == ConfigResourceType.TOPIC:
        topic(resource.resource_name)
    elif resource.resource_type == ConfigResourceType.BROKER:
        broker_level(is_per_broker(broker, resource.resource_name))
    else:
        message = f"Unknown resource type {resource.resource_type}"
        raise KafkaError(ErrorCode.INVALID_REQUEST, message)


def is_per_broker(broker: Broker, name: str) -> bool:
    """For a broker resource: True for this node's id, False for "" (the cluster default)."""
    if not name:
        return False
    if not _JAVA_INT.fullmatch(name):  # no spaces or underscores, which Python's int() takes
        raise KafkaError(
            ErrorCode.INVALID_REQUEST, f"Broker id must be an integer, but it is: {name}"
        )
    if int(name) != broker.node_id:
        raise KafkaError(
            ErrorCode.INVALID_REQUEST,
            f"Unexpected broker id, expected {broker.node_id} or empty string, but received {name}",
        )
    return True


# ---------------------------------------------------------------------------- incremental edits


def incremental_update(
    current: Mapping[str, str],
    ops: Iterable[tuple[str, int, str | None]],
    defs: Mapping[str, ConfigDef],
) -> dict[str, str]:
    """Apply (name, operation, value) edits to raw config values (KIP-339 semantics)."""
    updated = dict(current)
    for name, code, value in ops:
        try:
            op = AlterConfigOp(code)
        except ValueError:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unknown operations type {code}") from None
        if op is AlterConfigOp.DELETE:
            updated.pop(name, None)
            continue
        if value is None:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Null value not supported for : {name}")
        if op is AlterConfigOp.SET:
            updated[name] = value
        else:
            updated[name] = _edit_list(name, op, updated.get(name), value, defs.get(name))
    return updated


def _edit_list(
    name: str, op: AlterConfigOp, current: str | None, value: str, definition: ConfigDef | None
) -> str:
    if definition is None or definition.type is not ConfigType.LIST:
        raise KafkaError(
            ErrorCode.INVALID_CONFIG, f"Can't {op.name} to key {name} because its type is not LIST."
        )
    if current is None:
        current = value_to_string(definition.default) or ""
    parts = [part for part in current.split(",") if part]
    items = value.split(",")
    if op is AlterConfigOp.APPEND:
        for item in items:
            if item not in parts:
                parts.append(item)
    else:
        parts = [part for part in parts if part not in items]
    return ",".join(parts)


# ---------------------------------------------------------------------------- topic configs


def alter_topic_configs(
    broker: Broker, name: str, overrides: Mapping[str, str], validate_only: bool
) -> None:
    """Replace a topic's overrides, validated as a whole, and apply them to its logs."""
    check_alterable_topic_name(name)
    _validated_log_config(broker, overrides)
    info = existing_topic(broker, name)
    if validate_only:
        return
    broker.topics.set_configs(name, dict(overrides))
    broker.apply_topic_config(info)


def edit_topic_configs(
    broker: Broker, name: str, ops: Sequence[tuple[str, int, str | None]], validate_only: bool
) -> None:
    """IncrementalAlterConfigs on a topic: edit the current overrides, then as AlterConfigs."""
    check_alterable_topic_name(name)
    info = broker.topics.topics.get(name)
    current = info.configs if info is not None else {}
    updated = incremental_update(current, ops, TOPIC_CONFIG_DEFS)
    alter_topic_configs(broker, name, updated, validate_only)


def _validated_log_config(broker: Broker, overrides: Mapping[str, str]) -> LogConfig:
    try:
        TopicConfigs.validate_all(overrides, broker.config)
        return log_config(TopicConfigs.resolve(overrides, broker.config))
    except (ConfigError, ValueError) as exc:
        raise KafkaError(ErrorCode.INVALID_CONFIG, str(exc)) from None


# ---------------------------------------------------------------------------- broker configs


def dynamic_layer(config: BrokerConfig, per_broker: bool) -> dict[str, str]:
    """The raw values of one dynamic layer (per-broker, or the cluster-wide default)."""
    wanted = (
        ConfigSource.DYNAMIC_BROKER_CONFIG
        if per_broker
        else ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
    )
    layer: dict[str, str] = {}
    for name, definition in BROKER_CONFIG_DEFS.items():
        if not definition.dynamic:
            continue
        for synonym in config.synonyms_of(name):
            if synonym.name == name and synonym.source == wanted and synonym.value is not None:
                layer[name] = synonym.value
    return layer


def alter_broker_configs(
    broker: Broker, per_broker: bool, layer: Mapping[str, str], validate_only: bool
) -> None:
    """Replace one dynamic layer of the broker's config; topics follow their broker synonyms."""
    config = broker.config
    try:
        BrokerConfig.validate_dynamic(layer)
        if per_broker:
            own, default = dict(layer), dynamic_layer(config, per_broker=False)
        else:
            own, default = dynamic_layer(config, per_broker=True), dict(layer)
        updated = config.with_dynamic(own, default)
        defaults = log_config(TopicConfigs.resolve({}, updated))
    except (ConfigError, ValueError) as exc:
        raise KafkaError(ErrorCode.INVALID_REQUEST, str(exc)) from None
    if validate_only:
        return
    save_dynamic_configs(broker.log_dirs[0], broker.node_id, own, default)  # first: see above
    broker.config = updated
    broker.logs.default_config = defaults
    for info in broker.topics.topics.values():
        broker.apply_topic_config(info)


def edit_broker_configs(
    broker: Broker,
    per_broker: bool,
    ops: Sequence[tuple[str, int, str | None]],
    validate_only: bool,
) -> None:
    """IncrementalAlterConfigs on a broker resource."""
    current = dynamic_layer(broker.config, per_broker)
    updated = incremental_update(current, ops, BROKER_CONFIG_DEFS)
    alter_broker_configs(broker, per_broker, updated, validate_only)


# ---------------------------------------------------------------------------- partitions


def create_partitions(
    broker: Broker, name: str, count: int, assignments: list[list[int]] | None, validate_only: bool
) -> None:
    """Grow a topic to `count` partitions, each led by this broker (the only replica)."""
    info = existing_topic(broker, name)
    current = info.partitions
    if count == current:
        raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"Topic already has {current} partition(s).")
    if count < current:
        raise KafkaError(
            ErrorCode.INVALID_PARTITIONS,
            f"The topic {name} currently has {current} partition(s); {count} would not be an "
            "increase.",
        )
    if assignments is not None:
        _check_assignments(broker, current, count, assignments)
    if validate_only:
        return
    try:  # all or nothing, as topic creation: the new logs, then the topic store
        broker.open_partitions(info, range(current, count))
        broker.topics.set_partitions(name, count)
    except (OSError, KafkaError) as exc:
        broker.close_partitions(name, range(current, count))
        if isinstance(exc, KafkaError):
            raise
        raise KafkaStorageError(f"cannot add partitions to {name}: {exc}") from exc


def _check_assignments(
    broker: Broker, current: int, count: int, assignments: list[list[int]]
) -> None:
    additional = count - current
    if len(assignments) != additional:
        raise KafkaError(
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
            f"Attempted to add {additional} additional partition(s), but only "
            f"{len(assignments)} assignment(s) were specified.",
        )
    for replicas in assignments:
        if not replicas:
            raise KafkaError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                "The manual partition assignment includes an empty replica list.",
            )
        for node in replicas:
            if node != broker.node_id:
                raise KafkaError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    f"The manual partition assignment includes broker {node}, but no such "
                    "broker is registered.",
                )
        if len(replicas) != 1:
            raise KafkaError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"The manual partition assignment includes the broker {broker.node_id} more "
                "than once.",
            )


# ---------------------------------------------------------------------------- records


def delete_records(broker: Broker, topic: str, index: int, offset: int) -> int:
    """Move the log start offset up to `offset` (-1: the high watermark); the low watermark."""
    if topics_naming.is_internal(topic):
        raise KafkaError(
            ErrorCode.INVALID_TOPIC_EXCEPTION, f"Cannot delete records of internal topic {topic}"
        )
    partition = broker.partition(topic, index)
    config = partition.log.config
    if not config.delete_enabled and "compact" in config.cleanup_policy:
        raise KafkaError(
            ErrorCode.POLICY_VIOLATION,
            f"Records of partition {topic}-{index} can not be deleted due to the configured policy",
        )
    target = partition.high_watermark if offset == HIGH_WATERMARK else offset
    if target < 0:
        raise KafkaError(
            ErrorCode.OFFSET_OUT_OF_RANGE,
            f"The offset {target} for partition {topic}-{index} is not valid",
        )
    return partition.log.delete_records_before(target)
