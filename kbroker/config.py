"""The broker's configuration: Kafka's `server.properties`, typed and validated.

Theory of operation. A `BrokerConfig` is built from three layers of raw strings, highest
precedence first: dynamic per-broker values (AlterConfigs on this broker), dynamic cluster-wide
defaults (AlterConfigs on the broker resource named ""), and static values (`server.properties`
then `--override`, later ones winning). Every declared config (`BROKER_CONFIG_DEFS`) is parsed
from the highest layer that sets it, or takes its built-in default; a value that does not parse
or validate raises `ConfigError` at construction, naming the key, the value and what is
expected. Keys that are not declared are kept, as raw strings, and logged as unknown, as Kafka
does: a Kafka config with settings kbroker does not know still starts a broker.

Derived values follow Kafka's precedence rules (retention ms > minutes > hours, `log.dirs` >
`log.dir`, `node.id` = `broker.id`), and `describe()` reproduces Kafka's DescribeConfigs answer
for a broker resource: value, source, synonyms in Kafka's order, read-only and sensitivity flags.
"""

from __future__ import annotations

import base64
import logging
import os
import tempfile
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from kbroker.config_broker_defs import BROKER_CONFIG_DEFS, broker_synonyms
from kbroker.config_listeners import (
    WILDCARD_HOSTS,
    Listener,
    format_host_port,
    parse_listeners,
    parse_security_protocol_map,
)
from kbroker.config_properties import load_properties, parse_properties
from kbroker.config_types import (
    ConfigDef,
    ConfigEntry,
    ConfigError,
    ConfigSource,
    ConfigSynonym,
    ConfigType,
    Setting,
    Value,
    value_to_string,
)

__all__ = [
    "BROKER_CONFIG_DEFS",
    "BrokerConfig",
    "ConfigEntry",
    "ConfigError",
    "ConfigSource",
    "ConfigSynonym",
    "ConfigType",
    "Listener",
    "ephemeral_log_dirs",
    "format_host_port",
    "load_config",
    "new_cluster_id",
    "parse_listeners",
    "parse_overrides",
    "parse_properties",
    "parse_security_protocol_map",
]

log = logging.getLogger(__name__)

_MS_PER_MINUTE = 60_000
_MS_PER_HOUR = 3_600_000


