"""Broker config, .properties parsing, topic configs and topic name rules."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from kbroker.config import (
    BROKER_CONFIG_DEFS,
    BrokerConfig,
    ConfigError,
    ConfigSource,
    ConfigSynonym,
    ConfigType,
    Listener,
    ephemeral_log_dirs,
    load_config,
    new_cluster_id,
    parse_overrides,
    parse_properties,
)
from kbroker.config_properties import load_properties
from kbroker.config_types import value_to_string
from kbroker.topic_config import TOPIC_CONFIG_DEFS, TopicConfigs
from kbroker.topics_naming import (
    InvalidTopicName,
    check_new_topic_name,
    find_collision,
    has_collision,
    has_collision_chars,
    is_internal,
    is_valid_topic_name,
    unify_collision_chars,
    validate_topic_name,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "server.properties"


def cfg(*overrides: str) -> BrokerConfig:
    return load_config(None, list(overrides))


# -- .properties syntax ------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    ["key=value", "key: value", "key value", "  key = value", "key\t:\tvalue", "key   =value"],
)
def test_properties_separators(line: str) -> None:
    assert parse_properties(line) == {"key": "value"}


def test_properties_comments_blank_lines_and_endings() -> None:
    text = "# comment\n  ! also a comment\n\n a=1\r\nb=2\rc=3\n#d=4\n"
    assert parse_properties(text) == {"a": "1", "b": "2", "c": "3"}


def test_properties_continuation_lines() -> None:
    text = "listeners=PLAINTEXT://a:1,\\\n    PLAINTEXT2://b:2\nnext=x\n"
    assert parse_properties(text) == {"listeners": "PLAINTEXT://a:1,PLAINTEXT2://b:2", "next": "x"}


def test_properties_even_backslashes_do_not_continue() -> None:
    assert parse_properties("a=x\\\\\nb=y") == {"a": "x\\", "b": "y"}


def test_properties_comment_never_continues() -> None:
    assert parse_properties("# comment \\\nkey=v") == {"key": "v"}


def test_properties_escapes() -> None:
    text = "a\\=b=c\nsp\\ ace=1\nuni=\\u0041\\u00e9\ntab=x\\ty\ncolon\\:k=v\nplain=\\q"
    assert parse_properties(text) == {
        "a=b": "c",
        "sp ace": "1",
        "uni": "Aé",
        "tab": "x\ty",
        "colon:k": "v",
        "plain": "q",
    }


def test_properties_values_keep_separators_and_trailing_space() -> None:
    assert parse_properties("k==v:w  ") == {"k": "=v:w  "}
    assert parse_properties("k = : v") == {"k": ": v"}


def test_properties_empty_values_and_duplicates() -> None:
    assert parse_properties("a=\nb\nc=1\nc=2") == {"a": "", "b": "", "c": "2"}


def test_properties_malformed_unicode_escape() -> None:
    with pytest.raises(ConfigError, match=r"server.properties:2: malformed \\uXXXX"):
        parse_properties("ok=1\nbad=\\u12G4", source="server.properties")


def test_load_properties_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.properties"
    with pytest.raises(ConfigError, match=r"cannot read config file .*nope\.properties"):
        load_properties(str(missing))


def test_load_properties_latin1_fallback(tmp_path: Path) -> None:
    path = tmp_path / "s.properties"
    path.write_bytes("broker.rack=caf\xe9\n".encode("iso-8859-1"))
    assert load_properties(str(path)) == {"broker.rack": "café"}


# -- defaults and the declared table -----------------------------------------------------


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    c = BrokerConfig()
    assert c.listeners == [Listener("PLAINTEXT", "localhost", 9092, "PLAINTEXT")]
    assert c.log_dirs == [str(tmp_path / "data" / "kbroker-logs")]
    assert (c.num_partitions, c.default_replication_factor, c.node_id) == (1, 1, 0)
    assert c.auto_create_topics_enable and c.delete_topic_enable
    assert (c.socket_request_max_bytes, c.connections_max_idle_ms) == (104857600, 600000)
    assert (c.offsets_topic_num_partitions, c.offsets_retention_minutes) == (50, 10080)
    assert c.group_initial_rebalance_delay_ms == 3000
    assert (c.group_min_session_timeout_ms, c.group_max_session_timeout_ms) == (6000, 1800000)
    assert c.transaction_state_log_num_partitions == 50
    assert (c.message_max_bytes, c.log_retention_ms) == (1048588, 7 * 24 * 3600 * 1000)
    assert c.log_cleanup_policy == ["delete"]
    assert c.zookeeper_connect is None and not c.cluster_mode and not c.ephemeral
    assert c.get("log.retention.ms") is None


@pytest.mark.parametrize("name", sorted(BROKER_CONFIG_DEFS) + sorted(TOPIC_CONFIG_DEFS))
def test_every_default_is_valid_and_round_trips(name: str) -> None:
    definition = BROKER_CONFIG_DEFS.get(name) or TOPIC_CONFIG_DEFS[name]
    definition.check(definition.default)
    text = value_to_string(definition.default)
    if text is not None:
        assert definition.parse(text) == definition.default
    assert definition.doc.strip()


def test_example_server_properties_equals_defaults(caplog: pytest.LogCaptureFixture) -> None:
    from_file = load_config(str(EXAMPLE), [])
    assert not caplog.records, "the example should use known names only"
    defaults = BrokerConfig()
    # Set differently but meaning the same: empty zookeeper.connect, log.dirs = log.dir.
    same_meaning = {"zookeeper.connect", "log.dirs", "broker.id", "node.id"}
    for name in BROKER_CONFIG_DEFS:
        if name not in same_meaning:
            assert from_file.get(name) == defaults.get(name), name
    assert from_file.log_dirs == defaults.log_dirs
    assert from_file.zookeeper_connect is None and from_file.node_id == defaults.node_id


def test_values_are_copies() -> None:
    c = BrokerConfig()
    c.log_cleanup_policy.append("compact")
    assert c.log_cleanup_policy == ["delete"]


# -- overrides and precedence ------------------------------------------------------------


def test_overrides_beat_file_and_later_overrides_win(tmp_path: Path) -> None:
    path = tmp_path / "server.properties"
    path.write_text("num.partitions=3\ndefault.replication.factor=2\n")
    c = load_config(str(path), ["num.partitions=5", "num.partitions=7"])
    assert (c.num_partitions, c.default_replication_factor) == (7, 2)
    assert c.originals["num.partitions"] == "7"


def test_parse_overrides() -> None:
    assert parse_overrides(["a=b=c", "empty=", " k =v"]) == {"a": "b=c", "empty": "", "k": "v"}
    for bad in ("novalue", "=x"):
        with pytest.raises(ConfigError, match="expected key=value"):
            parse_overrides([bad])


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ((), 168 * 3600_000),
        (("log.retention.hours=1",), 3600_000),
        (("log.retention.minutes=2", "log.retention.hours=1"), 120_000),
        (("log.retention.ms=5", "log.retention.minutes=2", "log.retention.hours=1"), 5),
        (("log.retention.ms=-1",), -1),
        (("log.retention.minutes=-7",), -1),
    ],
)
def test_retention_precedence(settings: tuple[str, ...], expected: int) -> None:
    assert cfg(*settings).log_retention_ms == expected


def test_roll_and_flush_fallbacks() -> None:
    assert cfg("log.roll.hours=2").log_roll_ms == 7200_000
    assert cfg("log.roll.hours=2", "log.roll.ms=10").log_roll_ms == 10
    assert cfg("log.roll.jitter.hours=1").log_roll_jitter_ms == 3600_000
    assert cfg("log.flush.scheduler.interval.ms=50").log_flush_interval_ms == 50
    assert (
        cfg("log.flush.interval.ms=5", "log.flush.scheduler.interval.ms=50").log_flush_interval_ms
        == 5
    )


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("num.partitions=abc", "expected a 32-bit integer"),
        ("num.partitions=0", "must be at least 1"),
        ("num.partitions=1.5", "expected a 32-bit integer"),
        ("num.partitions=99999999999", "between -2147483648 and 2147483647"),
        ("auto.create.topics.enable=yes", "expected true or false"),
        ("log.message.timestamp.type=createtime", "one of CreateTime, LogAppendTime"),
        ("compression.type=brotli", "must be one of"),
        ("log.cleanup.policy=delete,forever", "items must be among compact, delete"),
        ("log.cleanup.policy=delete,delete", "duplicates"),
        ("log.segment.bytes=1000", "at least 1048576"),
        ("compression.gzip.level=10", "between 1 and 9, or -1"),
        ("log.cleaner.min.cleanable.ratio=2", "between 0 and 1"),
        ("kbroker.cluster.id=short", "URL-safe base64"),
        ("log.retention.ms=0", "-1 (unlimited) or at least 1"),
        ("log.roll.ms=0", "at least 1"),
        ("replica.fetch.wait.max.ms=40000", "must not exceed replica.socket.timeout.ms"),
    ],
)
def test_invalid_values_name_key_value_and_expectation(setting: str, expected: str) -> None:
    key, _, value = setting.partition("=")
    with pytest.raises(ConfigError) as info:
        cfg(setting)
    message = str(info.value)
    assert key in message and value in message and expected in message
    assert info.value.error_code == 40


def test_booleans_and_whitespace_are_lenient_like_kafka() -> None:
    c = cfg(
        "auto.create.topics.enable= FALSE ",
        "num.partitions= 4",
        "log.cleanup.policy=compact , delete",
    )
    assert (c.auto_create_topics_enable, c.num_partitions) == (False, 4)
    assert c.log_cleanup_policy == ["compact", "delete"]


def test_unknown_keys_are_kept_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        c = cfg("process.roles=broker", "num.partitions=2")
    assert any("process.roles" in r.getMessage() for r in caplog.records)
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    assert c.unknown == {"process.roles": "broker"} and c.get("process.roles") == "broker"
    (entry,) = c.describe(["process.roles"], include_synonyms=True)
    # Kafka hides values of unknown keys: their type is unknown, so they may be secrets.
    assert (entry.value, entry.sensitive, entry.source, entry.config_type) == (
        None,
        True,
        ConfigSource.STATIC_BROKER_CONFIG,
        ConfigType.UNKNOWN,
    )
    assert entry.synonyms == [
        ConfigSynonym("process.roles", None, ConfigSource.STATIC_BROKER_CONFIG)
    ]
    with pytest.raises(KeyError):
        c.get("never.set")


# -- listeners ---------------------------------------------------------------------------


def test_listeners_ipv6_wildcard_and_several() -> None:
    c = cfg(
        "listeners=PLAINTEXT://[::1]:9092,internal://:9093,SSL://0.0.0.0:0",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:SASL_PLAINTEXT,SSL:SSL",
    )
    assert c.listeners == [
        Listener("PLAINTEXT", "::1", 9092, "PLAINTEXT"),
        Listener("INTERNAL", "", 9093, "SASL_PLAINTEXT"),
        Listener("SSL", "0.0.0.0", 0, "SSL"),
    ]
    assert [str(x) for x in c.listeners] == [
        "PLAINTEXT://[::1]:9092",
        "INTERNAL://:9093",
        "SSL://0.0.0.0:0",
    ]
    assert c.advertised_listeners == c.listeners


def test_bind_hosts() -> None:
    assert Listener("P", "localhost", 1, "PLAINTEXT").bind_hosts() == ("127.0.0.1", "::1")
    assert Listener("P", "", 1, "PLAINTEXT").bind_hosts() == (None,)
    assert Listener("P", "10.0.0.1", 1, "PLAINTEXT").bind_hosts() == ("10.0.0.1",)
    assert Listener("P", "h", 0, "PLAINTEXT").with_port(5).port == 5


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (("listeners=localhost:9092",), "expected NAME://host:port"),
        (("listeners=PLAINTEXT://:70000",), "port must be between 0 and 65535"),
        (("listeners=FOO://:1",), "FOO has no entry in listener.security.protocol.map"),
        (("listeners=PLAINTEXT://:1,PLAINTEXT://:2",), "PLAINTEXT is used twice"),
        (("listeners=",), "must not be empty"),
        (("advertised.listeners=",), "must not be empty"),
        (("listener.security.protocol.map=A:TLS",), "NAME:PROTOCOL"),
        (("advertised.listeners=PLAINTEXT://0.0.0.0:9092",), "not an address clients"),
        (("advertised.listeners=SSL://h:9093",), "SSL is not among listeners"),
    ],
)
def test_invalid_listeners(settings: tuple[str, ...], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        cfg(*settings)


def test_advertised_listeners() -> None:
    c = cfg("listeners=PLAINTEXT://:0", "advertised.listeners=PLAINTEXT://broker.example:19092")
    assert c.advertised_listeners == [Listener("PLAINTEXT", "broker.example", 19092, "PLAINTEXT")]


def test_inter_broker_listener() -> None:
    assert BrokerConfig().inter_broker_listener_name == "PLAINTEXT"
    with pytest.raises(ConfigError, match="set only one"):
        cfg("inter.broker.listener.name=PLAINTEXT", "security.inter.broker.protocol=PLAINTEXT")
    with pytest.raises(ConfigError, match="advertised listeners"):
        cfg("inter.broker.listener.name=SSL")


# -- ids and modes -----------------------------------------------------------------------


def test_node_id_and_broker_id_are_synonyms() -> None:
    assert cfg("broker.id=3").node_id == 3
    assert cfg("node.id=4").get("broker.id") == 4
    with pytest.raises(ConfigError, match=r"node.id \(2\) and broker.id \(3\)"):
        cfg("node.id=2", "broker.id=3")
    assert cfg("zookeeper.connect=zk1:2181/kb").node_id == -1
    assert cfg("zookeeper.connect=zk1:2181/kb", "broker.id=1").node_id == 1


def test_zookeeper_settings() -> None:
    c = cfg("zookeeper.connect=zk1:2181,zk2:2181/kb", "zookeeper.session.timeout.ms=9000")
    assert c.cluster_mode and c.zookeeper_connect == "zk1:2181,zk2:2181/kb"
    assert c.zookeeper_connection_timeout_ms == 9000
    assert not cfg("zookeeper.connect=").cluster_mode


def test_new_cluster_id_is_valid() -> None:
    ids = {new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    for cluster_id in ids:
        assert cfg(f"kbroker.cluster.id={cluster_id}").cluster_id == cluster_id
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")


def test_ephemeral_log_dirs() -> None:
    c = cfg("kbroker.ephemeral=true")
    with ephemeral_log_dirs(c) as effective:
        (path,) = effective.log_dirs
        assert os.path.isdir(path) and path not in c.log_dirs
    assert not os.path.exists(path)
    with ephemeral_log_dirs(BrokerConfig()) as same:
        assert same.log_dirs == BrokerConfig().log_dirs


# -- DescribeConfigs for the broker ------------------------------------------------------


def test_config_source_wire_ids() -> None:
    sources = [
        ConfigSource.DYNAMIC_TOPIC_CONFIG,
        ConfigSource.DYNAMIC_BROKER_CONFIG,
        ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
        ConfigSource.STATIC_BROKER_CONFIG,
        ConfigSource.DEFAULT_CONFIG,
    ]
    assert [int(s) for s in sources] == [1, 2, 3, 4, 5]
    types = [ConfigType.BOOLEAN, ConfigType.LONG, ConfigType.PASSWORD]
    assert [int(t) for t in types] == [1, 5, 9]


def test_describe_sources_and_synonyms() -> None:
    c = cfg("log.retention.ms=5000", "num.partitions=3")
    entries = {e.name: e for e in c}
    retention = entries["log.retention.ms"]
    assert (retention.value, retention.source, retention.is_default) == (
        "5000",
        ConfigSource.STATIC_BROKER_CONFIG,
        False,
    )
    assert retention.synonyms == [
        ConfigSynonym("log.retention.ms", "5000", ConfigSource.STATIC_BROKER_CONFIG),
        ConfigSynonym("log.retention.hours", "168", ConfigSource.DEFAULT_CONFIG),
    ]
    assert not retention.read_only and entries["num.partitions"].read_only
    hours = entries["log.retention.hours"]
    assert hours.source == ConfigSource.DEFAULT_CONFIG and hours.is_default
    assert entries["listeners"].value == "PLAINTEXT://localhost:9092"
    assert "producer.id.expiration.check.interval.ms" not in entries  # internal
    assert [e.name for e in c.describe(["num.partitions"])] == ["num.partitions"]
    assert c.describe(["num.partitions"])[0].synonyms == []  # only when asked for


def test_describe_documentation_only_when_asked() -> None:
    (plain,) = BrokerConfig().describe(["num.partitions"])
    (documented,) = BrokerConfig().describe(["num.partitions"], include_documentation=True)
    assert plain.documentation is None and documented.documentation


def test_passwords_are_never_shown() -> None:
    (entry,) = cfg("ssl.keystore.password=secret").describe(
        ["ssl.keystore.password"], include_synonyms=True
    )
    assert entry.sensitive and entry.value is None
    assert entry.synonyms == [
        ConfigSynonym("ssl.keystore.password", None, ConfigSource.STATIC_BROKER_CONFIG)
    ]
    assert entry.config_type == ConfigType.PASSWORD


def test_dynamic_layers() -> None:
    base = cfg("log.retention.ms=5000")
    changed = base.with_dynamic({"log.retention.ms": "1000"}, {"log.retention.ms": "2000"})
    assert changed.log_retention_ms == 1000
    (entry,) = changed.describe(["log.retention.ms"], include_synonyms=True)
    assert [s.source for s in entry.synonyms] == [
        ConfigSource.DYNAMIC_BROKER_CONFIG,
        ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
        ConfigSource.STATIC_BROKER_CONFIG,
        ConfigSource.DEFAULT_CONFIG,
    ]
    (default,) = changed.describe(include_synonyms=True, per_broker=False)
    assert (default.name, default.value) == ("log.retention.ms", "2000")
    assert default.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
    assert [s.source for s in default.synonyms] == [ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG]


def test_validate_dynamic() -> None:
    assert BrokerConfig.validate_dynamic({"log.retention.ms": "10"}) == {"log.retention.ms": 10}
    with pytest.raises(ConfigError, match=r"Cannot update these configs dynamically: num\.part"):
        BrokerConfig.validate_dynamic({"num.partitions": "2"})
    with pytest.raises(ConfigError, match="Unknown broker configs: nope"):
        BrokerConfig.validate_dynamic({"nope": "2"})
    with pytest.raises(ConfigError, match=r"log\.retention\.bytes"):
        BrokerConfig.validate_dynamic({"log.retention.bytes": "x"})


# -- topic configs -----------------------------------------------------------------------

KAFKA_4_TOPIC_CONFIGS = {
    "cleanup.policy", "compression.type", "compression.gzip.level", "compression.lz4.level",
    "compression.zstd.level", "delete.retention.ms", "file.delete.delay.ms", "flush.messages",
    "flush.ms", "follower.replication.throttled.replicas", "index.interval.bytes",
    "leader.replication.throttled.replicas", "local.retention.bytes", "local.retention.ms",
    "max.compaction.lag.ms", "max.message.bytes", "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms", "message.timestamp.type", "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms", "min.insync.replicas", "preallocate", "remote.log.copy.disable",
    "remote.log.delete.on.disable", "remote.storage.enable", "retention.bytes", "retention.ms",
    "segment.bytes", "segment.index.bytes", "segment.jitter.ms", "segment.ms",
    "unclean.leader.election.enable",
}  # fmt: skip


def test_topic_config_names() -> None:
    assert set(TopicConfigs.names()) == KAFKA_4_TOPIC_CONFIGS | {"kbroker.flush.before.ack"}
    assert "internal.segment.bytes" in TopicConfigs.names(include_internal=True)
    assert TopicConfigs.unknown(["retention.ms", "message.downconversion.enable"]) == [
        "message.downconversion.enable"
    ]


def test_topic_defaults_follow_the_broker() -> None:
    broker = cfg("log.retention.hours=1", "message.max.bytes=2000", "log.roll.ms=77")
    topic = TopicConfigs.resolve({}, broker)
    assert (topic.retention_ms, topic.max_message_bytes, topic.segment_ms) == (3600_000, 2000, 77)
    assert topic.segment_bytes == 1073741824 and topic.delete and not topic.compact
    assert topic.local_retention_ms == 3600_000 and topic.local_retention_bytes == -1
    assert not topic.flush_before_ack


def test_topic_describe_override_then_broker_synonyms() -> None:
    broker = cfg("log.retention.ms=5000")
    topic = TopicConfigs.resolve({"retention.ms": "1000"}, broker)
    (entry,) = topic.describe(["retention.ms"], include_synonyms=True)
    assert (entry.value, entry.source, entry.read_only) == (
        "1000",
        ConfigSource.DYNAMIC_TOPIC_CONFIG,
        False,
    )
    assert entry.synonyms == [
        ConfigSynonym("retention.ms", "1000", ConfigSource.DYNAMIC_TOPIC_CONFIG),
        ConfigSynonym("log.retention.ms", "5000", ConfigSource.STATIC_BROKER_CONFIG),
        ConfigSynonym("log.retention.hours", "168", ConfigSource.DEFAULT_CONFIG),
    ]


def test_topic_describe_broker_sourced_values() -> None:
    topic = TopicConfigs.resolve({}, cfg("log.retention.ms=5000", "log.retention.hours=2"))
    entries = {e.name: e for e in topic.describe(include_synonyms=True)}
    assert entries["retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG
    assert entries["retention.ms"].value == "5000"
    assert entries["max.message.bytes"].synonyms == [
        ConfigSynonym("message.max.bytes", "1048588", ConfigSource.DEFAULT_CONFIG)
    ]
    assert entries["max.message.bytes"].is_default
    assert entries["leader.replication.throttled.replicas"].synonyms == []
    assert entries["cleanup.policy"].config_type == ConfigType.LIST
    assert "internal.segment.bytes" not in entries


def test_topic_retention_from_hours_lists_no_synonyms_as_kafka_does() -> None:
    # Kafka drops synonyms listed before the first one named like the topic's broker
    # synonym (log.retention.ms): with only log.retention.hours set, none remain.
    topic = TopicConfigs.resolve({}, cfg("log.retention.hours=2"))
    (entry,) = topic.describe(["retention.ms"], include_synonyms=True)
    assert (entry.value, entry.source, entry.synonyms) == (
        "7200000",
        ConfigSource.DEFAULT_CONFIG,
        [],
    )


def test_topic_resolution_sees_dynamic_broker_values() -> None:
    broker = BrokerConfig().with_dynamic({"log.retention.ms": "1234"})
    topic = TopicConfigs.resolve({}, broker)
    (entry,) = topic.describe(["retention.ms"])
    assert topic.retention_ms == 1234 and entry.source == ConfigSource.DYNAMIC_BROKER_CONFIG


def test_topic_cleanup_policy_and_flush_before_ack() -> None:
    both = TopicConfigs.resolve({"cleanup.policy": "compact,delete"}, BrokerConfig())
    assert both.compact and both.delete
    neither = TopicConfigs.resolve({"cleanup.policy": ""}, BrokerConfig())
    assert neither.cleanup_policy == [] and not neither.compact and not neither.delete
    broker = cfg("kbroker.log.flush.before.ack=true")
    assert TopicConfigs.resolve({}, broker).flush_before_ack
    assert not TopicConfigs.resolve({"kbroker.flush.before.ack": "false"}, broker).flush_before_ack


def test_internal_segment_bytes_for_tests() -> None:
    topic = TopicConfigs.resolve({"internal.segment.bytes": "1024"}, BrokerConfig())
    assert topic.segment_bytes == 1024
    with pytest.raises(ConfigError, match="at least 1048576"):
        TopicConfigs.validate("segment.bytes", "1024")


def test_topic_validate() -> None:
    assert TopicConfigs.validate("retention.ms", "-1") == -1
    assert TopicConfigs.validate("min.cleanable.dirty.ratio", "0.25") == 0.25
    with pytest.raises(ConfigError, match=r"Unknown topic config name: message\.downconversion"):
        TopicConfigs.validate("message.downconversion.enable", "true")
    with pytest.raises(
        ConfigError, match=r"Invalid value -2 for configuration retention\.ms: must be at least -1"
    ):
        TopicConfigs.validate("retention.ms", "-2")
    assert TopicConfigs.validate("leader.replication.throttled.replicas", "*") == ["*"]
    assert TopicConfigs.validate("follower.replication.throttled.replicas", "0:1, 1:2") == [
        "0:1",
        "1:2",
    ]
    with pytest.raises(ConfigError, match="partitionId:brokerId"):
        TopicConfigs.validate("leader.replication.throttled.replicas", "0:x")


def test_topic_validate_all() -> None:
    assert TopicConfigs.validate_all({"segment.ms": "100"}) == {"segment.ms": 100}
    with pytest.raises(ConfigError, match=r"min.compaction.lag.ms \(10\) must not exceed"):
        TopicConfigs.validate_all({"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"})
    broker = cfg("log.cleaner.max.compaction.lag.ms=5")
    with pytest.raises(ConfigError, match=r"max\.compaction\.lag\.ms"):
        TopicConfigs.validate_all({"min.compaction.lag.ms": "10"}, broker)
    with pytest.raises(ConfigError, match="tiered storage"):
        TopicConfigs.validate_all({"remote.storage.enable": "true"})
    with pytest.raises(ConfigError, match="Unknown topic config name: bogus"):
        TopicConfigs.validate_all({"bogus": "1"})


def test_topic_resolve_ignores_unknown_stored_overrides() -> None:
    topic = TopicConfigs.resolve({"message.format.version": "0.10.0"}, BrokerConfig())
    assert topic.overrides == {"message.format.version": "0.10.0"}
    assert "message.format.version" not in {e.name for e in topic.describe()}


# -- topic names -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "A-b_c.9", "x" * 249, "__consumer_offsets", "..."])
def test_valid_topic_names(name: str) -> None:
    validate_topic_name(name)
    assert is_valid_topic_name(name)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        (".", "'.' is not allowed"),
        ("..", "'..' is not allowed"),
        ("x" * 250, "250 characters is longer than the maximum of 249"),
        ("a b", "characters other than"),
        ("caf\xe9", "characters other than"),
        ("a/b", "characters other than"),
        ("a:b", "characters other than"),
    ],
)
def test_invalid_topic_names(name: str, reason: str) -> None:
    with pytest.raises(InvalidTopicName, match=reason) as info:
        validate_topic_name(name)
    assert str(info.value).startswith("Topic name is invalid: ")
    assert info.value.error_code == 17
    assert not is_valid_topic_name(name)


def test_topic_name_collisions() -> None:
    assert has_collision_chars("a.b") and has_collision_chars("a_b")
    assert not has_collision_chars("a-b")
    assert unify_collision_chars("a.b_c.d") == "a_b_c_d"
    assert has_collision("a.b", "a_b") and not has_collision("a.b", "a-b")
    assert find_collision("a.b", ["x", "a_b"]) == "a_b"
    assert find_collision("a.b", ["a.b"]) is None
    with pytest.raises(InvalidTopicName, match="collides with existing topic 'a_b'"):
        check_new_topic_name("a.b", ["a_b"])
    check_new_topic_name("a.b", ["a-b"])


def test_internal_topics() -> None:
    assert is_internal("__consumer_offsets") and is_internal("__transaction_state")
    assert not is_internal("consumer_offsets")
