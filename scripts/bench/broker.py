"""kbroker against two baselines, in one run: `.venv/bin/python scripts/bench/broker.py [--quick]`.

Baselines: A is librdkafka's built-in mock cluster (`test.mock.num.brokers=1`), owned by a
helper process (this script with `--serve-mock-cluster`) so that neither broker shares a GIL or a
core with the client; B is the machine's raw limit, `os.sendfile` of a page-cached file to a
loopback socket whose reader discards the bytes. The same client code drives kbroker and the
mock cluster. kbroker runs as `python -m kbroker` in its own process, on 127.0.0.1 only.

Figures: confluent-kafka produce throughput (1,000,000 x 100 B; 20,000 x 10 KiB), a raw Fetch
loop over our protocol layer that never decodes a record (1 GiB backlog), sequential produce
latency (one message in flight), start-up to the first ApiVersions answer, RSS, and 10,000
partitions under `ulimit -n 1024` with a restart. `--quick` runs at 1/10 scale. Progress goes to
stdout as it runs; the last thing printed is a table with PASS/FAIL against the targets. The
exit status is 0 even when a target is missed: this is a measurement, not a test.
MB means 10^6 bytes; MiB and GiB are powers of two.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script, this directory comes first on sys.path, and scripts/bench/protocol.py would
# shadow the `protocol` package.
if sys.path and sys.path[0] == str(Path(__file__).resolve().parent):
    del sys.path[0]

import confluent_kafka
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from protocol._codec import ApiMessage
from protocol.api_keys import ApiKey
from protocol.frames import decode_response, encode_request
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.fetch_response import FetchResponse
from protocol.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from protocol.messages.list_offsets_response import ListOffsetsResponse
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from protocol.messages.produce_response import ProduceResponse
from protocol.messages.request_header import RequestHeader
from protocol.records import build_batch, iter_batch_headers

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
CLIENT_ID = "kbroker-bench"
MIB = 1 << 20
MB = 1e6
KIB = 1024
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 120.0
NOFILE = 1024
RUNS = 3  # throughput figures: runs per broker, alternating; the median is reported
_SIZE = struct.Struct(">i")
_CORRELATION_AT = 8  # size(4) api_key(2) api_version(2), then the correlation id
_T0 = time.perf_counter()
client_log = logging.getLogger("kbroker-bench.librdkafka")  # librdkafka's logs, to a file


@dataclass(frozen=True)
class Scale:
    small_count: int = 1_000_000  # 100 B records
    large_count: int = 20_000  # 10 KiB records
    backlog_bytes: int = 1 << 30
    latency_count: int = 5_000
    startup_runs: int = 10
    topics: int = 100
    partitions_per_topic: int = 100
    fetch_max_bytes: int = 16 * MIB


FULL = Scale()
QUICK = Scale(100_000, 2_000, 100 * MIB, 500, 3, 10, 100)


# --- output -----------------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.1f} s] {message}", flush=True)


@dataclass
class Row:
    """One line of the final table; `passed` is None for figures without a target."""

    figure: str
    unit: str
    kbroker: float | None
    baseline: float | None = None
    baseline_name: str = ""
    target: str = "info"
    passed: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.kbroker is None or not self.baseline:
            return None
        return self.kbroker / self.baseline


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        shown = fmt(row.kbroker, row.unit)
        if row.baseline is not None:
            shown += f"  vs {row.baseline_name} {fmt(row.baseline, row.unit)}"
            if row.ratio is not None:
                shown += f"  (ratio {row.ratio:.2f})"
        progress(f"  => {row.figure}: {shown}")
        return row


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("msg/s", "MB/s"):
        return f"{value:,.0f} {unit}"
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:.3f} {unit}"


def print_table(report: Report) -> None:
    header = ("figure", "kbroker", "baseline", "ratio", "target", "result")
    lines = [header]
    for row in report.rows:
        baseline = f"{fmt(row.baseline, row.unit)} ({row.baseline_name})" if row.baseline else "-"
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        result = "info" if row.passed is None else ("PASS" if row.passed else "FAIL")
        if row.kbroker is None and row.target != "info":
            result = "FAIL"
        if row.note:
            result += f" ({row.note})"
        lines.append((row.figure, fmt(row.kbroker, row.unit), baseline, ratio, row.target, result))
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    print()
    for n, line in enumerate(lines):
        cells = [line[i].ljust(widths[i]) for i in range(5)]
        print(" | ".join([*cells, line[5]]))
        if n == 0:
            print("-+-".join("-" * w for w in [*widths, 6]))
    failed = [r.figure for r in report.rows if r.passed is False]
    passed = sum(r.passed is True for r in report.rows)
    print(f"\n{passed} of {passed + len(failed)} targets met", end="")
    print(f"; missed: {'; '.join(failed)}" if failed else "")
    for note in report.notes:
        print(f"note: {note}")


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The first stdout line of `proc`, waiting at most `timeout` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError(f"no output from pid {proc.pid} within {timeout} s")
    line = proc.stdout.readline().decode().strip()
    if not line:
        raise RuntimeError(f"pid {proc.pid} exited with {proc.wait(5)} before printing")
    return line


class BrokerProcess:
    """`python -m kbroker` on 127.0.0.1:`port`, its logs appended to `log_path`."""

    def __init__(self, args: list[str], log_path: Path, nofile: int | None = None) -> None:
        self.port = free_port()
        self.address = f"{HOST}:{self.port}"
        cmd = [sys.executable, "-m", "kbroker", "--host", HOST, "--port", str(self.port), *args]
        if nofile is not None:
            # `ulimit -n` then exec: the limit is set before Python starts and the pid stays the
            # broker's; preexec_fn is unsafe here, librdkafka threads run in this process.
            cmd = ["/bin/sh", "-c", f'ulimit -n {nofile} && exec "$0" "$@"', *cmd]
        self.log = log_path.open("ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log
        )
        try:
            self.startup_s = wait_for_api_versions(self.address, self.proc, self.started)
        except BaseException:
            self.proc.kill()
            self.proc.wait(5)
            self.log.close()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_mb(self) -> float:
        return proc_status_kb(self.pid, "VmRSS") * 1024 / MB

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def nofile_limit(self) -> str:
        for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return " ".join(line.split()[3:5])
        return "?"

    def stop(self) -> float:
        """SIGTERM, wait; the seconds it took to exit (killed after STOP_TIMEOUT_S)."""
        start = time.perf_counter()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                progress(f"kbroker pid {self.pid} ignored SIGTERM for {STOP_TIMEOUT_S} s: killed")
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return time.perf_counter() - start


def proc_status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def wait_for_api_versions(
    address: str, proc: subprocess.Popen[bytes], started: float, timeout: float = START_TIMEOUT_S
) -> float:
    """Connect and send ApiVersions v3 until answered; seconds from `started` to the answer."""
    for _ in range(int(timeout / 0.001)):
        if time.perf_counter() - started > timeout:
            break
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with status {proc.returncode} before serving")
        try:
            with Wire(address, timeout=5.0) as wire:
                wire.call(ApiKey.API_VERSIONS, 3, ApiVersionsRequest(CLIENT_ID, "1"))
            return time.perf_counter() - started
        except (ConnectionRefusedError, ConnectionResetError):
            time.sleep(0.001)
    raise TimeoutError(f"no ApiVersions answer from {address} within {timeout} s")


class MockCluster:
    """librdkafka's mock cluster, owned by a helper process that keeps its client alive."""

    def __init__(self, log_path: Path) -> None:
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-mock-cluster"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        try:
            self.address = read_line(self.proc, START_TIMEOUT_S)
        except BaseException:
            self.proc.kill()
            self.proc.wait(5)
            self.log.close()
            raise

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # the helper exits at EOF
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