class BrokerConfig:
    """A broker's effective configuration (see the module docstring for the layers).

    Attribute access is typed (`cfg.num_partitions`, `cfg.listeners`); `get(name)` reads any
    config by its Kafka name; iterating yields `ConfigEntry`s for DescribeConfigs.
    """

    def __init__(
        self,
        props: Mapping[str, str] | None = None,
        *,
        dynamic: Mapping[str, str] | None = None,
        dynamic_default: Mapping[str, str] | None = None,
    ) -> None:
        self._static = _with_node_id_synonyms(dict(props or {}))
        self._dynamic = dict(dynamic or {})
        self._dynamic_default = dict(dynamic_default or {})
        self._values = {name: self._parse(d) for name, d in BROKER_CONFIG_DEFS.items()}
        self._unknown = {k: v for k, v in self._static.items() if k not in BROKER_CONFIG_DEFS}
        self._protocol_map = parse_security_protocol_map(
            str(self._values["listener.security.protocol.map"])
        )
        self._listeners = parse_listeners("listeners", self._list("listeners"), self._protocol_map)
        self._advertised = self._parse_advertised()
        self._log_dirs = [os.path.abspath(d) for d in self._configured_log_dirs()]
        self._validate()

    def _parse(self, definition: ConfigDef) -> Value:
        for layer in (self._dynamic, self._dynamic_default, self._static):
            if definition.name in layer:
                return definition.parse(layer[definition.name])
        return _copy(definition.default)

    # -- generic access ------------------------------------------------------------------

    def get(self, name: str) -> Value:
        """The value of a config by Kafka name: typed if declared, the raw string if unknown."""
        if name in self._values:
            return _copy(self._values[name])
        if name in self._unknown:
            return self._unknown[name]
        raise KeyError(f"unknown config {name!r}")

    @property
    def originals(self) -> dict[str, str]:
        """The static raw values as given (file, then overrides), unknown keys included."""
        return dict(self._static)

    @property
    def unknown(self) -> dict[str, str]:
        """Static keys that are not declared configs, kept as raw strings."""
        return dict(self._unknown)

    def is_set(self, name: str) -> bool:
        """True when some layer sets `name` explicitly (rather than leaving the default)."""
        return any(name in layer for layer in self._layers())

    def with_overrides(self, overrides: Mapping[str, str]) -> BrokerConfig:
        """A copy with more static values (as if appended to the properties file)."""
        _warn_unknown(k for k in overrides if k not in BROKER_CONFIG_DEFS)
        return BrokerConfig(
            {**self._static, **overrides},
            dynamic=self._dynamic,
            dynamic_default=self._dynamic_default,
        )

    def with_dynamic(
        self, dynamic: Mapping[str, str], dynamic_default: Mapping[str, str] | None = None
    ) -> BrokerConfig:
        """A copy with new dynamic layers; check them first with `validate_dynamic`."""
        default = self._dynamic_default if dynamic_default is None else dynamic_default
        return BrokerConfig(self._static, dynamic=dynamic, dynamic_default=default)

    @staticmethod
    def validate_dynamic(props: Mapping[str, str]) -> dict[str, Value]:
        """Check configs for AlterConfigs on a broker: known, dynamic, valid values."""
        unknown = sorted(k for k in props if k not in BROKER_CONFIG_DEFS)
        if unknown:
            raise ConfigError(f"Unknown broker configs: {', '.join(unknown)}", unknown[0])
        static = sorted(k for k in props if not BROKER_CONFIG_DEFS[k].dynamic)
        if static:
            message = f"Cannot update these configs dynamically: {', '.join(static)}"
            raise ConfigError(message, static[0])
        return {k: BROKER_CONFIG_DEFS[k].parse(v) for k, v in props.items()}

    # -- typed settings ------------------------------------------------------------------

    broker_rack = Setting[str | None]("broker.rack")
    message_max_bytes = Setting[int]("message.max.bytes")
    auto_create_topics_enable = Setting[bool]("auto.create.topics.enable")
    delete_topic_enable = Setting[bool]("delete.topic.enable")
    num_partitions = Setting[int]("num.partitions")
    default_replication_factor = Setting[int]("default.replication.factor")
    min_insync_replicas = Setting[int]("min.insync.replicas")
    unclean_leader_election_enable = Setting[bool]("unclean.leader.election.enable")
    compression_type = Setting[str]("compression.type")
    fetch_max_bytes = Setting[int]("fetch.max.bytes")
    max_incremental_fetch_session_cache_slots = Setting[int](
        "max.incremental.fetch.session.cache.slots"
    )
    socket_send_buffer_bytes = Setting[int]("socket.send.buffer.bytes")
    socket_receive_buffer_bytes = Setting[int]("socket.receive.buffer.bytes")
    socket_request_max_bytes = Setting[int]("socket.request.max.bytes")
    socket_listen_backlog_size = Setting[int]("socket.listen.backlog.size")
    connections_max_idle_ms = Setting[int]("connections.max.idle.ms")
    max_connections = Setting[int]("max.connections")
    max_connections_per_ip = Setting[int]("max.connections.per.ip")
    log_segment_bytes = Setting[int]("log.segment.bytes")
    log_retention_bytes = Setting[int]("log.retention.bytes")
    log_retention_check_interval_ms = Setting[int]("log.retention.check.interval.ms")
    log_cleanup_policy = Setting[list[str]]("log.cleanup.policy")
    log_index_size_max_bytes = Setting[int]("log.index.size.max.bytes")
    log_index_interval_bytes = Setting[int]("log.index.interval.bytes")
    log_flush_interval_messages = Setting[int]("log.flush.interval.messages")
    log_flush_scheduler_interval_ms = Setting[int]("log.flush.scheduler.interval.ms")
    log_flush_offset_checkpoint_interval_ms = Setting[int](
        "log.flush.offset.checkpoint.interval.ms"
    )
    log_flush_start_offset_checkpoint_interval_ms = Setting[int](
        "log.flush.start.offset.checkpoint.interval.ms"
    )
    log_segment_delete_delay_ms = Setting[int]("log.segment.delete.delay.ms")
    log_preallocate = Setting[bool]("log.preallocate")
    log_message_timestamp_type = Setting[str]("log.message.timestamp.type")
    log_message_timestamp_before_max_ms = Setting[int]("log.message.timestamp.before.max.ms")
    log_message_timestamp_after_max_ms = Setting[int]("log.message.timestamp.after.max.ms")
    log_cleaner_enable = Setting[bool]("log.cleaner.enable")
    num_recovery_threads_per_data_dir = Setting[int]("num.recovery.threads.per.data.dir")
    offsets_topic_num_partitions = Setting[int]("offsets.topic.num.partitions")
    offsets_topic_replication_factor = Setting[int]("offsets.topic.replication.factor")
    offsets_topic_segment_bytes = Setting[int]("offsets.topic.segment.bytes")
    offsets_retention_minutes = Setting[int]("offsets.retention.minutes")
    offsets_retention_check_interval_ms = Setting[int]("offsets.retention.check.interval.ms")
    offsets_commit_timeout_ms = Setting[int]("offsets.commit.timeout.ms")
    offset_metadata_max_bytes = Setting[int]("offset.metadata.max.bytes")
    group_initial_rebalance_delay_ms = Setting[int]("group.initial.rebalance.delay.ms")
    group_min_session_timeout_ms = Setting[int]("group.min.session.timeout.ms")
    group_max_session_timeout_ms = Setting[int]("group.max.session.timeout.ms")
    group_max_size = Setting[int]("group.max.size")
    transaction_state_log_num_partitions = Setting[int]("transaction.state.log.num.partitions")
    transaction_state_log_replication_factor = Setting[int](
        "transaction.state.log.replication.factor"
    )
    transaction_state_log_min_isr = Setting[int]("transaction.state.log.min.isr")
    transaction_state_log_segment_bytes = Setting[int]("transaction.state.log.segment.bytes")
    transactional_id_expiration_ms = Setting[int]("transactional.id.expiration.ms")
    transaction_max_timeout_ms = Setting[int]("transaction.max.timeout.ms")
    producer_id_expiration_ms = Setting[int]("producer.id.expiration.ms")
    replica_lag_time_max_ms = Setting[int]("replica.lag.time.max.ms")
    replica_fetch_max_bytes = Setting[int]("replica.fetch.max.bytes")
    replica_fetch_wait_max_ms = Setting[int]("replica.fetch.wait.max.ms")
    zookeeper_session_timeout_ms = Setting[int]("zookeeper.session.timeout.ms")
    ephemeral = Setting[bool]("kbroker.ephemeral")
    cluster_id = Setting[str | None]("kbroker.cluster.id")
    log_flush_before_ack = Setting[bool]("kbroker.log.flush.before.ack")

    # -- derived settings ----------------------------------------------------------------

    @property
    def node_id(self) -> int:
        """This broker's id: node.id (= broker.id); when unset, 0 alone and -1 in a cluster.

        -1 tells the cluster layer to generate an id (broker.id.generation.enable).
        """
        configured = self._int("node.id")
        if configured >= 0:
            return configured
        return -1 if self.cluster_mode else 0

    @property
    def listeners(self) -> list[Listener]:
        """Parsed `listeners`, in the configured order."""
        return list(self._listeners)

    @property
    def advertised_listeners(self) -> list[Listener]:
        """Parsed `advertised.listeners`, or `listeners` when it is not set."""
        return list(self._advertised)

    @property
    def listener_security_protocol_map(self) -> dict[str, str]:
        """Listener name (upper-case) -> security protocol."""
        return dict(self._protocol_map)

    @property
    def inter_broker_listener_name(self) -> str:
        """The listener brokers use between themselves (Kafka's resolution rules)."""
        explicit = self._values["inter.broker.listener.name"]
        if isinstance(explicit, str) and explicit:
            return explicit.upper()
        return str(self._values["security.inter.broker.protocol"])

    @property
    def log_dirs(self) -> list[str]:
        """Absolute data directories: `log.dirs`, else `log.dir` (relative to the start cwd)."""
        return list(self._log_dirs)

    @property
    def log_retention_ms(self) -> int:
        """Retention: log.retention.ms > .minutes > .hours, any negative meaning -1 (forever)."""
        millis = self._opt_int("log.retention.ms")
        if millis is None:
            minutes = self._opt_int("log.retention.minutes")
            if minutes is not None:
                millis = minutes * _MS_PER_MINUTE
            else:
                millis = self._int("log.retention.hours") * _MS_PER_HOUR
        return -1 if millis < 0 else millis

    @property
    def log_roll_ms(self) -> int:
        """Segment roll age: log.roll.ms, else log.roll.hours."""
        millis = self._opt_int("log.roll.ms")
        return millis if millis is not None else self._int("log.roll.hours") * _MS_PER_HOUR

    @property
    def log_roll_jitter_ms(self) -> int:
        """Segment roll jitter: log.roll.jitter.ms, else log.roll.jitter.hours."""
        millis = self._opt_int("log.roll.jitter.ms")
        if millis is not None:
            return millis
        return self._int("log.roll.jitter.hours") * _MS_PER_HOUR

    @property
    def log_flush_interval_ms(self) -> int:
        """Flush age: log.flush.interval.ms, else log.flush.scheduler.interval.ms."""
        millis = self._opt_int("log.flush.interval.ms")
        return millis if millis is not None else self._int("log.flush.scheduler.interval.ms")

    @property
    def zookeeper_connect(self) -> str | None:
        """The ZooKeeper connection string, or None for a single node (empty counts as unset)."""
        value = self._values["zookeeper.connect"]
        return value if isinstance(value, str) and value else None

    @property
    def zookeeper_connection_timeout_ms(self) -> int:
        """Connection timeout, falling back to the session timeout as Kafka does."""
        value = self._opt_int("zookeeper.connection.timeout.ms")
        return value if value is not None else self._int("zookeeper.session.timeout.ms")

    @property
    def cluster_mode(self) -> bool:
        """True when zookeeper.connect names an ensemble (multi-broker operation)."""
        return self.zookeeper_connect is not None

    def effective(self, name: str) -> Value:
        """A config's value with its lower-precedence synonyms applied (for topic defaults).

        `effective("log.retention.ms")` is the retention in ms even when only
        log.retention.hours is set; other names give `get(name)`.
        """
        derived = {
            "log.retention.ms": lambda: self.log_retention_ms,
            "log.roll.ms": lambda: self.log_roll_ms,
            "log.roll.jitter.ms": lambda: self.log_roll_jitter_ms,
            "log.flush.interval.ms": lambda: self.log_flush_interval_ms,
        }.get(name)
        return derived() if derived is not None else self.get(name)

    # -- DescribeConfigs -----------------------------------------------------------------

    def __iter__(self) -> Iterator[ConfigEntry]:
        return iter(self.describe(include_synonyms=True))

    def describe(
        self,
        names: Collection[str] | None = None,
        *,
        include_synonyms: bool = False,
        include_documentation: bool = False,
        per_broker: bool = True,
    ) -> list[ConfigEntry]:
        """Entries for DescribeConfigs on a broker resource, sorted by name.

        `names` None or empty means all. `per_broker=False` describes the cluster-wide
        default resource (name ""), which lists only dynamic defaults, as Kafka does.
        """
        if per_broker:
            candidates = [n for n, d in BROKER_CONFIG_DEFS.items() if not d.internal]
            candidates += list(self._unknown)
        else:
            candidates = list(self._dynamic_default)
        wanted = set(names) if names else None
        return [
            self._entry(name, per_broker, include_synonyms, include_documentation)
            for name in sorted(candidates)
            if wanted is None or name in wanted
        ]

    def synonyms_of(self, name: str) -> list[ConfigSynonym]:
        """Every layer that sets `name` or a lower-precedence synonym, in Kafka's order.

        Layers go dynamic, dynamic default, static, built-in default; within a layer,
        synonyms go by precedence. Entries before the first one for `name` itself are
        dropped, as Kafka does (so a topic's retention.ms lists nothing when only
        log.retention.hours is set: the names differ).
        """
        sensitive = _is_sensitive(name)
        found: list[ConfigSynonym] = []
        for source, layer in self._sourced_layers():
            for synonym in broker_synonyms(name):
                if synonym in layer:
                    value = None if sensitive else layer[synonym]
                    found.append(ConfigSynonym(synonym, value, source))
        while found and found[0].name != name:
            found.pop(0)
        return found

    def _entry(
        self, name: str, per_broker: bool, include_synonyms: bool, include_documentation: bool
    ) -> ConfigEntry:
        definition = BROKER_CONFIG_DEFS.get(name)
        synonyms = self.synonyms_of(name)
        if not per_broker:
            default_source = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
            synonyms = [s for s in synonyms if s.source == default_source]
        source = synonyms[0].source if synonyms else ConfigSource.DEFAULT_CONFIG
        if definition is None:
            value: str | None = self._unknown.get(name, self._dynamic_default.get(name))
        elif not per_broker:
            value = value_to_string(definition.parse(self._dynamic_default[name]))
        else:
            value = value_to_string(self._values[name])
        return ConfigEntry(
            name=name,
            value=None if _is_sensitive(name) else value,
            source=source,
            is_default=source == ConfigSource.DEFAULT_CONFIG,
            sensitive=_is_sensitive(name),
            synonyms=synonyms if include_synonyms else [],
            read_only=definition is None or not definition.dynamic,
            config_type=definition.type if definition else ConfigType.UNKNOWN,
            documentation=definition.doc if definition and include_documentation else None,
        )

    # -- internals -----------------------------------------------------------------------

    def _layers(self) -> tuple[dict[str, str], ...]:
        return (self._dynamic, self._dynamic_default, self._static)

    def _sourced_layers(self) -> list[tuple[ConfigSource, Mapping[str, str]]]:
        return [
            (ConfigSource.DYNAMIC_BROKER_CONFIG, self._dynamic),
            (ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, self._dynamic_default),
            (ConfigSource.STATIC_BROKER_CONFIG, self._static),
            (ConfigSource.DEFAULT_CONFIG, _DEFAULT_STRINGS),
        ]

    def _int(self, name: str) -> int:
        value = self._values[name]
        assert isinstance(value, int), name
        return value

    def _opt_int(self, name: str) -> int | None:
        value = self._values[name]
        return value if isinstance(value, int) else None

    def _list(self, name: str) -> list[str]:
        value = self._values[name]
        return list(value) if isinstance(value, list) else []

    def _configured_log_dirs(self) -> list[str]:
        dirs = self._list("log.dirs") if self._values["log.dirs"] is not None else []
        return dirs or self._list("log.dir")

    def _parse_advertised(self) -> list[Listener]:
        if self._values["advertised.listeners"] is None:
            return list(self._listeners)
        entries = self._list("advertised.listeners")
        advertised = parse_listeners("advertised.listeners", entries, self._protocol_map)
        known = {listener.name for listener in self._listeners}
        for listener in advertised:
            if listener.host in WILDCARD_HOSTS:
                expected = f"{listener.host} is not an address clients can connect to"
                raise ConfigError.invalid("advertised.listeners", str(listener), expected)
            if listener.name not in known:
                expected = f"listener name {listener.name} is not among listeners"
                raise ConfigError.invalid("advertised.listeners", str(listener), expected)
        return advertised

    def _validate(self) -> None:
        """Cross-config rules Kafka checks at startup."""
        if self._int("node.id") != self._int("broker.id"):
            node, broker = self._int("node.id"), self._int("broker.id")
            message = f"node.id ({node}) and broker.id ({broker}) must be equal: set only one"
            raise ConfigError(message, "node.id", node)
        _require(self.log_roll_ms >= 1, "log.roll.ms", self.log_roll_ms, "must be at least 1")
        jitter = self.log_roll_jitter_ms
        _require(jitter >= 0, "log.roll.jitter.ms", jitter, "must be at least 0")
        retention = self.log_retention_ms
        expected = "retention must be -1 (unlimited) or at least 1 ms"
        _require(retention >= 1 or retention == -1, "log.retention.ms", retention, expected)
        self._validate_replication()
        self._validate_inter_broker_listener()
        self._validate_consumer_groups()

    def _validate_consumer_groups(self) -> None:
        """Kafka's GroupCoordinatorConfig rules for group.consumer.* (KIP-848)."""
        prefix = "group.consumer."
        for what in ("heartbeat.interval.ms", "session.timeout.ms"):
            low, high = self._int(f"{prefix}min.{what}"), self._int(f"{prefix}max.{what}")
            value = self._int(prefix + what)
            _require(high >= low, f"{prefix}max.{what}", high, f"must be at least {low}")
            expected = f"must be between {prefix}min.{what} and {prefix}max.{what}"
            _require(low <= value <= high, prefix + what, value, expected)
        interval = self._int(prefix + "heartbeat.interval.ms")
        session = self._int(prefix + "session.timeout.ms")
        expected = f"must be less than {prefix}session.timeout.ms ({session})"
        _require(interval < session, prefix + "heartbeat.interval.ms", interval, expected)

    def _validate_replication(self) -> None:
        wait = self._int("replica.fetch.wait.max.ms")
        for limit in ("replica.socket.timeout.ms", "replica.lag.time.max.ms"):
            expected = f"must not exceed {limit} ({self._int(limit)})"
            _require(wait <= self._int(limit), "replica.fetch.wait.max.ms", wait, expected)

    def _validate_inter_broker_listener(self) -> None:
        if not self.is_set("inter.broker.listener.name"):
            return
        if self.is_set("security.inter.broker.protocol"):
            raise ConfigError(
                "set only one of inter.broker.listener.name and security.inter.broker.protocol",
                "inter.broker.listener.name",
            )
        name = self.inter_broker_listener_name
        if name not in {listener.name for listener in self._advertised}:
            expected = "must be the name of one of the advertised listeners"
            raise ConfigError.invalid("inter.broker.listener.name", name, expected)


