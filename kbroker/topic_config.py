"""Topic-level configs: declarations, validation, and resolution against the broker's.

Theory of operation. A topic stores only its overrides (raw strings set by CreateTopics or
AlterConfigs). Its effective value for each declared config is, in order: the override; else
the broker's value for the matching broker config (its "synonym": `retention.ms` falls back
to `log.retention.ms`, then `log.retention.minutes`, then `log.retention.hours`;
`max.message.bytes` to `message.max.bytes`; ...), including dynamic broker values; else the
topic default. Kafka's LogConfig works this way, and DescribeConfigs reports the source and
synonyms of each value, which `ResolvedTopicConfig.describe` reproduces.

Declarations (names, types, defaults, ranges, broker synonyms) are Kafka 4.x's. Kafka 4
dropped `message.downconversion.enable` and `message.format.version`; like Kafka 4, we treat
them as unknown. Unknown names and invalid values raise `ConfigError` (INVALID_CONFIG).

kbroker adds one topic config, `kbroker.flush.before.ack`: when true, a produce to the topic
is acknowledged only after the appended data has been fsynced (group commit on a worker
thread), trading latency for durability on a single node without replication. Its broker
default is `kbroker.log.flush.before.ack`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from kbroker.config import BrokerConfig, ConfigEntry, ConfigSynonym
from kbroker.config_broker_defs import (
    BROKER_COMPRESSION_TYPES,
    CLEANUP_POLICIES,
    GZIP_LEVEL,
    LZ4_LEVEL,
    TIMESTAMP_TYPES,
    ZSTD_LEVEL,
)
from kbroker.config_types import (
    LONG_MAX,
    AtLeast,
    Between,
    ConfigDef,
    ConfigError,
    ConfigSource,
    ConfigType,
    ListOf,
    OneOf,
    Setting,
    Value,
    value_to_string,
)

__all__ = [
    "TOPIC_BROKER_SYNONYMS",
    "TOPIC_CONFIG_DEFS",
    "ResolvedTopicConfig",
    "TopicConfigs",
]

_REPLICA_PAIR = re.compile(r"([0-9]+:[0-9]+)?")


@dataclass(frozen=True)
class ThrottledReplicas:
    """`*`, or a list of partitionId:brokerId pairs (Kafka's throttled-replica syntax)."""

    def __call__(self, name: str, value: Value) -> None:
        items = [item.strip() for item in value] if isinstance(value, list) else []
        if "".join(items) == "*" or all(_REPLICA_PAIR.fullmatch(item) for item in items):
            return
        expected = "expected '*' or partitionId:brokerId pairs, e.g. 0:101,1:102"
        raise ConfigError.invalid(name, value, expected)


BOOL, INT, STR, LONG = ConfigType.BOOLEAN, ConfigType.INT, ConfigType.STRING, ConfigType.LONG
DOUBLE, LIST = ConfigType.DOUBLE, ConfigType.LIST

# Tables read best one declaration per entry, aligned; the formatter would explode them.
# fmt: off
_DEFS = [
    ConfigDef("segment.bytes", INT, 1073741824, "Size at which the active segment is rolled.",
              validator=AtLeast(1048576)),
    ConfigDef("segment.ms", LONG, 604800000, "Age at which the active segment is rolled, so that "
              "retention and compaction can act on it.", validator=AtLeast(1)),
    ConfigDef("segment.jitter.ms", LONG, 0, "Largest random amount taken off segment.ms, to spread "
              "segment rolls over time.", validator=AtLeast(0)),
    ConfigDef("segment.index.bytes", INT, 10485760, "Size preallocated for each segment's offset "
              "index.", validator=AtLeast(4)),
    ConfigDef("flush.messages", LONG, LONG_MAX, "fsync after this many records; the default "
              "leaves durability to replication and the page cache.", validator=AtLeast(1)),
    ConfigDef("flush.ms", LONG, LONG_MAX, "fsync when unflushed data is this old.",
              validator=AtLeast(0)),
    ConfigDef("retention.bytes", LONG, -1, "Size above which a partition's oldest segments are "
              "deleted (delete policy); -1 means no limit."),
    ConfigDef("retention.ms", LONG, 604800000, "Age after which segments are deleted (delete "
              "policy); -1 keeps them forever.", validator=AtLeast(-1)),
    ConfigDef("max.message.bytes", INT, 1048588, "Largest record batch accepted (after "
              "compression).", validator=AtLeast(0)),
    ConfigDef("index.interval.bytes", INT, 4096, "Bytes appended between two offset index "
              "entries.", validator=AtLeast(0)),
    ConfigDef("delete.retention.ms", LONG, 86400000, "How long tombstones stay in a compacted "
              "topic, so that consumers reading from the start see deletions.",
              validator=AtLeast(0)),
    ConfigDef("min.compaction.lag.ms", LONG, 0, "Youngest a record may be and still be compacted.",
              validator=AtLeast(0)),
    ConfigDef("max.compaction.lag.ms", LONG, LONG_MAX, "Oldest a record may get before its "
              "segment must be compacted.", validator=AtLeast(1)),
    ConfigDef("file.delete.delay.ms", LONG, 60000, "Delay between a segment leaving the log and "
              "its files being removed.", validator=AtLeast(0)),
    ConfigDef("min.cleanable.dirty.ratio", DOUBLE, 0.5, "Dirty share of the log above which it is "
              "compacted.", validator=Between(0, 1)),
    ConfigDef("cleanup.policy", LIST, ["delete"], "What happens to old segments: delete, compact "
              "(keep the last record per key), both, or neither (empty list).",
              validator=ListOf(CLEANUP_POLICIES)),
    ConfigDef("unclean.leader.election.enable", BOOL, False, "Allow an out-of-sync replica to "
              "become leader, at the cost of losing data."),
    ConfigDef("min.insync.replicas", INT, 1, "Fewest in-sync replicas for an acks=all produce to "
              "succeed.", validator=AtLeast(1)),
    ConfigDef("compression.type", STR, "producer", "Codec batches are stored with; 'producer' "
              "keeps the producer's.", validator=OneOf(BROKER_COMPRESSION_TYPES)),
    ConfigDef("compression.gzip.level", INT, -1, "gzip level when compression.type is gzip.",
              validator=GZIP_LEVEL),
    ConfigDef("compression.lz4.level", INT, 9, "lz4 level when compression.type is lz4.",
              validator=LZ4_LEVEL),
    ConfigDef("compression.zstd.level", INT, 3, "zstd level when compression.type is zstd.",
              validator=ZSTD_LEVEL),
    ConfigDef("preallocate", BOOL, False, "Preallocate segment files to their full size."),
    ConfigDef("message.timestamp.type", STR, "CreateTime", "Timestamp stored in batches: the "
              "producer's (CreateTime) or the broker's at append (LogAppendTime).",
              validator=OneOf(TIMESTAMP_TYPES)),
    ConfigDef("message.timestamp.before.max.ms", LONG, LONG_MAX, "With CreateTime, reject batches "
              "whose timestamp is further than this in the past.", validator=AtLeast(0)),
    ConfigDef("message.timestamp.after.max.ms", LONG, 3600000, "With CreateTime, reject batches "
              "whose timestamp is further than this in the future.", validator=AtLeast(0)),
    ConfigDef("leader.replication.throttled.replicas", LIST, [], "Replicas whose replication is "
              "throttled on the leader side: '*' or partitionId:brokerId pairs.",
              validator=ThrottledReplicas()),
    ConfigDef("follower.replication.throttled.replicas", LIST, [], "Replicas whose replication "
              "is throttled on the follower side: '*' or partitionId:brokerId pairs.",
              validator=ThrottledReplicas()),
    ConfigDef("remote.storage.enable", BOOL, False, "Tiered storage for the topic; kbroker has "
              "none, so true is rejected."),
    ConfigDef("local.retention.ms", LONG, -2, "Local retention with tiered storage; -2 means "
              "retention.ms.", validator=AtLeast(-2)),
    ConfigDef("local.retention.bytes", LONG, -2, "Local size limit with tiered storage; -2 means "
              "retention.bytes.", validator=AtLeast(-2)),
    ConfigDef("remote.log.copy.disable", BOOL, False, "With tiered storage, stop copying segments "
              "to remote storage."),
    ConfigDef("remote.log.delete.on.disable", BOOL, False, "With tiered storage, delete remote "
              "data when tiered storage is turned off."),
    ConfigDef("internal.segment.bytes", INT, None, "Segment size below segment.bytes' minimum, "
              "for tests only.", validator=AtLeast(1), internal=True),
    ConfigDef("kbroker.flush.before.ack", BOOL, False, "fsync appended data before acknowledging "
              "a produce to this topic (kbroker only)."),
]
# fmt: on

TOPIC_CONFIG_DEFS: dict[str, ConfigDef] = {d.name: d for d in _DEFS}

# Topic config -> the broker config it falls back to (the first of Kafka's synonyms; lower
# ones such as log.retention.hours come from BrokerConfig.effective and broker_synonyms).
TOPIC_BROKER_SYNONYMS: dict[str, str] = {
    "segment.bytes": "log.segment.bytes",
    "segment.ms": "log.roll.ms",
    "segment.jitter.ms": "log.roll.jitter.ms",
    "segment.index.bytes": "log.index.size.max.bytes",
    "flush.messages": "log.flush.interval.messages",
    "flush.ms": "log.flush.interval.ms",
    "retention.bytes": "log.retention.bytes",
    "retention.ms": "log.retention.ms",
    "max.message.bytes": "message.max.bytes",
    "index.interval.bytes": "log.index.interval.bytes",
    "delete.retention.ms": "log.cleaner.delete.retention.ms",
    "min.compaction.lag.ms": "log.cleaner.min.compaction.lag.ms",
    "max.compaction.lag.ms": "log.cleaner.max.compaction.lag.ms",
    "file.delete.delay.ms": "log.segment.delete.delay.ms",
    "min.cleanable.dirty.ratio": "log.cleaner.min.cleanable.ratio",
    "cleanup.policy": "log.cleanup.policy",
    "unclean.leader.election.enable": "unclean.leader.election.enable",
    "min.insync.replicas": "min.insync.replicas",
    "compression.type": "compression.type",
    "compression.gzip.level": "compression.gzip.level",
    "compression.lz4.level": "compression.lz4.level",
    "compression.zstd.level": "compression.zstd.level",
    "preallocate": "log.preallocate",
    "message.timestamp.type": "log.message.timestamp.type",
    "message.timestamp.before.max.ms": "log.message.timestamp.before.max.ms",
    "message.timestamp.after.max.ms": "log.message.timestamp.after.max.ms",
    "local.retention.ms": "log.local.retention.ms",
    "local.retention.bytes": "log.local.retention.bytes",
    "kbroker.flush.before.ack": "kbroker.log.flush.before.ack",
}


class ResolvedTopicConfig:
    """A topic's effective configs: its overrides over the broker's values over defaults.

    Built by `TopicConfigs.resolve`; read with typed attributes (`retention_ms`, `compact`,
    `flush_before_ack`, ...) or `get(name)`. Unknown stored overrides are kept in
    `overrides` but have no effect, as in Kafka.
    """

    def __init__(
        self, overrides: Mapping[str, str], broker: BrokerConfig, values: dict[str, Value]
    ) -> None:
        self._overrides = dict(overrides)
        self._broker = broker
        self._values = values

    def get(self, name: str) -> Value:
        """The effective value of a declared topic config (KeyError for unknown names)."""
        value = self._values[name]
        return list(value) if isinstance(value, list) else value

    @property
    def overrides(self) -> dict[str, str]:
        """The topic's own settings, as stored (raw strings)."""
        return dict(self._overrides)

    segment_ms = Setting[int]("segment.ms")
    segment_jitter_ms = Setting[int]("segment.jitter.ms")
    segment_index_bytes = Setting[int]("segment.index.bytes")
    flush_messages = Setting[int]("flush.messages")
    flush_ms = Setting[int]("flush.ms")
    retention_bytes = Setting[int]("retention.bytes")
    retention_ms = Setting[int]("retention.ms")
    max_message_bytes = Setting[int]("max.message.bytes")
    index_interval_bytes = Setting[int]("index.interval.bytes")
    delete_retention_ms = Setting[int]("delete.retention.ms")
    min_compaction_lag_ms = Setting[int]("min.compaction.lag.ms")
    max_compaction_lag_ms = Setting[int]("max.compaction.lag.ms")
    file_delete_delay_ms = Setting[int]("file.delete.delay.ms")
    min_cleanable_dirty_ratio = Setting[float]("min.cleanable.dirty.ratio")
    cleanup_policy = Setting[list[str]]("cleanup.policy")
    unclean_leader_election_enable = Setting[bool]("unclean.leader.election.enable")
    min_insync_replicas = Setting[int]("min.insync.replicas")
    compression_type = Setting[str]("compression.type")
    compression_gzip_level = Setting[int]("compression.gzip.level")
    compression_lz4_level = Setting[int]("compression.lz4.level")
    compression_zstd_level = Setting[int]("compression.zstd.level")
    preallocate = Setting[bool]("preallocate")
    message_timestamp_type = Setting[str]("message.timestamp.type")
    message_timestamp_before_max_ms = Setting[int]("message.timestamp.before.max.ms")
    message_timestamp_after_max_ms = Setting[int]("message.timestamp.after.max.ms")
    leader_replication_throttled_replicas = Setting[list[str]](
        "leader.replication.throttled.replicas"
    )
    follower_replication_throttled_replicas = Setting[list[str]](
        "follower.replication.throttled.replicas"
    )
    remote_storage_enable = Setting[bool]("remote.storage.enable")
    flush_before_ack = Setting[bool]("kbroker.flush.before.ack")

    @property
    def segment_bytes(self) -> int:
        """Segment size: internal.segment.bytes when set (tests), else segment.bytes."""
        internal = self._values["internal.segment.bytes"]
        value = internal if isinstance(internal, int) else self._values["segment.bytes"]
        assert isinstance(value, int)
        return value

    @property
    def compact(self) -> bool:
        """True when cleanup.policy includes compact."""
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        """True when cleanup.policy includes delete."""
        return "delete" in self.cleanup_policy

    @property
    def local_retention_ms(self) -> int:
        """local.retention.ms, where -2 means retention.ms."""
        value = self._local_retention("local.retention.ms")
        return self.retention_ms if value == -2 else value

    @property
    def local_retention_bytes(self) -> int:
        """local.retention.bytes, where -2 means retention.bytes."""
        value = self._local_retention("local.retention.bytes")
        return self.retention_bytes if value == -2 else value

    def _local_retention(self, name: str) -> int:
        value = self._values[name]
        assert isinstance(value, int), name
        return value

    def describe(
        self,
        names: Collection[str] | None = None,
        *,
        include_synonyms: bool = False,
        include_documentation: bool = False,
    ) -> list[ConfigEntry]:
        """Entries for DescribeConfigs on this topic, sorted by name (all when `names` empty).

        The source is the first synonym's: DYNAMIC_TOPIC_CONFIG for an override, then the
        broker's layers for the broker synonym, else DEFAULT_CONFIG.
        """
        wanted = set(names) if names else None
        return [
            self._entry(name, definition, include_synonyms, include_documentation)
            for name, definition in sorted(TOPIC_CONFIG_DEFS.items())
            if not definition.internal and (wanted is None or name in wanted)
        ]

    def _entry(
        self, name: str, definition: ConfigDef, include_synonyms: bool, include_docs: bool
    ) -> ConfigEntry:
        value = value_to_string(self._values[name])
        broker_name = TOPIC_BROKER_SYNONYMS.get(name)
        synonyms = self._broker.synonyms_of(broker_name) if broker_name else []
        if name in self._overrides:
            synonyms.insert(0, ConfigSynonym(name, value, ConfigSource.DYNAMIC_TOPIC_CONFIG))
        source = synonyms[0].source if synonyms else ConfigSource.DEFAULT_CONFIG
        return ConfigEntry(
            name=name,
            value=value,
            source=source,
            is_default=source == ConfigSource.DEFAULT_CONFIG,
            sensitive=False,
            synonyms=synonyms if include_synonyms else [],
            read_only=False,
            config_type=definition.type,
            documentation=definition.doc if include_docs else None,
        )


class TopicConfigs:
    """Topic config operations: names, validation (CreateTopics/AlterConfigs), resolution."""

    @staticmethod
    def names(include_internal: bool = False) -> list[str]:
        """Declared topic config names, sorted."""
        return sorted(n for n, d in TOPIC_CONFIG_DEFS.items() if include_internal or not d.internal)

    @staticmethod
    def is_known(name: str) -> bool:
        """True for a declared topic config (internal ones included, as Kafka accepts them)."""
        return name in TOPIC_CONFIG_DEFS

    @staticmethod
    def unknown(names: Iterable[str]) -> list[str]:
        """The names that are not topic configs, in the given order."""
        return [name for name in names if name not in TOPIC_CONFIG_DEFS]

    @staticmethod
    def validate(name: str, value: str) -> Value:
        """Parse one topic config value; ConfigError for an unknown name or invalid value."""
        definition = TOPIC_CONFIG_DEFS.get(name)
        if definition is None:
            raise ConfigError(f"Unknown topic config name: {name}", name, value)
        return definition.parse(value)

    @staticmethod
    def validate_all(
        overrides: Mapping[str, str], broker: BrokerConfig | None = None
    ) -> dict[str, Value]:
        """Check a whole set of overrides as CreateTopics/AlterConfigs must.

        Every name must be known and every value valid; then the combination is checked
        against the broker's values (min.compaction.lag.ms <= max.compaction.lag.ms) and
        tiered storage is refused. Returns the parsed overrides.
        """
        parsed = {name: TopicConfigs.validate(name, raw) for name, raw in overrides.items()}
        resolved = TopicConfigs.resolve(overrides, broker or BrokerConfig())
        if resolved.min_compaction_lag_ms > resolved.max_compaction_lag_ms:
            message = (
                f"min.compaction.lag.ms ({resolved.min_compaction_lag_ms}) must not exceed "
                f"max.compaction.lag.ms ({resolved.max_compaction_lag_ms})"
            )
            raise ConfigError(message, "min.compaction.lag.ms", resolved.min_compaction_lag_ms)
        if resolved.remote_storage_enable:
            message = "remote.storage.enable=true is not supported: kbroker has no tiered storage"
            raise ConfigError(message, "remote.storage.enable", True)
        return parsed

    @staticmethod
    def resolve(topic_overrides: Mapping[str, str], broker: BrokerConfig) -> ResolvedTopicConfig:
        """A topic's effective configs: overrides, else broker synonyms, else defaults.

        Overrides of unknown names are ignored (kept for display); an invalid value for a
        known name raises ConfigError.
        """
        values: dict[str, Value] = {}
        for name, definition in TOPIC_CONFIG_DEFS.items():
            broker_name = TOPIC_BROKER_SYNONYMS.get(name)
            if name in topic_overrides:
                values[name] = definition.parse(topic_overrides[name])
            elif broker_name is not None:
                values[name] = broker.effective(broker_name)
            else:
                default = definition.default
                values[name] = list(default) if isinstance(default, list) else default
        return ResolvedTopicConfig(topic_overrides, broker, values)