_MOCK_ADDRESS = re.compile(r"(?:bootstrap\.servers=|replaced with )(\S+:\d+)")
MOCK_LIFETIME_S = 4 * 3600


def serve_mock_cluster() -> int:
    """Helper-process mode: start a mock cluster, print its address, hold it until stdin EOF."""
    found: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            match = _MOCK_ADDRESS.search(record.getMessage())
            if match:
                found.append(match.group(1))

    logger = logging.getLogger("mock-cluster")
    logger.addHandler(Catch())
    logger.setLevel(logging.INFO)
    logger.propagate = False
    owner = Producer({"test.mock.num.brokers": 1, "logger": logger})
    for _ in range(100):  # 10 s
        owner.poll(0.1)
        if found:
            break
    if not found:
        print("no mock cluster address in librdkafka's log", file=sys.stderr)
        return 1
    print(found[0], flush=True)
    for _ in range(MOCK_LIFETIME_S):
        owner.poll(0)
        ready, _, _ = select.select([sys.stdin], [], [], 1.0)
        if ready and not os.read(sys.stdin.fileno(), 4096):
            break
    del owner
    return 0


# --- a blocking client over our protocol layer -------------------------------------------------


class Wire:
    """One connection, one request in flight; response frames land in one reused buffer."""

    def __init__(self, address: str, timeout: float = 60.0) -> None:
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray(MIB)
        self.size = bytearray(4)
        self.correlation_id = 0

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send_frame(self, frame: bytes | bytearray) -> int:
        """Send an encoded request frame, stamping a fresh correlation id; returns the id."""
        self.correlation_id += 1
        if isinstance(frame, bytearray):
            _SIZE.pack_into(frame, _CORRELATION_AT, self.correlation_id)
        self.sock.sendall(frame)
        return self.correlation_id

    def recv_frame(self) -> memoryview:
        """The next response frame (without its size), valid until the next call."""
        self._recv_exact(memoryview(self.size))
        (size,) = _SIZE.unpack(self.size)
        if size > len(self.buf):
            self.buf = bytearray(size)  # a new buffer: views of the old one stay valid
        view = memoryview(self.buf)[:size]
        self._recv_exact(view)
        return view

    def _recv_exact(self, view: memoryview) -> None:
        got = 0
        # Bounded: every pass reads at least one byte or raises (EOF, socket timeout).
        while got < len(view):
            n = self.sock.recv_into(view[got:])
            if not n:
                raise ConnectionError("connection closed by the broker")
            got += n

    def call(self, api_key: ApiKey, version: int, body: ApiMessage) -> ApiMessage:
        header = RequestHeader(api_key, version, self.correlation_id + 1, CLIENT_ID)
        correlation_id = self.send_frame(encode_request(header, body))
        response_header, message = decode_response(self.recv_frame(), api_key, version)
        if response_header.correlation_id != correlation_id:
            raise RuntimeError(
                f"correlation id {response_header.correlation_id} != {correlation_id}"
            )
        return message