_DEFAULT_STRINGS: dict[str, str] = {
    name: text
    for name, definition in BROKER_CONFIG_DEFS.items()
    if (text := value_to_string(definition.default)) is not None
}


def _is_sensitive(name: str) -> bool:
    """Passwords, and (as Kafka, to be safe) unknown keys, whose type nobody can tell."""
    definition = BROKER_CONFIG_DEFS.get(name)
    return definition is None or definition.sensitive


def _copy(value: Value) -> Value:
    return list(value) if isinstance(value, list) else value


def _require(condition: bool, name: str, value: object, expected: str) -> None:
    if not condition:
        raise ConfigError.invalid(name, value, expected)


def _with_node_id_synonyms(props: dict[str, str]) -> dict[str, str]:
    """Copy node.id to broker.id or back when only one is given (Kafka's populateSynonyms)."""
    if "node.id" in props and "broker.id" not in props:
        props["broker.id"] = props["node.id"]
    elif "broker.id" in props and "node.id" not in props:
        props["node.id"] = props["broker.id"]
    return props


def _warn_unknown(names: Iterable[str]) -> None:
    for name in names:
        log.warning("config %r is not a known broker config; kept but not used", name)


def parse_overrides(overrides: Sequence[str]) -> dict[str, str]:
    """Parse `key=value` strings (as `--override`); the value may be empty or contain '='."""
    result: dict[str, str] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"invalid override {item!r}: expected key=value")
        result[key.strip()] = value
    return result


