"""The clients: how to start each one's driver, and what each can express.

A *capability* is one thing a scenario may ask of a client ("produce", "produce.timestamps",
"group", "admin.delete_records", ...). Each client maps every capability either to the Kafka
APIs it uses for it (on top of ApiVersions; "Name vN" when it needs version N advertised), or
to `Unsupported(reason)`: the client has no way
to say it. A scenario lists the capabilities it needs; the cell is "not expressible" if the
client lacks one, and "broker lacks ..." if the broker does not advertise an API the client
would use for one. Keep these tables honest: they are what the report's two grey statuses mean.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

COMPAT_DIR = Path(__file__).resolve().parent
INSTALL_HINT = "run scripts/install-compat-clients"


@dataclass(frozen=True)
class Unsupported:
    reason: str


class MissingPrerequisite(Exception):
    """A client's driver cannot start on this machine; the message says what to run."""


Capabilities = dict[str, tuple[str, ...] | Unsupported]
Launch = tuple[list[str], dict[str, str]]

PRODUCE = ("Metadata", "Produce")
CONSUME = ("Metadata", "ListOffsets", "Fetch")
GROUP = (
    "FindCoordinator",
    "JoinGroup",
    "SyncGroup",
    "Heartbeat",
    "LeaveGroup",
    "OffsetCommit",
    "OffsetFetch",
)
TRANSACTIONS = ("FindCoordinator", "InitProducerId", "AddPartitionsToTxn", "EndTxn")
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


def _full(alter_configs: str) -> Capabilities:
    """What a complete client library can express, and the APIs it uses for each."""
    caps: Capabilities = {
        "produce": PRODUCE,
        "produce.headers": (),
        "produce.timestamps": (),
        "produce.idempotent": ("InitProducerId",),
        "consume": CONSUME,
        "consume.read_committed": (),
        "offsets_for_times": ("ListOffsets",),
        "group": GROUP,
        "admin.create_topic": ("CreateTopics",),
        "admin.describe_topic": ("Metadata",),
        "admin.describe_configs": ("DescribeConfigs",),
        "admin.alter_configs": (alter_configs,),
        "admin.create_partitions": ("CreatePartitions",),
        "admin.delete_records": ("DeleteRecords",),
        "admin.delete_topic": ("DeleteTopics",),
        "admin.list_groups": ("ListGroups",),
        "admin.describe_group": ("FindCoordinator", "DescribeGroups"),
        "transactions": TRANSACTIONS,
    }
    caps.update({f"compression.{codec}": () for codec in CODECS})
    return caps


def _python(module: str) -> Callable[[], Launch]:
    def launch() -> Launch:
        return [sys.executable, "-m", f"compat.clients.{module}"], {}

    return launch


def cache_dir() -> Path:
    """Where scripts/install-compat-clients puts the non-Python clients (in the venv)."""
    return Path(os.environ.get("KBROKER_COMPAT_CACHE") or Path(sys.prefix) / "compat-clients")


