"""Consumer groups against librdkafka's mock: `.venv/bin/python scripts/bench/groups.py [--quick]`.

Two figures, each measured on both brokers in the same run, alternating, the median of
`--runs` (3) reported with the ratio kbroker / mock:

- group formation: 10 confluent-kafka consumers subscribe together to 100 partitions; the
  time from the first subscribe() until every consumer holds its share (on_assign) and the
  shares are disjoint and cover all 100 partitions. The mock cluster cannot create topics
  (no CreateTopics) and auto-creates 4 partitions per topic, so both brokers serve 25 topics
  of 4 partitions, assigned round-robin (range would leave 6 of the 10 consumers idle).
- commits per second: one consumer in a group reads N messages and commits each one
  synchronously (commit(message=..., asynchronous=False)) before reading the next.

The mock cluster waits a fixed 3 s before forming a new group (librdkafka's
rdkafka_mock_cgrp.c, "same as group.initial.rebalance.delay.ms"); kbroker is measured twice,
with group.initial.rebalance.delay.ms=3000 (Kafka's default: the comparable figure) and with
0 (what kbroker.testing.Broker uses in test suites). Both brokers run in their own processes:
kbroker as `python -m kbroker --ephemeral`, the mock in a helper process
(`scripts/bench/broker.py --serve-mock-cluster`). A measurement, not a test: exit status 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import confluent_kafka
from confluent_kafka import Consumer, Producer, TopicPartition

REPO = Path(__file__).resolve().parents[2]
BROKER_BENCH = Path(__file__).resolve().parent / "broker.py"
HOST = "127.0.0.1"
CONSUMERS = 10
TOPICS = 25  # x 4 partitions (the mock cluster's auto-create) = 100 partitions
PARTITIONS_PER_TOPIC = 4
START_TIMEOUT_S = 30.0
FORM_TIMEOUT_S = 120.0
_T0 = time.perf_counter()
client_log = logging.getLogger("kbroker-bench.librdkafka")  # librdkafka's logs, to a file


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f} s] {message}", flush=True)


# --- brokers ----------------------------------------------------------------------------------


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError(f"no output from pid {proc.pid} within {timeout} s")
    line = proc.stdout.readline().decode().strip()
    if not line:
        raise RuntimeError(f"pid {proc.pid} exited with {proc.wait(5)} before printing")
    return line


class Endpoint:
    """A broker in its own process; `address` once it serves."""

    def __init__(self, name: str, cmd: list[str], log_path: Path) -> None:
        self.name = name
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log
        )
        try:
            self.address = read_line(self.proc, START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the mock helper exits at EOF
            self.proc.send_signal(signal.SIGTERM)  # kbroker stops cleanly on SIGTERM
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def start_kbroker(name: str, delay_ms: int, tmp: Path) -> Endpoint:
    cmd = [sys.executable, "-m", "kbroker", "--ephemeral", "--host", HOST, "--port", "0"]
    cmd += ["--print-bootstrap", "--log-level", "WARNING"]
    cmd += ["--override", f"num.partitions={PARTITIONS_PER_TOPIC}"]
    cmd += ["--override", f"group.initial.rebalance.delay.ms={delay_ms}"]
    return Endpoint(name, cmd, tmp / f"{name}.log")


def start_mock(tmp: Path) -> Endpoint:
    cmd = [sys.executable, str(BROKER_BENCH), "--serve-mock-cluster"]
    return Endpoint("mock", cmd, tmp / "mock.log")


# --- clients ----------------------------------------------------------------------------------


def config(address: str, **extra: object) -> dict[str, Any]:
    return {
        "bootstrap.servers": address,
        "broker.address.family": "v4",
        "socket.nagle.disable": True,
        "logger": client_log,
        **extra,
    }


def create_topics(address: str, names: list[str]) -> None:
    """Auto-create with Metadata requests (the mock cluster has no CreateTopics)."""
    producer = Producer(config(address))
    for name in names:
        topic = producer.list_topics(name, timeout=30).topics.get(name)
        if topic is None or topic.error is not None:
            raise RuntimeError(f"topic {name} not auto-created: {topic and topic.error}")
        if len(topic.partitions) != PARTITIONS_PER_TOPIC:
            raise RuntimeError(f"topic {name}: {len(topic.partitions)} partitions")


class Formation:
    """Shared view of the consumers' current assignments, updated from their callbacks."""

    def __init__(self, wanted: set[tuple[str, int]]) -> None:
        self.wanted = wanted
        self.lock = threading.Lock()
        self.owned: dict[int, set[tuple[str, int]]] = {}
        self.assigns = 0
        self.done = threading.Event()
        self.done_at = 0.0
        self.errors: list[str] = []

    def assigned(self, index: int, partitions: list[TopicPartition]) -> None:
        with self.lock:
            self.assigns += 1
            self.owned[index] = {(tp.topic or "", tp.partition or 0) for tp in partitions}
            shares = list(self.owned.values())
            union = set().union(*shares) if shares else set()
            complete = len(shares) == CONSUMERS and all(shares) and union == self.wanted
            if complete and sum(len(s) for s in shares) == len(union) and not self.done.is_set():
                self.done_at = time.perf_counter()
                self.done.set()

    def revoked(self, index: int) -> None:
        with self.lock:
            self.owned.pop(index, None)