def load_config(properties_path: str | None, overrides: Sequence[str] = ()) -> BrokerConfig:
    """Build a BrokerConfig from an optional .properties file and `key=value` overrides.

    Overrides win over the file, later overrides over earlier ones. Unknown keys are logged
    as warnings and kept. Raises ConfigError for unreadable files and invalid values.
    """
    props = load_properties(properties_path) if properties_path else {}
    props.update(parse_overrides(overrides))
    _warn_unknown(sorted(k for k in props if k not in BROKER_CONFIG_DEFS))
    return BrokerConfig(props)


@contextmanager
def ephemeral_log_dirs(config: BrokerConfig) -> Iterator[BrokerConfig]:
    """With kbroker.ephemeral set, a config whose log dir is a fresh temp dir, removed after.

    Without it, the config itself. The temp dir replaces log.dirs/log.dir.
    """
    if not config.ephemeral:
        yield config
        return
    with tempfile.TemporaryDirectory(prefix="kbroker-", ignore_cleanup_errors=True) as path:
        log.info("ephemeral data directory %s (removed at exit)", path)
        yield config.with_overrides({"log.dirs": path})


def new_cluster_id() -> str:
    """A random cluster id in Kafka's format: 16 random bytes, URL-safe base64, no padding.

    Ids starting with '-' are drawn again, as Kafka does, so they never look like options.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not text.startswith("-"):
            return text