def high_watermark(address: str, topic: str, partition: int = 0, timestamp: int = -1) -> int:
    """ListOffsets v6: the high watermark (timestamp -1) or the log start offset (-2)."""
    request = ListOffsetsRequest(
        replica_id=-1,
        topics=[ListOffsetsTopic(topic, [ListOffsetsPartition(partition, timestamp=timestamp)])],
    )
    with Wire(address) as wire:
        response = wire.call(ApiKey.LIST_OFFSETS, 6, request)
    assert isinstance(response, ListOffsetsResponse)
    result = response.topics[0].partitions[0]
    if result.error_code:
        raise RuntimeError(f"ListOffsets {topic}-{partition}: error {result.error_code}")
    return result.offset


# --- confluent-kafka --------------------------------------------------------------------------


def client_config(address: str, **extra: object) -> dict[str, Any]:
    return {
        "bootstrap.servers": address,
        "broker.address.family": "v4",
        "socket.nagle.disable": True,
        "logger": client_log,
        **extra,
    }


def ensure_topic(address: str, name: str) -> None:
    """Auto-create `name` with a Metadata request (kbroker: num.partitions=1; mock: 4).

    Not CreateTopics: librdkafka 2.16's mock cluster names controller 0 in Metadata while its
    only broker is 1, so an AdminClient waits for a controller that never comes.
    """
    producer = Producer(client_config(address))
    topic = producer.list_topics(name, timeout=30).topics.get(name)
    if topic is None or topic.error is not None or 0 not in topic.partitions:
        raise RuntimeError(f"topic {name} not auto-created: {topic and topic.error}")


def create_topics(address: str, names: list[str], partitions: int = 1) -> None:
    admin = AdminClient(client_config(address))
    futures = admin.create_topics(
        [NewTopic(name, partitions, 1) for name in names], operation_timeout=60, request_timeout=120
    )
    for name, future in futures.items():
        try:
            future.result(180)
        except Exception as exc:
            raise RuntimeError(f"creating topic {name}: {exc}") from exc