def source_digest(*files: Path) -> str:
    """What the install script writes into a client's stamp file: sha256 over its sources."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _check_stamp(name: str, stamp: Path, *sources: Path) -> None:
    if not stamp.is_file():
        raise MissingPrerequisite(f"{name} is not installed ({stamp} is missing): {INSTALL_HINT}")
    if stamp.read_text().strip() != source_digest(*sources):
        raise MissingPrerequisite(f"{name} is older than its sources: {INSTALL_HINT}")


def _kcat() -> Launch:
    if shutil.which("kcat") is None:
        raise MissingPrerequisite(f"kcat is not on PATH (Debian package kcat): {INSTALL_HINT}")
    return [sys.executable, "-m", "compat.clients.kcat"], {}


KAFKAJS_DIR = COMPAT_DIR / "clients" / "kafkajs"
GO_DIR = COMPAT_DIR / "clients" / "go"


def _kafkajs() -> Launch:
    node = shutil.which("node")
    if node is None:
        raise MissingPrerequisite(f"node is not on PATH (Node.js >= 18): {INSTALL_HINT}")
    home = cache_dir() / "kafkajs"
    _check_stamp(
        "KafkaJS", home / "stamp", KAFKAJS_DIR / "package.json", KAFKAJS_DIR / "package-lock.json"
    )
    return [node, str(KAFKAJS_DIR / "driver.js")], {"NODE_PATH": str(home / "node_modules")}


def _sarama() -> Launch:
    home = cache_dir() / "sarama"
    _check_stamp("the sarama driver", home / "stamp", GO_DIR / "main.go")
    return [str(home / "compat-sarama")], {}


@dataclass(frozen=True)
class Client:
    name: str
    language: str
    launch: Callable[[], Launch]
    capabilities: Capabilities

    def apis(self, capabilities: list[str]) -> tuple[set[str], list[str]]:
        """(APIs the client uses for these capabilities, reasons it cannot express some)."""
        apis: set[str] = set()
        reasons: list[str] = []
        for cap in capabilities:
            entry = self.capabilities.get(cap, Unsupported(f"no driver support for {cap}"))
            if isinstance(entry, Unsupported):
                reasons.append(entry.reason)
            else:
                apis.update(entry)
        return apis, reasons


# librdkafka turns LZ4 on only for brokers that advertise FindCoordinator v0 (its sign of a
# Kafka >= 0.8.2 broker), and otherwise sends such batches uncompressed, silently.
LIBRDKAFKA_LZ4 = ("FindCoordinator v0",)
# librdkafka 2.0.2 (Debian's, which kcat links) also asks for Produce v0 before it compresses
# with gzip, snappy or lz4 (a broker with the KIP-896 floor, Produce 3+, gets them uncompressed).
OLD_LIBRDKAFKA_CODEC = ("Produce v0",)


def _confluent_capabilities() -> Capabilities:
    caps = _full("IncrementalAlterConfigs")
    caps["compression.lz4"] = LIBRDKAFKA_LZ4
    return caps


def _kcat_capabilities() -> Capabilities:
    no_admin = Unsupported("kcat has no admin commands")
    caps = _full("AlterConfigs")
    caps["compression.gzip"] = caps["compression.snappy"] = OLD_LIBRDKAFKA_CODEC
    caps["compression.lz4"] = OLD_LIBRDKAFKA_CODEC + LIBRDKAFKA_LZ4
    caps.update(
        {
            "produce.timestamps": Unsupported("kcat's producer cannot set a record's timestamp"),
            "admin.create_topic": no_admin,
            "admin.describe_configs": no_admin,
            "admin.alter_configs": no_admin,
            "admin.create_partitions": no_admin,
            "admin.delete_records": no_admin,
            "admin.delete_topic": no_admin,
            "admin.list_groups": no_admin,
            "admin.describe_group": no_admin,
            "transactions": Unsupported(
                "kcat commits when its input ends and aborts only on a signal, racing its own "
                "deliveries: it cannot write an aborted transaction deterministically"
            ),
        }
    )
    return caps


def _kafkajs_capabilities() -> Capabilities:
    caps = _full("AlterConfigs")
    # KafkaJS has no assign(): every consumer joins a group (it never commits here).
    caps["consume"] = CONSUME + tuple(api for api in GROUP if api != "OffsetCommit")
    return caps


def _sarama_capabilities() -> Capabilities:
    caps = _full("AlterConfigs")
    caps["transactions"] = Unsupported(
        "sarama 1.22 (Debian's) has no transactional producer (it arrived in sarama 1.37)"
    )
    caps["compression.zstd"] = Unsupported(
        "sarama 1.22 sends zstd batches in Produce v3; Kafka accepts zstd from Produce v7 "
        "(sarama 1.23 and later)"
    )
    return caps


CLIENTS: list[Client] = [
    Client(
        "confluent-kafka",
        "Python (librdkafka)",
        _python("confluent"),
        _confluent_capabilities(),
    ),
    Client("kafka-python", "Python", _python("kafka_python"), _full("AlterConfigs")),
    Client("aiokafka", "Python (asyncio)", _python("aiokafka_driver"), _full("AlterConfigs")),
    Client("kcat", "C (librdkafka), CLI", _kcat, _kcat_capabilities()),
    Client("kafkajs", "JavaScript (Node.js)", _kafkajs, _kafkajs_capabilities()),
    Client("sarama", "Go", _sarama, _sarama_capabilities()),
]

CLIENTS_BY_NAME = {client.name: client for client in CLIENTS}