def form_group(address: str, topics: list[str], group: str) -> tuple[float, int]:
    """Seconds for CONSUMERS consumers to hold a complete, disjoint assignment; assignments."""
    wanted = {(t, p) for t in topics for p in range(PARTITIONS_PER_TOPIC)}
    formation = Formation(wanted)
    stop = threading.Event()
    consumers = [
        Consumer(
            config(
                address,
                **{
                    "group.id": group,
                    "partition.assignment.strategy": "roundrobin",
                    "enable.auto.commit": False,
                    "client.id": f"bench-{i}",
                },
            )
        )
        for i in range(CONSUMERS)
    ]

    def run(index: int, consumer: Any) -> None:
        def on_assign(_c: Any, partitions: list[TopicPartition]) -> None:
            formation.assigned(index, partitions)

        def on_revoke(_c: Any, _partitions: list[TopicPartition]) -> None:
            formation.revoked(index)

        try:
            consumer.subscribe(topics, on_assign=on_assign, on_revoke=on_revoke)
            while not stop.is_set():
                msg = consumer.poll(0.05)
                if msg is not None and msg.error() is not None:
                    formation.errors.append(str(msg.error()))
        except Exception as exc:
            formation.errors.append(f"consumer {index}: {exc!r}")

    threads = [
        threading.Thread(target=run, args=(i, c), name=f"consumer-{i}", daemon=True)
        for i, c in enumerate(consumers)
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    formed = formation.done.wait(FORM_TIMEOUT_S)
    stop.set()
    for thread in threads:
        thread.join(30)
    for consumer in consumers:
        consumer.close()
    if not formed:
        raise RuntimeError(
            f"no complete assignment within {FORM_TIMEOUT_S} s: {len(formation.owned)} "
            f"consumers assigned, errors {formation.errors[:3]}"
        )
    return formation.done_at - start, formation.assigns


def produce(address: str, topic: str, count: int) -> None:
    producer = Producer(config(address, **{"linger.ms": 5, "acks": 1}))
    for i in range(count):
        producer.produce(topic, f"m{i}".encode(), partition=0)
        if i % 1000 == 0:
            producer.poll(0)
    if producer.flush(60):
        raise RuntimeError(f"{topic}: messages not delivered in 60 s")


def commit_each(address: str, topic: str, group: str, count: int) -> float:
    """Seconds for one consumer to read `count` messages, committing each synchronously
    (timed from the first message received to the last commit answered)."""
    consumer = Consumer(
        config(
            address,
            **{"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"},
        )
    )
    consumer.subscribe([topic])
    done, start = 0, 0.0
    deadline = time.perf_counter() + 300
    while done < count and time.perf_counter() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error() is not None:
            raise RuntimeError(f"consume: {msg.error()}")
        if msg.partition() != 0:
            continue
        if done == 0:
            start = time.perf_counter()
        consumer.commit(message=msg, asynchronous=False)
        done += 1
    elapsed = time.perf_counter() - start
    committed = consumer.committed([TopicPartition(topic, 0)], timeout=30)[0].offset
    consumer.close()
    if done < count or committed != count:
        raise RuntimeError(f"{done} of {count} read, committed offset {committed}")
    return elapsed


# --- scenarios --------------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    unit: str
    values: dict[str, list[float]]


def measure(
    endpoints: list[Endpoint], runs: int, figure: Figure, once: Callable[[Endpoint, int], float]
) -> None:
    for run in range(runs):
        for endpoint in endpoints:
            cpu = endpoint.cpu_s()
            value = once(endpoint, run)
            figure.values.setdefault(endpoint.name, []).append(value)
            progress(
                f"  run {run + 1} {endpoint.name}: {value:,.3f} {figure.unit} "
                f"(broker process CPU {endpoint.cpu_s() - cpu:.2f} s)"
            )


def bench_formation(endpoints: list[Endpoint], runs: int) -> Figure:
    topics = [f"group-bench-{n:02d}" for n in range(TOPICS)]
    progress(
        f"group formation: {CONSUMERS} consumers, {TOPICS} topics x {PARTITIONS_PER_TOPIC} "
        f"partitions, roundrobin; {runs} runs per broker, alternating"
    )
    for endpoint in endpoints:
        create_topics(endpoint.address, topics)
    figure = Figure(
        f"{CONSUMERS} consumers on 100 partitions: time to a stable assignment", "s", {}
    )

    def once(endpoint: Endpoint, run: int) -> float:
        seconds, assigns = form_group(endpoint.address, topics, f"formation-{run}")
        progress(f"    {endpoint.name}: {assigns} on_assign callbacks")
        return seconds

    measure(endpoints, runs, figure, once)
    return figure


def bench_commits(endpoints: list[Endpoint], runs: int, count: int) -> Figure:
    progress(f"commits: one consumer commits each of {count:,} messages synchronously")
    for endpoint in endpoints:
        for run in range(runs):
            create_topics(endpoint.address, [f"commit-bench-{run}"])
            produce(endpoint.address, f"commit-bench-{run}", count)
    figure = Figure("one consumer committing after every message", "commits/s", {})

    def once(endpoint: Endpoint, run: int) -> float:
        seconds = commit_each(endpoint.address, f"commit-bench-{run}", f"commits-{run}", count)
        return count / seconds

    measure(endpoints, runs, figure, once)
    return figure


def report(figures: list[Figure]) -> None:
    print()
    for figure in figures:
        medians = {name: statistics.median(v) for name, v in figure.values.items()}
        mock = medians.get("mock")
        print(f"{figure.name} (median, {figure.unit}):")
        for name, value in medians.items():
            ratio = f"  ratio to mock {value / mock:.2f}" if mock and name != "mock" else ""
            print(f"  {name:<22} {value:>12,.3f}{ratio}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per broker (median)")
    parser.add_argument("--commits", type=int, default=5_000, help="messages to commit")
    parser.add_argument("--quick", action="store_true", help="1 run, 1,000 commits")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    runs, commits = (1, 1_000) if args.quick else (args.runs, args.commits)
    tmp = Path(tempfile.mkdtemp(prefix="kbroker-bench-groups-"))
    handler = logging.FileHandler(tmp / "clients.log")
    client_log.addHandler(handler)
    client_log.propagate = False
    progress(
        f"consumer group benchmark; Python {sys.version.split()[0]}, confluent-kafka "
        f"{confluent_kafka.__version__}, librdkafka {confluent_kafka.libversion()[0]}, "
        f"{os.cpu_count()} CPUs; work dir {tmp}"
    )
    endpoints: list[Endpoint] = []
    try:
        endpoints.append(start_kbroker("kbroker (delay 3000)", 3000, tmp))
        endpoints.append(start_kbroker("kbroker (delay 0)", 0, tmp))
        endpoints.append(start_mock(tmp))
        for endpoint in endpoints:
            progress(f"  {endpoint.name} at {endpoint.address}, pid {endpoint.proc.pid}")
        figures = [bench_formation(endpoints, runs), bench_commits(endpoints, runs, commits)]
    finally:
        for endpoint in endpoints:
            endpoint.stop()
        handler.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    progress(f"done in {time.perf_counter() - _T0:.0f} s")
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