class DeliveryErrors:
    """Delivery-report callback that counts failures (reports come only for errors)."""

    def __init__(self) -> None:
        self.count = 0
        self.first: str = ""

    def __call__(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.count += 1
            self.first = self.first or str(err)


def produce_throughput(
    address: str, topic: str, count: int, size: int, **overrides: object
) -> float:
    """Seconds to produce and flush `count` records of `size` bytes (after one warm-up)."""
    errors = DeliveryErrors()
    config: dict[str, object] = {
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "acks": 1,
        "compression.type": "none",
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 2 * 1024 * 1024,
        "delivery.report.only.error": True,
        "on_delivery": errors,
    }
    producer = Producer(client_config(address, **{**config, **overrides}))
    payload = os.urandom(size)
    producer.produce(topic, payload, partition=0)
    if producer.flush(30):
        raise RuntimeError("warm-up message not delivered in 30 s")
    produce = producer.produce
    start = time.perf_counter()
    for _ in range(count):
        try:
            produce(topic, payload, partition=0)
        except BufferError:
            wait_for_room(producer, lambda: produce(topic, payload, partition=0))
    left = producer.flush(300)
    elapsed = time.perf_counter() - start
    if left or errors.count:
        raise RuntimeError(f"{left} undelivered, {errors.count} failed ({errors.first})")
    end = high_watermark(address, topic)
    if end != count + 1:
        raise RuntimeError(f"high watermark {end}, expected {count + 1}")
    return elapsed


def wait_for_room(producer: Any, produce: Callable[[], None]) -> None:
    for _ in range(3000):  # 30 s
        producer.poll(0.01)
        try:
            produce()
            return
        except BufferError:
            continue
    raise RuntimeError("producer queue stayed full for 30 s")


def produce_latency(address: str, topic: str, count: int) -> list[float]:
    """Per-message seconds from produce() to its delivery report, one message in flight."""
    producer = Producer(
        client_config(address, **{"linger.ms": 0, "acks": 1, "compression.type": "none"})
    )
    payload = os.urandom(100)
    state: dict[str, Any] = {"done": False, "error": None}

    def delivered(err: Any, _msg: Any) -> None:
        state["done"], state["error"] = True, err

    samples: list[float] = []
    warmup = max(100, count // 50)
    for i in range(warmup + count):
        state["done"] = False
        start = time.perf_counter()
        producer.produce(topic, payload, partition=0, on_delivery=delivered)
        for _ in range(1000):  # 10 s
            producer.poll(0.01)
            if state["done"]:
                break
        elapsed = time.perf_counter() - start
        if not state["done"] or state["error"] is not None:
            raise RuntimeError(f"message {i}: not delivered ({state['error']})")
        if i >= warmup:
            samples.append(elapsed)
    producer.flush(10)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# --- raw backlog produce and fetch ------------------------------------------------------------

BACKLOG_RECORD = 10_000
BACKLOG_RECORDS_PER_BATCH = 96  # a ~960 KB batch, under message.max.bytes (1,000,000 / 1,048,588)


def produce_backlog(address: str, topic: str, total_bytes: int) -> tuple[int, int, float]:
    """Append ~`total_bytes` as ~1 MB batches with Produce v9; (bytes, end offset, seconds)."""
    now = int(time.time() * 1000)
    value = os.urandom(BACKLOG_RECORD)
    batch = build_batch([(None, value, [], now)] * BACKLOG_RECORDS_PER_BATCH)
    batches = math.ceil(total_bytes / len(batch))
    body = ProduceRequest(
        transactional_id=None,
        acks=1,
        timeout_ms=30_000,
        topic_data=[TopicProduceData(topic, partition_data=[PartitionProduceData(0, batch)])],
    )
    frame = bytearray(encode_request(RequestHeader(ApiKey.PRODUCE, 9, 0, CLIENT_ID), body))
    start = time.perf_counter()
    with Wire(address) as wire:
        for n in range(batches):
            wire.send_frame(frame)
            _, response = decode_response(wire.recv_frame(), ApiKey.PRODUCE, 9)
            assert isinstance(response, ProduceResponse)
            error = response.responses[0].partition_responses[0].error_code
            if error:
                raise RuntimeError(f"Produce of batch {n}: error {error}")
    elapsed = time.perf_counter() - start
    return batches * len(batch), batches * BACKLOG_RECORDS_PER_BATCH, elapsed


@dataclass
class FetchRun:
    record_bytes: int
    seconds: float
    fetches: int

    @property
    def mb_s(self) -> float:
        return self.record_bytes / MB / self.seconds


def fetch_all(
    address: str, topic: str, window: tuple[int, int], target: int, max_bytes: int
) -> FetchRun:
    """Fetch v12 over the offsets `window` until `target` record bytes are read.

    A window shorter than `target` is read again from its start (the mock cluster keeps only
    the last few MB of a partition). Only batch headers are read, to find the next offset.
    """
    first, end = window
    offset, total = first, 0
    start = time.perf_counter()
    with Wire(address) as wire:
        for fetches in range(1, target // 1000 + 10):  # ~1 MB batches: far fewer requests
            size, offset = fetch_once(wire, topic, offset, max_bytes)
            total += size
            if offset >= end:
                if total >= target:
                    return FetchRun(total, time.perf_counter() - start, fetches)
                offset = first
            if time.perf_counter() - start > 300:
                raise TimeoutError(f"fetch at offset {offset} of {end} after 300 s")
    raise RuntimeError(f"fetch did not reach {end} in {fetches} requests")


def fetch_once(wire: Wire, topic: str, offset: int, max_bytes: int) -> tuple[int, int]:
    """One Fetch of partition 0 at `offset`: (record bytes received, next fetch offset)."""
    request = FetchRequest(
        replica_id=-1,
        max_wait_ms=500,
        min_bytes=1,
        max_bytes=max_bytes,
        topics=[FetchTopic(topic, partitions=[FetchPartition(0, -1, offset, -1, -1, max_bytes)])],
    )
    response = wire.call(ApiKey.FETCH, 12, request)
    assert isinstance(response, FetchResponse)
    part = response.responses[0].partitions[0]
    if response.error_code or part.error_code:
        raise RuntimeError(f"Fetch at {offset}: error {response.error_code or part.error_code}")
    records = part.records if isinstance(part.records, memoryview) else b""
    last = None
    for _, header in iter_batch_headers(records):
        last = header
    if last is None:
        raise RuntimeError(f"Fetch at {offset} returned no complete batch")
    return len(records), last.next_offset


LOOPBACK_READER = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
view, total = memoryview(bytearray(16 << 20)), 0  # as the fetch client reads
for _ in range(1 << 30):
    n = s.recv_into(view)
    if not n:
        break
    total += n
s.sendall(b"!")
print(total)
"""


def write_file(path: Path, size: int) -> None:
    chunk = os.urandom(MIB)
    with path.open("wb") as f:
        for _ in range(size // MIB):
            f.write(chunk)
        f.write(chunk[: size % MIB])


def loopback_rate(size: int, send: Callable[[socket.socket], int]) -> float:
    """MB/s of `send(conn)` pushing `size` bytes to a process that reads and discards them."""
    with socket.socket() as server:
        server.bind((HOST, 0))
        server.listen(1)
        server.settimeout(30)
        port = server.getsockname()[1]
        reader = subprocess.Popen(
            [sys.executable, "-c", LOOPBACK_READER, str(port)], stdout=subprocess.PIPE
        )
        conn, _ = server.accept()
        with conn:
            conn.setblocking(True)  # os.sendfile on a socket with a timeout gets EAGAIN
            start = time.perf_counter()
            sent = send(conn)
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(60)
            if conn.recv(1) != b"!":
                raise RuntimeError("loopback reader did not acknowledge")
            elapsed = time.perf_counter() - start
    received = int(read_line(reader, 10))
    reader.wait(10)
    if received != sent or sent != size:
        raise RuntimeError(f"sent {sent} of {size} bytes, reader got {received}")
    return size / MB / elapsed


def send_file(conn: socket.socket, path: Path) -> int:
    """os.sendfile of the whole (page-cached) file: baseline B."""
    size = path.stat().st_size
    sent = 0
    with path.open("rb") as f:
        for _ in range(size // 4096 + 2):  # bounded; each call sends at least one byte
            if sent >= size:
                break
            sent += os.sendfile(conn.fileno(), f.fileno(), sent, size - sent)
    return sent


def send_memory(conn: socket.socket, size: int) -> int:
    """sendall of one 16 MiB buffer, over and over: what a broker that keeps data in memory does."""
    chunk = memoryview(os.urandom(16 * MIB))
    sent = 0
    for _ in range(size // len(chunk) + 1):
        part = chunk[: min(len(chunk), size - sent)]
        conn.sendall(part)
        sent += len(part)
    return sent


def append_rate(path: Path, size: int, chunk_size: int = 1_000_000) -> float:
    """MB/s of `chunk_size` pwrite appends to a new file (page cache only, no fsync); the file
    stays."""
    chunk = os.urandom(chunk_size)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        start = time.perf_counter()
        for n in range(math.ceil(size / len(chunk))):
            os.pwrite(fd, chunk, n * len(chunk))
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
    return math.ceil(size / len(chunk)) * len(chunk) / MB / elapsed


# --- sections ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A broker under test: its name in the output, its address, the pid that serves it."""

    name: str
    address: str
    pid: int


@contextmanager
def section(report: Report, title: str) -> Iterator[None]:
    progress(title)
    try:
        yield
    except Exception as exc:
        progress(f"  !! {title}: {type(exc).__name__}: {exc}")
        report.notes.append(f"{title}: {type(exc).__name__}: {exc}")
        report.rows.append(Row(title, "", None, target="completes", passed=False, note="error"))


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def alternate(
    endpoints: list[Endpoint], runs: int, unit: str, once: Callable[[Endpoint, int], float]
) -> dict[str, float]:
    """`once(endpoint, run)` on each endpoint in turn, `runs` times; the median per endpoint.

    Each run's progress line shows the serving process's CPU time: a broker near one CPU
    second per wall second is the bottleneck; much less, and it is waiting for something.
    """
    values: dict[str, list[float]] = {e.name: [] for e in endpoints}
    for run in range(runs):
        for endpoint in endpoints:
            user, system = cpu_seconds(endpoint.pid)
            start = time.perf_counter()
            value = once(endpoint, run)
            wall = time.perf_counter() - start
            user2, system2 = cpu_seconds(endpoint.pid)
            progress(
                f"  {endpoint.name}, run {run + 1}: {fmt(value, unit)}; its CPU "
                f"{user2 - user:.2f} s user + {system2 - system:.2f} s sys in {wall:.2f} s"
            )
            values[endpoint.name].append(value)
    return {name: statistics.median(v) for name, v in values.items()}


def compare(figure: str, unit: str, values: dict[str, float], minimum: float) -> Row:
    row = Row(figure, unit, values["kbroker"], values["mock"], "mock")
    row.target, row.passed = f">= {minimum} x mock", (row.ratio or 0) >= minimum
    return row


def bench_produce_small(report: Report, scale: Scale, endpoints: list[Endpoint], runs: int) -> None:
    n = scale.small_count

    def small(endpoint: Endpoint, run: int) -> float:
        ensure_topic(endpoint.address, f"small-{run}")
        rate = n / produce_throughput(endpoint.address, f"small-{run}", n, 100)
        if endpoint.name == "kbroker" and run == 0:
            rss = proc_status_kb(endpoint.pid, "VmRSS") * 1024 / MB
            row = Row(f"kbroker RSS after {n:,} x 100 B produce", "MB", rss, target="< 80 MB")
            row.passed = rss < 80
            report.add(row)
        return rate

    title = f"produce {n:,} x 100 B (confluent-kafka, linger.ms=5, acks=1), median of {runs}"
    with section(report, title):
        values = alternate(endpoints, runs, "msg/s", small)
        report.add(compare(f"produce {n:,} x 100 B", "msg/s", values, 0.8))


def bench_idempotence(report: Report, scale: Scale, kbroker: Endpoint, runs: int) -> None:
    """The 100 B produce with `enable.idempotence` off and on, both on kbroker, alternating.

    Idempotence needs acks=all, so both series use it (on one node acks=all completes at the
    append, like acks=1). The cost measured is the broker's sequence check and producer state
    per batch, plus librdkafka's own bookkeeping (one in-flight window of 5 per partition).
    """
    n = scale.small_count
    off = Endpoint("idempotence off", kbroker.address, kbroker.pid)
    on = Endpoint("idempotence on", kbroker.address, kbroker.pid)

    def produce(endpoint: Endpoint, run: int) -> float:
        topic = f"idem-{'on' if endpoint is on else 'off'}-{run}"
        ensure_topic(endpoint.address, topic)
        seconds = produce_throughput(
            endpoint.address, topic, n, 100, acks="all", **{"enable.idempotence": endpoint is on}
        )
        return n / seconds

    title = f"produce {n:,} x 100 B to kbroker, enable.idempotence off and on (acks=all)"
    with section(report, title):
        values = alternate([off, on], runs, "msg/s", produce)
        row = Row(
            f"produce {n:,} x 100 B, idempotence on", "msg/s",
            values[on.name], values[off.name], "idempotence off",
        )  # fmt: skip
        row.target, row.passed = ">= 0.9 x off", (row.ratio or 0) >= 0.9
        report.add(row)


LARGE_RUNS = 5  # each run takes well under a second: more runs for a steadier median
PWRITE_CHUNK = 97 * 10 * KIB  # what kbroker writes per append here: one ~1 MB batch


def bench_produce_large(report: Report, scale: Scale, endpoints: list[Endpoint], tmp: Path) -> None:
    """10 KiB records, against the mock and against this machine's limit for the same bytes.

    The third series is a bare `os.pwrite` loop that appends the same number of bytes, in
    kbroker's append size, to a new file in the same filesystem, kept until the section ends
    (as a log keeps its segments). Measured between the broker runs, it sees the same state of
    memory: on a VM whose freed memory goes back to the host, appending to new page-cache pages
    runs several times slower than rewriting recycled ones, and that state drifts over a run.
    """
    n = scale.large_count
    raw = Endpoint("pwrite", "", os.getpid())
    files: list[Path] = []

    def large(endpoint: Endpoint, run: int) -> float:
        if endpoint is raw:
            files.append(tmp / f"pwrite-{run}.bin")
            return append_rate(files[-1], n * 10 * KIB, PWRITE_CHUNK)
        ensure_topic(endpoint.address, f"large-{run}")
        seconds = produce_throughput(endpoint.address, f"large-{run}", n, 10 * KIB)
        return n * 10 * KIB / MB / seconds

    title = (
        f"produce {n:,} x 10 KiB (confluent-kafka, linger.ms=5, acks=1), and a pwrite loop of "
        f"the same bytes, median of {LARGE_RUNS}"
    )
    with section(report, title):
        try:
            values = alternate([*endpoints, raw], LARGE_RUNS, "MB/s", large)
        finally:
            for path in files:
                path.unlink(missing_ok=True)
        report.add(compare(f"produce {n:,} x 10 KiB", "MB/s", values, 0.5))
        kb, limit = values["kbroker"], values["pwrite"]
        figure = f"produce {n:,} x 10 KiB, against a pwrite loop of the same bytes"
        report.add(Row(figure, "MB/s", kb, limit, "pwrite loop"))
        figure = f"MOCK cluster: produce {n:,} x 10 KiB (in kbroker column), against pwrite loop"
        report.add(Row(figure, "MB/s", values["mock"], limit, "pwrite loop"))


def bench_latency(report: Report, scale: Scale, endpoints: list[Endpoint]) -> None:
    n = scale.latency_count
    with section(report, f"sequential produce latency, {n:,} x 100 B, one in flight, acks=1"):
        results: dict[str, list[float]] = {}
        for endpoint in endpoints:
            ensure_topic(endpoint.address, "latency")
            results[endpoint.name] = [
                s * 1000 for s in produce_latency(endpoint.address, "latency", n)
            ]
            p = [percentile(results[endpoint.name], q) for q in (0.5, 0.99, 0.999)]
            progress(f"  {endpoint.name}: p50 {p[0]:.3f} ms, p99 {p[1]:.3f} ms, p999 {p[2]:.3f} ms")
        for label, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999)):
            kb, base = percentile(results["kbroker"], q), percentile(results["mock"], q)
            row = Row(f"produce latency {label}", "ms", kb, base, "mock")
            if label == "p99":
                row.target, row.passed = "< 1 ms", kb < 1.0
            report.add(row)


def bench_fetch(
    report: Report, scale: Scale, endpoints: list[Endpoint], runs: int, tmp: Path
) -> None:
    size, max_bytes = scale.backlog_bytes, scale.fetch_max_bytes
    label = f"{size / MIB:,.0f} MiB"
    title = f"raw fetch of a {label} backlog (Fetch v12, {max_bytes // MIB} MiB per request)"
    with section(report, f"{title}, median of {runs}"):
        windows = {e.name: write_backlog(report, e, size) for e in endpoints}
        progress(f"  writing a {label} file for the sendfile baseline; sync")
        path = tmp / "sendfile.bin"
        write_file(path, size)
        os.sync()
        me = Endpoint("sendfile", "", os.getpid())
        sender = Endpoint("send()", "", os.getpid())

        def fetch(endpoint: Endpoint, run: int) -> float:
            if endpoint is me:
                return loopback_rate(size, lambda conn: send_file(conn, path))
            if endpoint is sender:
                return loopback_rate(size, lambda conn: send_memory(conn, size))
            window = windows[endpoint.name]
            return fetch_all(endpoint.address, "backlog", window, size, max_bytes).mb_s

        values = alternate([me, *endpoints, sender], runs, "MB/s", fetch)
        path.unlink()
        row = Row(f"raw fetch {label}", "MB/s", values["kbroker"], values["sendfile"], "sendfile")
        row.target, row.passed = ">= 0.6 x sendfile", (row.ratio or 0) >= 0.6
        report.add(row)
        for name, figure in (
            ("mock", f"MOCK cluster: raw fetch {label} (in kbroker column)"),
            ("send()", f"loopback send() of {label} from memory (in kbroker column)"),
        ):
            report.add(Row(figure, "MB/s", values[name], values["sendfile"], "sendfile"))


def write_backlog(report: Report, endpoint: Endpoint, size: int) -> tuple[int, int]:
    """Produce the backlog; the offsets the broker still holds afterwards."""
    name, address = endpoint.name, endpoint.address
    ensure_topic(address, "backlog")
    written, end, seconds = produce_backlog(address, "backlog", size)
    first = high_watermark(address, "backlog", timestamp=-2)
    progress(f"  {name}: {written / MB:,.0f} MB backlog written (Produce v9) in {seconds:.2f} s")
    if first:
        kept = (end - first) * BACKLOG_RECORD / MB
        progress(f"  {name} keeps only offsets {first}-{end} (~{kept:.0f} MB): fetch re-reads them")
        report.notes.append(
            f"the {name} broker kept only the last ~{kept:.0f} MB of the partition, in memory "
            "(librdkafka's mock cluster holds no more): its produce figures write nothing to a "
            "file, and its fetch figure re-reads that window, small enough for the 32 MiB L3 cache"
        )
    if name == "kbroker":
        label = f"{size / MIB:,.0f} MiB"
        report.add(Row(f"raw produce, {label} in ~1 MB batches", "MB/s", written / MB / seconds))
    return first, end


def bench_startup(report: Report, scale: Scale, tmp: Path) -> None:
    with section(report, f"start-up to first ApiVersions answer, median of {scale.startup_runs}"):
        times = []
        for _ in range(scale.startup_runs):
            broker = BrokerProcess(["--ephemeral"], tmp / "startup.log")
            times.append(broker.startup_s)
            broker.stop()
        floor = []
        for _ in range(scale.startup_runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True, timeout=30)
            floor.append(time.perf_counter() - start)
        progress(f"  kbroker runs: {', '.join(f'{t:.3f}' for t in times)} s")
        progress(f"  python -c pass runs: {', '.join(f'{t:.3f}' for t in floor)} s")
        kb, base = statistics.median(times), statistics.median(floor)
        row = Row("start-up to first ApiVersions", "s", kb, base, "python -c pass")
        row.target, row.passed = "< 0.5 s", kb < 0.5
        report.add(row)


def bench_page_cache(report: Report, scale: Scale, runs: int, tmp: Path) -> None:
    """How fast this machine appends to a growing log: the ceiling of any broker's produce.

    Each run writes a new file and keeps it, as a log keeps its segments, so every write lands
    on pages the page cache has to allocate (on a VM whose freed memory goes back to the host,
    those are slow to touch the first time; a rewrite of recycled pages is many times faster).
    """
    size = scale.backlog_bytes
    with section(
        report, f"page-cache append: {runs} new files of {size / MIB:,.0f} MiB, 1 MB pwrites"
    ):
        rates = []
        try:
            for run in range(runs):
                rates.append(append_rate(tmp / f"append-{run}.bin", size))
                progress(f"  run {run + 1}: {rates[-1]:,.0f} MB/s")
        finally:
            for run in range(runs):
                (tmp / f"append-{run}.bin").unlink(missing_ok=True)
        ceiling = statistics.median(rates)
        report.add(Row("page-cache append to new files (in kbroker column)", "MB/s", ceiling))
        produced = [
            r
            for r in report.rows
            if r.unit == "MB/s"
            and r.figure.startswith(("produce", "raw produce"))
            and "against" not in r.figure
        ]
        for row in produced:
            figure = f"{row.figure}, against the page-cache append"
            report.add(Row(figure, "MB/s", row.kbroker, ceiling, "page-cache append"))


def produce_each(address: str, names: list[str], per_topic: int) -> float:
    """Seconds to produce one record to every partition of `names` and flush."""
    errors = DeliveryErrors()
    config = {"linger.ms": 20, "acks": 1, "delivery.report.only.error": True, "on_delivery": errors}
    producer = Producer(client_config(address, **config))
    start = time.perf_counter()
    for name in names:
        for p in range(per_topic):
            producer.produce(name, f"{name}-{p}".encode(), partition=p)
        producer.poll(0)
    left = producer.flush(300)
    elapsed = time.perf_counter() - start
    if left or errors.count:
        raise RuntimeError(f"{left} undelivered, {errors.count} failed ({errors.first})")
    return elapsed


def read_each(
    address: str, names: list[str], per_topic: int, timeout: float = 300
) -> tuple[int, float]:
    """Assign every partition at offset 0 and read until each gave its record: (found, s)."""
    consumer = Consumer(
        client_config(
            address,
            **{"group.id": "kbroker-bench", "enable.auto.commit": False, "fetch.wait.max.ms": 100},
        )
    )
    wanted = {(name, p): f"{name}-{p}".encode() for name in names for p in range(per_topic)}
    start = time.perf_counter()
    consumer.assign([TopicPartition(name, p, 0) for name, p in wanted])
    found: set[tuple[str, int]] = set()
    shown = start
    for _ in range(int(timeout) + 1):  # each consume() waits at most 1 s
        for msg in consumer.consume(num_messages=len(wanted) - len(found), timeout=1.0):
            key = (msg.topic() or "", msg.partition() or 0)
            if msg.error() is None and wanted.get(key) == msg.value():
                found.add(key)
        now = time.perf_counter()
        if len(found) == len(wanted) or now - start > timeout:
            break
        if now - shown > 10:
            progress(f"    read {len(found):,} of {len(wanted):,} partitions so far")
            shown = now
    elapsed = time.perf_counter() - start
    consumer.close()
    return len(found), elapsed


def bench_partitions(report: Report, scale: Scale, tmp: Path) -> None:
    names = [f"p{t:03d}" for t in range(scale.topics)]
    per, total = scale.partitions_per_topic, scale.topics * scale.partitions_per_topic
    data = tmp / "partitions-data"
    args = ["--override", f"log.dirs={data}"]
    with section(
        report, f"{total:,} partitions ({len(names)} topics x {per}) under ulimit -n {NOFILE}"
    ):
        broker = BrokerProcess(args, tmp / "partitions.log", nofile=NOFILE)
        try:
            progress(
                f"  kbroker pid {broker.pid} up in {broker.startup_s:.3f} s, "
                f"max open files {broker.nofile_limit()}"
            )
            partitions_first_life(report, broker, names, per)
        finally:
            progress(f"  stopping kbroker (SIGTERM), up to {STOP_TIMEOUT_S:.0f} s")
            report.add(
                Row(f"{total:,} partitions: clean shutdown (SIGTERM to exit)", "s", broker.stop())
            )
        broker = BrokerProcess(args, tmp / "partitions.log", nofile=NOFILE)
        try:
            partitions_second_life(report, broker, names, per)
        finally:
            progress(f"  stopping kbroker (SIGTERM), up to {STOP_TIMEOUT_S:.0f} s")
            figure = f"{total:,} partitions: clean shutdown after restart"
            report.add(Row(figure, "s", broker.stop()))


def partitions_first_life(
    report: Report, broker: BrokerProcess, names: list[str], per: int
) -> None:
    total = len(names) * per
    start = time.perf_counter()
    chunk = 10
    for i in range(0, len(names), chunk):
        create_topics(broker.address, names[i : i + chunk], per)
        progress(
            f"    created {min(i + chunk, len(names)) * per:,} partitions, "
            f"{time.perf_counter() - start:.1f} s"
        )
    report.add(Row(f"{total:,} partitions: CreateTopics", "s", time.perf_counter() - start))
    progress(f"    RSS {broker.rss_mb():.1f} MB, {broker.open_fds()} open fds")
    seconds = produce_each(broker.address, names, per)
    report.add(Row(f"{total:,} partitions: produce 1 record each", "s", seconds))
    progress(f"    RSS {broker.rss_mb():.1f} MB, {broker.open_fds()} open fds")
    found, seconds = read_each(broker.address, names, per)
    report.add(Row(f"{total:,} partitions: read each back (assign)", "s", seconds))
    row = Row(f"{total:,} partitions: records read back", "count", found, total, "expected")
    row.target, row.passed = f"all {total:,}", found == total
    report.add(row)
    progress(f"    RSS {broker.rss_mb():.1f} MB, {broker.open_fds()} open fds")


def partitions_second_life(
    report: Report, broker: BrokerProcess, names: list[str], per: int
) -> None:
    total = len(names) * per
    empty = next((r.kbroker for r in report.rows if r.figure.startswith("start-up")), None)
    report.add(
        Row(
            f"{total:,} partitions: restart to first ApiVersions",
            "s",
            broker.startup_s,
            empty,
            "empty start-up",
        )
    )
    report.add(Row(f"{total:,} partitions: RSS after restart", "MB", broker.rss_mb()))
    progress(f"    {broker.open_fds()} open fds after restart")
    found, seconds = read_each(broker.address, names, per)
    report.add(Row(f"{total:,} partitions: read each back after restart", "s", seconds))
    row = Row(
        f"{total:,} partitions: records read back after restart", "count", found, total, "expected"
    )
    row.target, row.passed = f"all {total:,}", found == total
    report.add(row)
    progress(f"    RSS {broker.rss_mb():.1f} MB, {broker.open_fds()} open fds")


# --- main -------------------------------------------------------------------------------------


SECTIONS = (
    "produce-small",
    "produce-large",
    "latency",
    "fetch",
    "idempotence",
    "startup",
    "partitions",
    "page-cache",
)


def run(report: Report, scale: Scale, tmp: Path, only: set[str]) -> None:
    mock: MockCluster | None = None
    kbroker: BrokerProcess | None = None
    if only & {"produce-small", "produce-large", "latency", "fetch", "idempotence"}:
        with section(report, "starting librdkafka's mock cluster and kbroker (--ephemeral)"):
            mock = MockCluster(tmp / "mock.log")
            kbroker = BrokerProcess(["--ephemeral"], tmp / "kbroker.log")
            progress(
                f"  mock cluster at {mock.address}; kbroker pid {kbroker.pid} at {kbroker.address}"
            )
    try:
        if mock is not None and kbroker is not None:
            endpoints = [
                Endpoint("kbroker", kbroker.address, kbroker.pid),
                Endpoint("mock", mock.address, mock.proc.pid),
            ]
            if "produce-small" in only:
                bench_produce_small(report, scale, endpoints, RUNS)
            if "produce-large" in only:
                bench_produce_large(report, scale, endpoints, tmp)
            if "latency" in only:
                bench_latency(report, scale, endpoints)
            if "fetch" in only:
                bench_fetch(report, scale, endpoints, RUNS, tmp)
            if "idempotence" in only:
                bench_idempotence(report, scale, endpoints[0], RUNS)
    finally:
        if kbroker is not None:
            kbroker.stop()
        if mock is not None:
            mock.stop()
    if "startup" in only:
        bench_startup(report, scale, tmp)
    if "partitions" in only:
        bench_partitions(report, scale, tmp)
    if "page-cache" in only:
        bench_page_cache(report, scale, RUNS, tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1/10 scale, for a smoke check")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default: all of {','.join(SECTIONS)})",
    )
    parser.add_argument("--serve-mock-cluster", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_mock_cluster:
        return serve_mock_cluster()
    scale = QUICK if args.quick else FULL
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    if not only <= set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(only - set(SECTIONS)))}")
    tmp = Path(tempfile.mkdtemp(prefix="kbroker-bench-"))
    handler = logging.FileHandler(tmp / "clients.log")
    client_log.addHandler(handler)
    client_log.propagate = False
    progress(
        f"kbroker broker benchmark, {'quick (1/10 scale)' if args.quick else 'full scale'}; "
        f"Python {sys.version.split()[0]}, confluent-kafka {confluent_kafka.__version__}, "
        f"librdkafka {confluent_kafka.libversion()[0]}, {os.cpu_count()} CPUs; work dir {tmp}"
    )
    report = Report()
    try:
        run(report, scale, tmp, only)
    finally:
        handler.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - _T0
    progress(f"done in {elapsed:.0f} s")
    print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
