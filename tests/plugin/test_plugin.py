"""The pytest plugin, from the outside: it is found through its entry point, its fixtures and
marker work in a suite of their own, --kafka-bootstrap redirects them, and its read-back
helpers work against a broker that is not kbroker (librdkafka's mock cluster, which has
consumer groups)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from compat.targets import Target, start_mock
from kbroker.pytest_plugin import (
    KafkaTestBroker,
    ProtocolFailure,
    committed_offsets,
    create_topic,
    read_records,
)

SUITE = """
import os

import pytest
from confluent_kafka import Producer


def test_fixtures(kafka_broker, kafka_topic, bootstrap_servers):
    assert bootstrap_servers == kafka_broker.bootstrap_servers
    producer = Producer({"bootstrap.servers": bootstrap_servers})
    producer.produce(kafka_topic, b"v", key=b"k")
    assert producer.flush(10) == 0
    assert [(r.key, r.value) for r in kafka_broker.records(kafka_topic)] == [(b"k", b"v")]


@pytest.mark.kafka_topic(partitions=3, configs={"cleanup.policy": "compact"})
def test_marker(kafka_broker, kafka_topic):
    assert kafka_broker.end_offsets(kafka_topic) == {0: 0, 1: 0, 2: 0}


@pytest.mark.parametrize(
    ("kafka_topic", "expected"), [(2, 2), ({"partitions": 5}, 5)], indirect=["kafka_topic"]
)
def test_indirect(kafka_broker, kafka_topic, expected):
    assert len(kafka_broker.end_offsets(kafka_topic)) == expected


def test_where(kafka_broker):
    in_process = kafka_broker.broker is not None
    assert in_process == (os.environ["EXPECT_IN_PROCESS"] == "1")


def test_a_wrong_assertion_fails(kafka_broker, kafka_topic):
    assert kafka_broker.values(kafka_topic) == [b"never produced"]
"""


def run_suite(tmp_path: Path, in_process: bool, *args: str) -> subprocess.CompletedProcess[str]:
    """Run SUITE in a pytest of its own: nothing of ours on its command line but the plugin's
    options, so the fixtures can only come from the installed entry point."""
    (tmp_path / "test_user_suite.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["EXPECT_IN_PROCESS"] = "1" if in_process else "0"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip


def test_fixtures_come_from_the_entry_point(tmp_path: Path) -> None:
    done = run_suite(tmp_path, True)
    assert "1 failed, 5 passed in" in done.stdout, done.stdout + done.stderr
    assert "FAILED test_user_suite.py::test_a_wrong_assertion_fails" in done.stdout


def test_kafka_bootstrap_points_the_fixtures_elsewhere(
    tmp_path: Path, kafka_broker: KafkaTestBroker
) -> None:
    done = run_suite(tmp_path, False, "--kafka-bootstrap", kafka_broker.bootstrap_servers)
    assert "1 failed, 5 passed in" in done.stdout, done.stdout + done.stderr
    # the other suite's topics were made on this session's broker
    assert kafka_broker.broker is not None
    made = kafka_broker.broker.run(lambda b: list(b.topics.topics)).result(10)
    assert any(name.startswith("test_marker-") for name in made), made


@pytest.fixture(scope="module")
def mock_cluster() -> Iterator[Target]:
    target = start_mock()
    try:
        yield target
    finally:
        target.close()


def test_helpers_read_another_broker(mock_cluster: Target) -> None:
    """Produce with librdkafka, commit as a group member, read both back with the helpers."""
    bootstrap, topic, group = mock_cluster.bootstrap, "helpers", "helpers-group"
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(5):
        producer.produce(topic, b"v%d" % i, key=b"k", partition=1, headers=[("h", b"x")])
    assert producer.flush(10) == 0
    records = read_records(bootstrap, topic, partition=1)
    assert [(r.offset, r.value, r.headers) for r in records] == [
        (i, b"v%d" % i, [("h", b"x")]) for i in range(5)
    ]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    consumer.commit(offsets=[TopicPartition(topic, 1, 3)], asynchronous=False)
    consumer.close()
    deadline = time.monotonic() + 10
    while committed_offsets(bootstrap, group, topic) != {1: 3}:
        assert time.monotonic() < deadline, committed_offsets(bootstrap, group, topic)
        time.sleep(0.1)


def test_a_missing_api_is_named(mock_cluster: Target) -> None:
    # librdkafka's mock cluster has no CreateTopics (its ApiVersions does not list it)
    with pytest.raises(ProtocolFailure, match="lacks CreateTopics"):
        create_topic(mock_cluster.bootstrap, "nope", 1)


def test_the_cli_serves_clients_of_any_language(tmp_path: Path) -> None:
    """What another language's test suite does: start the CLI, read its address, use it."""
    with subprocess.Popen(
        [sys.executable, "-m", "kbroker", "--ephemeral", "--port", "0", "--print-bootstrap"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    ) as broker:  # fmt: skip
        try:
            assert broker.stdout is not None
            address = broker.stdout.readline().strip()
            produce = ["kcat", "-b", address, "-t", "cli", "-P", "-K", ":"]
            subprocess.run(produce, input="k1:hello\nk2:world\n", text=True, check=True, timeout=30)
            consume = ["kcat", "-b", address, "-t", "cli", "-C", "-e", "-f", "%k=%s\\n"]
            out = subprocess.run(consume, capture_output=True, text=True, check=True, timeout=30)
            assert out.stdout.splitlines() == ["k1=hello", "k2=world"]
        finally:
            broker.terminate()
            assert broker.wait(30) == 0


def test_the_readme_example_passes_as_pasted(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- readme-example: pytest -->\n```python\n", 1)[1].split("```", 1)[0]
    assert len(block.strip().splitlines()) <= 11  # the promised ten lines (and a blank)
    (tmp_path / "test_hello.py").write_text(block)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert "1 passed" in done.stdout, done.stdout + done.stderr
